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

// SetSNATBlockChassis records where the block's port is bound now (nil:
// nowhere), so that its host and the gateways find it.
func SetSNATBlockChassis(uuid string, chassis *string) ovsdb.Operation {
	return snatBlockT.UpdateByUUID(&sbdb.SNATBlock{UUID: uuid, Chassis: chassis}, "chassis")
}

// DeleteSNATBlock frees the block whose row is uuid.
func DeleteSNATBlock(uuid string) ovsdb.Operation { return snatBlockT.DeleteByUUID(uuid) }
