package jsonrpc_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/internal/testenv"
	"github.com/courier-sdn/courier/ops/jsonrpc"
	"github.com/courier-sdn/courier/schema"
	"github.com/courier-sdn/courier/schema/nbdb"
)

// rawNB starts the databases and returns a function that commits
// operations to the northbound on a plain JSON-RPC connection, failing
// the test if any is refused.
func rawNB(t *testing.T) (*testenv.DBs, context.Context, func(ops ...any) []map[string]any) {
	dbs := testenv.StartDBs(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	c, err := jsonrpc.Dial(dbs.NB, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return dbs, ctx, func(ops ...any) []map[string]any {
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
}

// A watch reports only the kinds of change it asked for, in order.
func TestWatchReportsOnlySelectedChanges(t *testing.T) {
	dbs, ctx, txn := rawNB(t)
	byName := func(n string) []ovsdb.Condition {
		return []ovsdb.Condition{{Column: "name", Function: "==", Value: n}}
	}
	txn(ovsdb.Operation{Op: "insert", Table: nbdb.VPCTable, Row: ovsdb.Row{"name": "a"}})

	got := make(chan jsonrpc.WatchedRow, 10)
	w, err := jsonrpc.StartWatch(ctx, dbs.NB, jsonrpc.WatchSpec{DB: schema.NBName, Tables: []jsonrpc.WatchTable{{Name: nbdb.VPCTable,
		Columns: []string{"name"}, Initial: true, Delete: true, Modify: true}}}, func(rows []jsonrpc.WatchedRow) error {
		for _, r := range rows {
			got <- r
		}
		return nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := jsonrpc.NewRowDecoder(&nbdb.VPC{})
	if err != nil {
		t.Fatal(err)
	}
	name := func(row []byte) string {
		if row == nil {
			return ""
		}
		m, err := dec.Decode("u", row)
		if err != nil {
			t.Fatalf("%s: %v", row, err)
		}
		return m.(*nbdb.VPC).Name
	}
	next := func() jsonrpc.WatchedRow {
		t.Helper()
		select {
		case r := <-got:
			return r
		case <-ctx.Done():
			t.Fatal("nothing reported")
		}
		return jsonrpc.WatchedRow{}
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

// One transaction over several tables arrives in one delivery, decoded
// as libovsdb would decode it.
func TestWatchDeliversTransactionsWhole(t *testing.T) {
	dbs, ctx, commit := rawNB(t)
	got := make(chan []jsonrpc.WatchedRow, 10)
	all := func(name string) jsonrpc.WatchTable {
		return jsonrpc.WatchTable{Name: name, Initial: true, Insert: true, Delete: true, Modify: true}
	}
	w, err := jsonrpc.StartWatch(ctx, dbs.NB, jsonrpc.WatchSpec{DB: schema.NBName, Tables: []jsonrpc.WatchTable{all(nbdb.VxnetTable), all(nbdb.PortTable)}},
		func(rows []jsonrpc.WatchedRow) error { got <- rows; return nil }, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var txn []any
	var refs []any
	for i := 0; i < 50; i++ {
		txn = append(txn, ovsdb.Operation{Op: "insert", Table: nbdb.PortTable, UUIDName: fmt.Sprintf("p%d", i),
			Row: ovsdb.Row{"name": fmt.Sprintf("p%d", i), "mac": "02:00:00:00:00:01", "ips": "10.0.0.9",
				"mac_key": schema.NewScope(), "ip_key": schema.NewScope()}}) // clashing on purpose
		refs = append(refs, ovsdb.UUID{GoUUID: fmt.Sprintf("p%d", i)})
	}
	txn = append(txn, ovsdb.Operation{Op: "insert", Table: nbdb.VxnetTable, UUIDName: "x", Row: ovsdb.Row{"name": "x", "cidr": "10.0.0.0/24",
		"ports": ovsdb.OvsSet{GoSet: refs}}},
		ovsdb.Operation{Op: "insert", Table: nbdb.VPCTable, Row: ovsdb.Row{"name": "v", "vxnets": ovsdb.UUID{GoUUID: "x"}}})
	commit(txn...)
	var rows []jsonrpc.WatchedRow
	select {
	case rows = <-got:
	case <-ctx.Done():
		t.Fatal("nothing delivered")
	}
	if len(rows) != 51 {
		t.Fatalf("one transaction of 51 rows arrived as a delivery of %d", len(rows))
	}
	portDec, _ := jsonrpc.NewRowDecoder(&nbdb.Port{})
	vxDec, _ := jsonrpc.NewRowDecoder(&nbdb.Vxnet{})
	for _, r := range rows {
		dec := portDec
		if r.Table == nbdb.VxnetTable {
			dec = vxDec
		}
		m, err := dec.Decode(r.UUID, r.New)
		if err != nil {
			t.Fatal(err)
		}
		if vx, ok := m.(*nbdb.Vxnet); ok && len(vx.Ports) != 50 {
			t.Errorf("vxnet decoded with %d ports", len(vx.Ports))
		}
		if p, ok := m.(*nbdb.Port); ok && (p.Status == nil || len(p.IPs) != 1) {
			t.Errorf("port decoded as %+v", p)
		}
	}
}
