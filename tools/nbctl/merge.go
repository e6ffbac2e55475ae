package nbctl

import (
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
)

// Each port-add appends one mutation inserting its port into its vxnet's
// port set. A chain of thousands of port-adds into one vxnet then makes
// ovsdb-server rewrite that set thousands of times, each time whole (the
// set union copies it), which is quadratic in the chain. mergeInserts
// folds such mutations of one row's column into one, so that the server
// grows each set once per transaction.

// setKey names the column of one row that insert mutations target.
type setKey struct{ table, uuid, column string }

// mergeInserts returns txn with the insert mutations of each row's set
// column folded into the last of them, where nothing in between could
// tell the difference: a later operation on the same row (a wait, an
// update, a delete mutation) or on the table by any other condition
// closes the group, and inserts into a set commute with each other. The
// merged operation takes the last member's place, so that every
// named-UUID it refers to has been inserted by then.
func mergeInserts(txn []ovsdb.Operation) []ovsdb.Operation {
	var groups [][]int // members, in order
	open := openGroups{}
	for i := range txn {
		op := &txn[i]
		k, ok := insertKey(op)
		if !ok {
			open.close(op)
			continue
		}
		g, found := open.get(k)
		if !found {
			g = len(groups)
			groups = append(groups, nil)
			open.set(k, g)
		}
		groups[g] = append(groups[g], i)
	}
	folded := map[int]bool{}  // members folded into a later one
	byLast := map[int][]int{} // a group's last member -> the group
	for _, ms := range groups {
		if len(ms) < 2 {
			continue
		}
		for _, m := range ms[:len(ms)-1] {
			folded[m] = true
		}
		byLast[ms[len(ms)-1]] = ms
	}
	if len(folded) == 0 {
		return txn
	}
	out := make([]ovsdb.Operation, 0, len(txn)-len(folded))
	for i := range txn {
		switch {
		case folded[i]:
		case byLast[i] != nil:
			out = append(out, mergedInsert(txn, byLast[i]))
		default:
			out = append(out, txn[i])
		}
	}
	return out
}

// insertKey says whether op inserts into one set column of one row named
// by its UUID, and which.
func insertKey(op *ovsdb.Operation) (setKey, bool) {
	if op.Op != ovsdb.OperationMutate || len(op.Mutations) != 1 || op.Mutations[0].Mutator != ovsdb.MutateOperationInsert {
		return setKey{}, false
	}
	if _, ok := op.Mutations[0].Value.(ovsdb.OvsSet); !ok {
		return setKey{}, false
	}
	u, ok := whereUUID(op)
	if !ok {
		return setKey{}, false
	}
	return setKey{op.Table, u, op.Mutations[0].Column}, true
}

// whereUUID is the row op names by its one condition, _uuid == U.
func whereUUID(op *ovsdb.Operation) (string, bool) {
	if len(op.Where) != 1 {
		return "", false
	}
	c := op.Where[0]
	if c.Column != "_uuid" || c.Function != ovsdb.ConditionEqual {
		return "", false
	}
	switch v := c.Value.(type) {
	case ovsdb.UUID:
		return v.GoUUID, true
	case string:
		return v, true
	}
	return "", false
}

// openGroups are the groups still open, by table, row and column.
type openGroups map[string]map[string]map[string]int

func (o openGroups) get(k setKey) (int, bool) {
	g, ok := o[k.table][k.uuid][k.column]
	return g, ok
}

func (o openGroups) set(k setKey, g int) {
	if o[k.table] == nil {
		o[k.table] = map[string]map[string]int{}
	}
	if o[k.table][k.uuid] == nil {
		o[k.table][k.uuid] = map[string]int{}
	}
	o[k.table][k.uuid][k.column] = g
}

// close ends the groups that op could observe or change: those of the
// row it names, or of its whole table if it names rows otherwise. An
// insert adds a row and changes none.
func (o openGroups) close(op *ovsdb.Operation) {
	if op.Op == ovsdb.OperationInsert {
		return
	}
	if u, byRow := whereUUID(op); byRow {
		delete(o[op.Table], u)
		return
	}
	delete(o, op.Table)
}

// mergedInsert is the mutation of the last member of the group ms,
// inserting every member's elements.
func mergedInsert(txn []ovsdb.Operation, ms []int) ovsdb.Operation {
	op := txn[ms[len(ms)-1]]
	var set []any
	for _, m := range ms {
		set = append(set, txn[m].Mutations[0].Value.(ovsdb.OvsSet).GoSet...)
	}
	mut := op.Mutations[0]
	mut.Value = ovsdb.OvsSet{GoSet: set}
	op.Mutations = []ovsdb.Mutation{mut}
	return op
}
