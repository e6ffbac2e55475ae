package ops_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/internal/testenv"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema"
	"github.com/courier-sdn/courier/schema/nbdb"
)

// A watch reports only the kinds of change it asked for, in order.
func TestWatchReportsOnlySelectedChanges(t *testing.T) {
	dbs := testenv.StartDBs(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := ops.RawDial(dbs.NB)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	txn := func(ops ...any) []map[string]any {
		t.Helper()
		var res []map[string]any
		if err := c.Call(ctx, "transact", append([]any{schema.NBName}, ops...), &res); err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if r["error"] != nil {
				t.Fatalf("transaction refused: %v", res)
			}
		}
		return res
	}
	byName := func(n string) []ovsdb.Condition {
		return []ovsdb.Condition{{Column: "name", Function: "==", Value: n}}
	}
	txn(ovsdb.Operation{Op: "insert", Table: nbdb.VPCTable, Row: ovsdb.Row{"name": "a"}})

	got := make(chan ops.WatchedRow, 10)
	w, err := ops.StartWatch(ctx, dbs.NB, ops.WatchSpec{DB: schema.NBName, Table: nbdb.VPCTable, Columns: []string{"name"},
		Initial: true, Delete: true, Modify: true}, func(rows []ops.WatchedRow) {
		for _, r := range rows {
			got <- r
		}
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	name := func(m map[string]json.RawMessage) string {
		var s string
		if m != nil {
			json.Unmarshal(m["name"], &s)
		}
		return s
	}
	next := func() ops.WatchedRow {
		t.Helper()
		select {
		case r := <-got:
			return r
		case <-ctx.Done():
			t.Fatal("nothing reported")
		}
		return ops.WatchedRow{}
	}
	if r := next(); r.Old != nil || name(r.New) != "a" {
		t.Fatalf("initial row: %+v", r)
	}
	// Not reported: an insert. Reported, in order: a rename, a delete.
	txn(ovsdb.Operation{Op: "insert", Table: nbdb.VPCTable, Row: ovsdb.Row{"name": "b"}})
	txn(ovsdb.Operation{Op: "update", Table: nbdb.VPCTable, Where: byName("a"), Row: ovsdb.Row{"name": "c"}})
	txn(ovsdb.Operation{Op: "delete", Table: nbdb.VPCTable, Where: byName("b")})
	if r := next(); name(r.Old) != "a" || name(r.New) != "c" {
		t.Fatalf("want the rename of a to c first, got old=%q new=%q", name(r.Old), name(r.New))
	}
	if r := next(); name(r.Old) != "b" || r.New != nil {
		t.Fatalf("want the delete of b, got old=%q new=%q", name(r.Old), name(r.New))
	}
	w.Close()
	select {
	case <-w.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed after Close")
	}
}
