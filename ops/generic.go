package ops

import (
	"reflect"

	"context"
	"errors"

	"github.com/ovn-kubernetes/libovsdb/cache"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
)

// Row is a pointer to a generated model type.
type Row[T any] interface {
	*T
	model.Model
}

// List returns the cached rows of T's table for which pred is true (every
// row when pred is nil). libovsdb makes it wait, until ctx ends, for a
// lost connection to come back: pass Session.Context.
func List[T any, PT Row[T]](ctx context.Context, c client.Client, pred func(PT) bool) ([]PT, error) {
	var out []PT
	var err error
	if pred == nil {
		err = c.List(ctx, &out)
	} else {
		err = c.WhereCache(pred).List(ctx, &out)
	}
	return out, err
}

// Lookup finds one cached row by UUID or by one of its table's indexes,
// whichever is set in m. It returns (nil, nil) when there is no such row.
func Lookup[T any, PT Row[T]](ctx context.Context, c client.Client, m PT) (PT, error) {
	err := c.Get(ctx, m)
	if errors.Is(err, client.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}

// First returns one cached row for which pred is true, or nil.
func First[T any, PT Row[T]](ctx context.Context, c client.Client, pred func(PT) bool) (PT, error) {
	rows, err := List[T](ctx, c, pred)
	if err != nil || len(rows) == 0 {
		return nil, err
	}
	return rows[0], nil
}

// ByUUID returns a conditional API that matches exactly the row whose
// UUID is m's UUID (a real or a named UUID of this transaction). Unlike
// libovsdb's Where(m), it never resolves m through the cache by one of its
// indexes, which would pick an older row of the same name.
func ByUUID(c client.Client, m model.Model) client.ConditionalAPI {
	f := reflect.ValueOf(m).Elem().FieldByName("UUID")
	return c.WhereAll(m, model.Condition{
		Field:    f.Addr().Interface(),
		Function: ovsdb.ConditionEqual,
		Value:    f.String(),
	})
}

// All is a where clause that matches every row. libovsdb drops an empty
// where list when encoding, and ovsdb-server requires one for mutate.
func All() []ovsdb.Condition {
	return []ovsdb.Condition{{Column: "_uuid", Function: ovsdb.ConditionNotEqual,
		Value: ovsdb.UUID{GoUUID: "00000000-0000-0000-0000-000000000000"}}}
}

// Rows returns the cached rows of T's table without copying them: cheap
// for big tables, and read-only (libovsdb replaces, never mutates, a
// cached row).
func Rows[T any, PT Row[T]](c client.Client) []PT {
	rc := tableCache[T, PT](c)
	if rc == nil {
		return nil
	}
	rows := rc.RowsShallow()
	out := make([]PT, 0, len(rows))
	for _, m := range rows {
		out = append(out, m.(PT))
	}
	return out
}

// tableCache is c's cache of T's table, nil when the session ended
// (libovsdb dropped its cache) or the table is not monitored.
func tableCache[T any, PT Row[T]](c client.Client) *cache.RowCache {
	var zero PT
	tc := c.Cache()
	if tc == nil {
		return nil
	}
	return tc.Table(tc.DatabaseModel().FindTable(reflect.TypeOf(zero)))
}

// RowByUUID is the cached row of T's table with this UUID (nil: none),
// without copying the table as Rows does.
func RowByUUID[T any, PT Row[T]](c client.Client, uuid string) PT {
	var zero PT
	rc := tableCache[T, PT](c)
	if rc == nil {
		return zero
	}
	m, _ := rc.Row(uuid).(PT)
	return m
}

// RowByIndex is the cached row of T's table that matches m on one of the
// schema's indexes (nbdb.Port{Name: n}: the port named n), nil if none,
// without copying the table as Rows does.
func RowByIndex[T any, PT Row[T]](c client.Client, m PT) PT {
	var zero PT
	rc := tableCache[T, PT](c)
	if rc == nil {
		return zero
	}
	_, row, err := rc.RowByModel(m)
	if err != nil {
		return zero
	}
	r, _ := row.(PT)
	return r
}

// Count is how many rows of T's table c's cache holds, without copying
// them (Rows copies the cache's map: thousands of rows cost milliseconds).
func Count[T any, PT Row[T]](c client.Client) int {
	rc := tableCache[T, PT](c)
	if rc == nil {
		return 0
	}
	return rc.Len()
}

// SelectAll selects the given columns of every row of a table.
func SelectAll(table string, columns ...string) []ovsdb.Operation {
	return []ovsdb.Operation{{Op: ovsdb.OperationSelect, Table: table, Where: All(), Columns: columns}}
}

// StringSet reads a set-of-strings column from a select result.
func StringSet(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case ovsdb.OvsSet:
		out := make([]string, 0, len(x.GoSet))
		for _, e := range x.GoSet {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}
