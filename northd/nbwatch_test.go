package northd

import (
	"context"
	"fmt"
	"math/rand"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/internal/testenv"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/ops/jsonrpc"
	"github.com/courier-sdn/courier/schema"
	"github.com/courier-sdn/courier/schema/nbdb"
)

// canonical is a copy of a model in which an absent set or map is an
// empty one and a set's members are sorted: libovsdb leaves a default
// column nil when the server left it out (update3 does, for inserts) and
// keeps a set in the order of the mutations it applied, and neither means
// anything in OVSDB.
func canonical(m model.Model) model.Model {
	if m == nil {
		return nil
	}
	v := reflect.ValueOf(m).Elem()
	c := reflect.New(v.Type())
	c.Elem().Set(v)
	for i := 0; i < v.NumField(); i++ {
		f := c.Elem().Field(i)
		switch f.Kind() {
		case reflect.Map:
			if f.IsNil() {
				f.Set(reflect.MakeMap(f.Type()))
			}
		case reflect.Slice:
			s := reflect.MakeSlice(f.Type(), f.Len(), f.Len())
			reflect.Copy(s, f)
			if ss, ok := s.Interface().([]string); ok {
				sort.Strings(ss)
			}
			f.Set(s)
		}
	}
	return c.Interface().(model.Model)
}

