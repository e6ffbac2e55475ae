package sbops

import (
	"time"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// Chassis_Private holds what a host says about itself (heartbeat,
// applied nb_cfg, status, claims), each written by the host into its own
// row, found by name, and what southd concludes (alive).

func privateOf(chassis string) []ovsdb.Condition {
	return []ovsdb.Condition{chassisPrivateT.Cond("name", ovsdb.ConditionEqual, chassis)}
}

// BumpHeartbeat adds one to chassis's heartbeat: southd judges a chassis
// alive while its heartbeat moves.
func BumpHeartbeat(chassis string) ovsdb.Operation {
	return chassisPrivateT.Mutate(privateOf(chassis), "heartbeat", ovsdb.MutateOperationAdd, 1)
}

// SetChassisPrivateNbCfg acknowledges that chassis's kernel reflects the
// northbound's nb_cfg cfg, as of at.
func SetChassisPrivateNbCfg(chassis string, cfg int, at time.Time) ovsdb.Operation {
	row := &sbdb.ChassisPrivate{NbCfg: cfg, NbCfgTimestamp: int(at.UnixMilli())}
	return chassisPrivateT.Update(row, privateOf(chassis), "nb_cfg", "nb_cfg_timestamp")
}

// SetChassisPrivateStatus publishes what chassis could not apply.
func SetChassisPrivateStatus(chassis string, status map[string]string) ovsdb.Operation {
	return chassisPrivateT.Update(&sbdb.ChassisPrivate{Status: status}, privateOf(chassis), "status")
}

// SetChassisPrivateClaims lists the ports whose VM interfaces chassis
// has, for southd to grant those nobody requested.
func SetChassisPrivateClaims(chassis string, claims []string) ovsdb.Operation {
	return chassisPrivateT.Update(&sbdb.ChassisPrivate{Claims: claims}, privateOf(chassis), "claims")
}

// SetChassisPrivateAlive records southd's judgement of the chassis whose
// Chassis_Private row is uuid.
func SetChassisPrivateAlive(uuid string, alive bool) ovsdb.Operation {
	return chassisPrivateT.Update(&sbdb.ChassisPrivate{Alive: &alive}, ops.WhereUUID(uuid), "alive")
}

// SetChassisPrivateExternalIDs sets the keys of set and removes those of
// del in chassis's external_ids, leaving its other keys as they are.
func SetChassisPrivateExternalIDs(chassis string, set map[string]string, del []string) []ovsdb.Operation {
	var keys []any
	for _, k := range del {
		keys = append(keys, k)
	}
	m := map[any]any{}
	for k, v := range set {
		keys, m[k] = append(keys, k), v // an insert keeps a key already there
	}
	var txn []ovsdb.Operation
	if len(keys) > 0 {
		txn = append(txn, chassisPrivateT.Mutate(privateOf(chassis), "external_ids", ovsdb.MutateOperationDelete, ovsdb.OvsSet{GoSet: keys}))
	}
	if len(m) > 0 {
		txn = append(txn, chassisPrivateT.Mutate(privateOf(chassis), "external_ids", ovsdb.MutateOperationInsert, ovsdb.OvsMap{GoMap: m}))
	}
	return txn
}
