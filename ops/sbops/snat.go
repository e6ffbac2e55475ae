package sbops

import (
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// SNAT rows are northd's (a VPC's accepted SNAT configuration), written
// whole: it syncs them with ops.Diff and the table's verbs. SNAT_Block
// rows are southd's: it allocates and frees them.

// SNATs is the SNAT table.
func SNATs() *ops.Table[sbdb.SNAT, *sbdb.SNAT] { return snatT }

// InsertSNATBlock allocates block b. The table's index on (address,
// port_lo) fails the transaction if the block is somebody's already.
func InsertSNATBlock(b *sbdb.SNATBlock) ovsdb.Operation { return snatBlockT.Insert(b) }

// SetSNATBlockWhere records where the block's port is now: its chassis
// (nil: bound nowhere), MAC and vxnet, so that its host and the gateways
// find it.
func SetSNATBlockWhere(b *sbdb.SNATBlock) ovsdb.Operation {
	return snatBlockT.UpdateByUUID(&sbdb.SNATBlock{UUID: b.UUID, Chassis: b.Chassis, MAC: b.MAC, Datapath: b.Datapath}, "chassis", "mac", "datapath")
}

// DeleteSNATBlock frees the block whose row is uuid.
func DeleteSNATBlock(uuid string) ovsdb.Operation { return snatBlockT.DeleteByUUID(uuid) }

// SNAT_Handoff rows are hostd's: a live-migrated port's old host inserts
// its connections (hostd/snathandoff.go), the new host deletes the row
// once it installed them; either end deletes a row left too long. Never
// updated.

// SNATHandoffs is the SNAT_Handoff table.
func SNATHandoffs() *ops.Table[sbdb.SNATHandoff, *sbdb.SNATHandoff] { return snatHandoffT }

// InsertSNATHandoff hands h's connections to its destination.
func InsertSNATHandoff(h *sbdb.SNATHandoff) ovsdb.Operation { return snatHandoffT.Insert(h) }

// DeleteSNATHandoff deletes the handoff whose row is uuid.
func DeleteSNATHandoff(uuid string) ovsdb.Operation { return snatHandoffT.DeleteByUUID(uuid) }
