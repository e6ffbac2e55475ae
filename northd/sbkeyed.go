package northd

import (
	"cmp"
	"slices"

	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/ops"
)

// keyedRow is a southbound model northd keeps one row of per key.
type keyedRow[T any] interface {
	*T
	model.Model
	GetUUID() string
}

// keyedRows is northd's copy of a small southbound table it writes one
// row per key of (SNAT: a VPC's key; External_Network: a network's
// name). Deletes are matched by UUID, so a late event about an older row
// never erases a newer one.
type keyedRows[K cmp.Ordered, T any, PT keyedRow[T]] struct {
	key     func(PT) K
	setUUID func(PT, string) // of a row inserted
	byKey   map[K]string     // key -> UUID
	byUUID  map[string]PT
}

func newKeyedRows[K cmp.Ordered, T any, PT keyedRow[T]](key func(PT) K, setUUID func(PT, string)) *keyedRows[K, T, PT] {
	return &keyedRows[K, T, PT]{key: key, setUUID: setUUID, byKey: map[K]string{}, byUUID: map[string]PT{}}
}

func (x *keyedRows[K, T, PT]) get(k K) PT { return x.byUUID[x.byKey[k]] }

func (x *keyedRows[K, T, PT]) put(r PT) {
	u := r.GetUUID()
	if old := x.byUUID[u]; old != nil && x.key(old) != x.key(r) && x.byKey[x.key(old)] == u {
		delete(x.byKey, x.key(old))
	}
	x.byUUID[u] = r
	x.byKey[x.key(r)] = u
}

func (x *keyedRows[K, T, PT]) del(uuid string) {
	if r := x.byUUID[uuid]; r != nil {
		if x.byKey[x.key(r)] == uuid {
			delete(x.byKey, x.key(r))
		}
		delete(x.byUUID, uuid)
	}
}

// update applies a monitor's changes of the table to x, marking the keys
// of old and new rows in dirty.
func (x *keyedRows[K, T, PT]) update(changes map[string]*ops.Change, dirty map[K]bool) {
	for u, c := range changes {
		if c.Old != nil {
			dirty[x.key(c.Old.(PT))] = true
		}
		if c.New == nil {
			x.del(u)
		} else {
			r := c.New.(PT)
			x.put(r)
			dirty[x.key(r)] = true
		}
	}
}

// syncKeyed adds to w what makes table t's rows of the dirty keys equal
// to want's: the owned columns of rows that differ, rows to insert and
// rows to delete; x follows each once its transaction commits.
func syncKeyed[K cmp.Ordered, T any, PT keyedRow[T]](w *sbWriter, t *ops.Table[T, PT], owned []string,
	dirty map[K]bool, want func(K) PT, x *keyedRows[K, T, PT]) {
	keys := make([]K, 0, len(dirty))
	for k := range dirty {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	deletes, upserts := ops.Diff(t, owned, keys, want, x.get)
	for _, e := range deletes {
		u := e.Have.GetUUID()
		w.cur.put(t.DeleteByUUID(u), func([]ovsdb.OperationResult, int) { x.del(u) })
	}
	for _, e := range upserts {
		if e.Have != nil {
			row := t.With(e.Have, e.Want, e.Columns...)
			w.cur.put(t.UpdateByUUID(row, e.Columns...), func([]ovsdb.OperationResult, int) { x.put(row) })
			continue
		}
		w.cur.put(t.Insert(e.Want), func(res []ovsdb.OperationResult, i int) {
			r := PT(new(T))
			*r = *e.Want
			x.setUUID(r, res[i].UUID.GoUUID)
			x.put(r)
		})
	}
}
