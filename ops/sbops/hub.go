package sbops

import (
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// Hub rows are southd's: which chassis serve a VPC's default path.

// UpsertHub makes chassis the hubs of vpc: a new row when have is nil,
// else have's chassis rewritten.
func UpsertHub(have *sbdb.Hub, vpc int, chassis []string) ovsdb.Operation {
	if have == nil {
		return hubT.Insert(&sbdb.Hub{Vpc: vpc, Chassis: chassis})
	}
	return hubT.Update(&sbdb.Hub{Chassis: chassis}, ops.WhereUUID(have.UUID), "chassis")
}

// DeleteHub deletes the Hub row uuid (its VPC is gone).
func DeleteHub(uuid string) ovsdb.Operation { return hubT.DeleteByUUID(uuid) }