// What northd's watch makes of a random history of northbound writes is
// row for row what libovsdb's monitor makes of it: inserts, updates of
// every column kind (sets growing and shrinking, optionals set and
// cleared, maps), deletes, garbage-collected children.
func TestNBWatchMatchesLibovsdb(t *testing.T) {
	dbs := testenv.StartDBs(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	m, _ := nbdb.FullDatabaseModel()
	var mon []client.MonitorOption
	for _, tb := range nbWatchTables {
		mon = append(mon, client.WithTable(tb.proto))
	}
	lib, err := ops.Open(ctx, m, ops.SessionOptions{Remotes: []string{dbs.NB}, Monitor: mon})
	if err != nil {
		t.Fatal(err)
	}
	defer lib.Close()
	if err := jsonrpc.EnsureGlobalRow(ctx, []string{dbs.NB}, nil, "Courier_Northbound", nbdb.NBGlobalTable); err != nil {
		t.Fatal(err)
	}
	tr := ops.NewTracker()
	w, err := watchNB(ctx, dbs.NB, nil, tr, testenv.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	view := map[string]map[string]model.Model{}
	fold := func() {
		ch := tr.Drain()
		for table, rows := range ch.Tables {
			if view[table] == nil {
				view[table] = map[string]model.Model{}
			}
			for u, c := range rows {
				if c.New == nil {
					delete(view[table], u)
				} else {
					view[table][u] = c.New
				}
			}
		}
	}
	txn := func(o ...ovsdb.Operation) []ovsdb.OperationResult {
		t.Helper()
		res, err := ops.Transact(ctx, lib, o...)
		if err != nil {
			t.Fatalf("%v: %v", o, err)
		}
		return res
	}
	byUUID := func(u string) []ovsdb.Condition {
		return []ovsdb.Condition{{Column: "_uuid", Function: "==", Value: ovsdb.UUID{GoUUID: u}}}
	}
	res := txn(ovsdb.Operation{Op: "insert", Table: nbdb.VPCTable, UUIDName: "v", Row: ovsdb.Row{"name": "v",
		"vxnets": ovsdb.UUID{GoUUID: "x"}}},
		ovsdb.Operation{Op: "insert", Table: nbdb.VxnetTable, UUIDName: "x", Row: ovsdb.Row{"name": "x", "cidr": "10.0.0.0/16"}})
	vx := res[1].UUID.GoUUID
	vpc := res[0].UUID.GoUUID
	var ports []string
	rng := rand.New(rand.NewSource(7))
	for step := 0; step < 300; step++ {
		switch k := rng.Intn(8); {
		case k < 3 || len(ports) == 0: // a port
			name := fmt.Sprintf("p%d", step)
			res := txn(ovsdb.Operation{Op: "insert", Table: nbdb.PortTable, UUIDName: "p", Row: ovsdb.Row{"name": name,
				"mac": fmt.Sprintf("02:00:00:00:%02x:%02x", step>>8, step&255), "ips": fmt.Sprintf("10.0.%d.%d", step>>8, step&255),
				"mac_key": schema.NewScope(), "ip_key": schema.NewScope()}},
				ovsdb.Operation{Op: "mutate", Table: nbdb.VxnetTable, Where: byUUID(vx),
					Mutations: []ovsdb.Mutation{{Column: "ports", Mutator: "insert", Value: ovsdb.UUID{GoUUID: "p"}}}})
			ports = append(ports, res[0].UUID.GoUUID)
		case k == 3: // a port leaves its vxnet and is collected
			i := rng.Intn(len(ports))
			txn(ovsdb.Operation{Op: "mutate", Table: nbdb.VxnetTable, Where: byUUID(vx),
				Mutations: []ovsdb.Mutation{{Column: "ports", Mutator: "delete", Value: ovsdb.UUID{GoUUID: ports[i]}}}})
			ports = append(ports[:i], ports[i+1:]...)
		case k == 4: // sets and optionals change
			p := ports[rng.Intn(len(ports))]
			row := ovsdb.Row{"virtual_ips": ovsdb.OvsSet{GoSet: []any{}}, "requested_chassis": ovsdb.OvsSet{GoSet: []any{}}}
			if rng.Intn(2) == 0 {
				row = ovsdb.Row{"virtual_ips": ovsdb.OvsSet{GoSet: []any{"10.0.9.1", "10.0.9.2"}}, "requested_chassis": "hv1",
					"port_security": rng.Intn(2) == 0}
			}
			txn(ovsdb.Operation{Op: "update", Table: nbdb.PortTable, Where: byUUID(p), Row: row})
		case k == 5: // maps change
			p := ports[rng.Intn(len(ports))]
			txn(ovsdb.Operation{Op: "update", Table: nbdb.PortTable, Where: byUUID(p), Row: ovsdb.Row{
				"status":       ovsdb.OvsMap{GoMap: map[any]any{"state": fmt.Sprint(step)}},
				"external_ids": ovsdb.OvsMap{GoMap: map[any]any{}}}})
		case k == 6: // routes come and go
			if rng.Intn(2) == 0 {
				txn(ovsdb.Operation{Op: "insert", Table: nbdb.RouteTable, UUIDName: "r", Row: ovsdb.Row{"prefix": "0.0.0.0/0", "nexthop": "10.0.0.1"}},
					ovsdb.Operation{Op: "mutate", Table: nbdb.VPCTable, Where: byUUID(vpc),
						Mutations: []ovsdb.Mutation{{Column: "routes", Mutator: "insert", Value: ovsdb.UUID{GoUUID: "r"}}}})
			} else {
				txn(ovsdb.Operation{Op: "update", Table: nbdb.VPCTable, Where: byUUID(vpc), Row: ovsdb.Row{"routes": ovsdb.OvsSet{GoSet: []any{}}}})
			}
		default: // the global row
			txn(ovsdb.Operation{Op: "mutate", Table: nbdb.NBGlobalTable, Where: ops.All(),
				Mutations: []ovsdb.Mutation{{Column: "nb_cfg", Mutator: "+=", Value: 1}}})
		}
		if step%50 == 0 {
			fold()
		}
	}
	// A last write that both must see: everything before it came first.
	txn(ovsdb.Operation{Op: "update", Table: nbdb.VPCTable, Where: byUUID(vpc), Row: ovsdb.Row{"name": "end"}})
	for {
		fold()
		v, _ := view[nbdb.VPCTable][vpc].(*nbdb.VPC)
		cached, _ := lib.Cache().Table(nbdb.VPCTable).Row(vpc).(*nbdb.VPC)
		if v != nil && v.Name == "end" && cached != nil && cached.Name == "end" {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the last write never arrived")
		case <-time.After(10 * time.Millisecond):
		}
	}
	for _, tb := range nbWatchTables {
		want := lib.Cache().Table(tb.name).Rows()
		got := view[tb.name]
		if len(got) != len(want) {
			t.Errorf("%s: the watch holds %d rows, libovsdb %d", tb.name, len(got), len(want))
		}
		for u, w := range want {
			if !reflect.DeepEqual(canonical(got[u]), canonical(w)) {
				t.Errorf("%s %s:\n watch    %#v\n libovsdb %#v", tb.name, u, got[u], w)
			}
		}
	}
	if len(view[nbdb.PortTable]) < 20 {
		t.Fatalf("only %d ports at the end: the history exercised too little", len(view[nbdb.PortTable]))
	}
}
