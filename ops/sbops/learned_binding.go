package sbops

import (
	"time"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// Learned_Binding rows are written by the host whose port announced an
// address (upsert, refresh), judged by southd (accept, delete).

func holdersOf(vpc int, ip string) []ovsdb.Condition {
	return []ovsdb.Condition{learnedT.Cond("vpc", ovsdb.ConditionEqual, vpc), learnedT.Cond("ip", ovsdb.ConditionEqual, ip)}
}

// SelectLearnedBindingHolders reads who holds ip in vpc: each holder's
// _uuid, logical_port and seq.
func SelectLearnedBindingHolders(vpc int, ip string) ovsdb.Operation {
	return learnedT.Select(holdersOf(vpc, ip), "_uuid", "logical_port", "seq")
}

// LearnedBindingHoldersAre is a wait that fails the transaction unless
// the holders of ip in vpc are still those read (their _uuid and seq),
// so that two hosts announcing at once never write the same sequence.
// No holders is asserted as "the query's distinct vpc values are not
// {vpc}": OVSDB cannot express an empty rows list through libovsdb,
// which omits it.
func LearnedBindingHoldersAre(vpc int, ip string, read []ovsdb.Row) ovsdb.Operation {
	timeout := 0
	op := ovsdb.Operation{Op: ovsdb.OperationWait, Table: learnedT.Name(), Timeout: &timeout, Where: holdersOf(vpc, ip),
		Columns: []string{"_uuid", "seq"}, Until: string(ovsdb.WaitConditionEqual), Rows: read}
	if len(read) == 0 {
		op.Columns, op.Until, op.Rows = []string{"vpc"}, string(ovsdb.WaitConditionNotEqual), []ovsdb.Row{{"vpc": vpc}}
	}
	return op
}

// UpsertLearnedBinding records an announcement: lb as a new row when
// mine is "", else, in the row mine, only what an announcement changes
// (vni, mac, kind, seq, timestamp). A row's identity (address, port,
// chassis) is not the chassis role's to rewrite, and accepted is
// southd's alone.
func UpsertLearnedBinding(mine string, lb *sbdb.LearnedBinding) ovsdb.Operation {
	if mine == "" {
		return learnedT.Insert(lb)
	}
	return learnedT.Update(lb, ops.WhereUUID(mine), "vni", "mac", "kind", "seq", "timestamp")
}

// TouchLearnedBinding re-stamps the row uuid: its port still holds the
// address, so it must not age out.
func TouchLearnedBinding(uuid string, at time.Time) ovsdb.Operation {
	return learnedT.Update(&sbdb.LearnedBinding{Timestamp: int(at.UnixMilli())}, ops.WhereUUID(uuid), "timestamp")
}

// AcceptLearnedBinding marks the row uuid accepted: southd found it the
// address's rightful holder.
func AcceptLearnedBinding(uuid string) ovsdb.Operation {
	return learnedT.Update(&sbdb.LearnedBinding{Accepted: true}, ops.WhereUUID(uuid), "accepted")
}

// DeleteLearnedBinding deletes the row uuid (aged, superseded or refused).
func DeleteLearnedBinding(uuid string) ovsdb.Operation { return learnedT.DeleteByUUID(uuid) }
