package nbctl_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/internal/testenv"
	"github.com/courier-sdn/courier/tools/nbctl"
)

// A chain of thousands of commands must cost in proportion to its length
// and to the vxnets it touches, never to their product: these tests count
// what an invocation does (rows read, operations
// committed) rather than time it.

// TestChainReadsNoPeers: port-adds, port-sets and port-dels in a
// vxnet of hundreds of ports read the ports they name and their vxnets,
// without the vxnets' port lists and without the other ports (their
// addresses are claims the server checks at commit); a chain still
// refuses an address taken earlier in it, accepts one freed earlier in
// it, and is checked as a whole (two ports can swap addresses).
func TestChainReadsNoPeers(t *testing.T) {
	db := testenv.StartDBs(t).NB
	mustNB(t, db, "init", "--", "vpc-add", "v", "--", "vxnet-add", "v", "big", "10.1.0.0/16", "--", "vxnet-add", "v", "other", "10.2.0.0/16")
	const existing = 300
	mustNB(t, db, portAdds("big", "b", 0, existing)...)
	var chain []string
	for i := 0; i < 200; i++ {
		chain = append(chain, "--", "port-set", fmt.Sprintf("b%d", i), "--ips", ip(1, 1000+i)) // frees 10.1.x of b<i>
		chain = append(chain, "--", "port-add", "big", fmt.Sprintf("n%d", i), mac(1, 1000+i), ip(1, i))
		if i%10 == 0 {
			chain = append(chain, "--", "port-del", fmt.Sprintf("b%d", existing-1-i/10))
		}
	}
	chain = append(append(chain, "--"), portAdds("other", "o", 0, 100)...)
	rows, refs := nbctl.RowsRead(), nbctl.PortRefsRead()
	mustNB(t, db, chain[1:]...)
	// The two vxnets, and each of the 220 ports named with the UUID of
	// its vxnet.
	if n, most := nbctl.RowsRead()-rows, int64(2+2*220); n > most {
		t.Errorf("the chain read %d rows, want at most %d", n, most)
	}
	if n := nbctl.PortRefsRead() - refs; n != 0 {
		t.Errorf("the vxnets read named %d ports, want none (read without their port lists)", n)
	}
	for _, c := range []struct{ args, refusal string }{
		{"port-set b250 --ips 10.1.4.10 -- port-add big x " + mac(1, 5000) + " 10.1.4.10", "IP 10.1.4.10 is already used by port b250 in vxnet big"},
		{"port-add big x " + mac(1, 5000) + " 10.1.9.1 -- port-add big y " + mac(1, 5000) + " 10.1.9.2", "MAC " + mac(1, 5000) + " is already used by port x in vxnet big"},
		{"port-del n3 -- port-add big x " + mac(1, 1003) + " " + ip(1, 3), ""},
		{"port-set b251 --ips " + ip(1, 252) + " -- port-set b252 --ips " + ip(1, 251), ""},                      // a swap
		{"port-set b253 --ips " + ip(1, 251), "IP " + ip(1, 251) + " is already used by port b252 in vxnet big"}, // after the swap
		{"port-set b251 --ips " + ip(1, 5000) + " -- port-set b252 --ips " + ip(1, 252), ""},
	} {
		_, err := nb(db, strings.Fields(c.args)...)
		if errText(err) != c.refusal {
			t.Errorf("%s: got %v, want %q", c.args, err, c.refusal)
		}
	}
}

// TestChainCommitsOneMutationPerVxnet: a chain of port-adds over two
// vxnets commits its inserts (each port, with the keys of its MAC and IP:
// no claim rows) and, per vxnet, one mutation and one wait (its claim
// rows as read, against which the keyed IPs were checked).
func TestChainCommitsOneMutationPerVxnet(t *testing.T) {
	db := testenv.StartDBs(t).NB
	mustNB(t, db, "init", "--", "vpc-add", "v", "--", "vxnet-add", "v", "a", "10.1.0.0/16", "--", "vxnet-add", "v", "b", "10.2.0.0/16")
	mustNB(t, db, "port-add", "a", "first", mac(1, 9000), ip(1, 9000), "--", "port-add", "b", "second", mac(2, 9000), ip(2, 9000))
	var chain []string
	for i := 0; i < 1000; i++ {
		vx := 1 + i%2
		chain = append(chain, "--", "port-add", []string{"", "a", "b"}[vx], fmt.Sprintf("p%d", i), mac(vx, i), ip(vx, i))
	}
	before := nbctl.OpsCommitted()
	mustNB(t, db, chain[1:]...)
	if n := nbctl.OpsCommitted() - before; n != 1000+2+2 {
		t.Errorf("the chain committed %d operations, want %d", n, 1000+2+2)
	}
	if out := mustNB(t, db, "port-list", "b"); strings.Count(out, "\n") != 1+501 {
		t.Errorf("vxnet b lists %d lines, want a heading and 501 ports:\n%.500s", strings.Count(out, "\n"), out)
	}
}

// TestChainFindsItsPortsInOnePass: a chain naming hundreds of ports
// finds them in one pass over the Port table, not one scan each (the
// server scans the table for a select by name).
func TestChainFindsItsPortsInOnePass(t *testing.T) {
	db := testenv.StartDBs(t).NB
	mustNB(t, db, "init", "--", "vpc-add", "v", "--", "vxnet-add", "v", "big", "10.1.0.0/16")
	mustNB(t, db, portAdds("big", "b", 0, 300)...)
	var chain []string
	for i := 0; i < 300; i++ {
		chain = append(chain, "--", "port-set", fmt.Sprintf("b%d", i), "--ips", ip(1, 1000+i))
	}
	scans := nbctl.PortScans()
	mustNB(t, db, chain[1:]...)
	if n := nbctl.PortScans() - scans; n != 1 {
		t.Errorf("300 port-sets scanned the Port table %d times, want 1", n)
	}
	if out := mustNB(t, db, "port-list", "big"); !strings.Contains(out, ip(1, 1299)) || strings.Contains(out, ip(1, 299)+" ") {
		t.Errorf("port-list after the chain:\n%.300s", out)
	}
}

func portAdds(vxnet, prefix string, from, to int) []string {
	var args []string
	vx := map[string]int{"big": 1, "other": 2}[vxnet]
	for i := from; i < to; i++ {
		args = append(args, "--", "port-add", vxnet, fmt.Sprintf("%s%d", prefix, i), mac(vx, i), ip(vx, i))
	}
	return args[1:]
}

func ip(vx, i int) string  { return fmt.Sprintf("10.%d.%d.%d", vx, 1+i/250, 2+i%250) }
func mac(vx, i int) string { return fmt.Sprintf("02:00:00:%02x:%02x:%02x", vx, i>>8, i&255) }

func TestMergeInserts(t *testing.T) {
	ins := func(table, row string, elems ...string) ovsdb.Operation {
		var set []any
		for _, e := range elems {
			set = append(set, ovsdb.UUID{GoUUID: e})
		}
		return ovsdb.Operation{Op: ovsdb.OperationMutate, Table: table,
			Where:     []ovsdb.Condition{{Column: "_uuid", Function: ovsdb.ConditionEqual, Value: ovsdb.UUID{GoUUID: row}}},
			Mutations: []ovsdb.Mutation{{Column: "ports", Mutator: ovsdb.MutateOperationInsert, Value: ovsdb.OvsSet{GoSet: set}}}}
	}
	del := ins("Vxnet", "A", "p1")
	del.Mutations[0].Mutator = ovsdb.MutateOperationDelete
	row := func(name string) ovsdb.Operation {
		return ovsdb.Operation{Op: ovsdb.OperationInsert, Table: "Port", UUIDName: name, Row: ovsdb.Row{"name": name}}
	}
	waitOn := func(r string) ovsdb.Operation {
		return ovsdb.Operation{Op: ovsdb.OperationWait, Table: "Vxnet",
			Where: []ovsdb.Condition{{Column: "_uuid", Function: ovsdb.ConditionEqual, Value: ovsdb.UUID{GoUUID: r}}}}
	}
	byName := ovsdb.Operation{Op: ovsdb.OperationUpdate, Table: "Vxnet",
		Where: []ovsdb.Condition{{Column: "name", Function: ovsdb.ConditionEqual, Value: "x"}}}
	for _, c := range []struct {
		name    string
		in, out []ovsdb.Operation
	}{
		{"interleaved rows and vxnets",
			[]ovsdb.Operation{waitOn("A"), row("p1"), ins("Vxnet", "A", "p1"), row("p2"), ins("Vxnet", "B", "p2"), row("p3"), ins("Vxnet", "A", "p3")},
			[]ovsdb.Operation{waitOn("A"), row("p1"), row("p2"), ins("Vxnet", "B", "p2"), row("p3"), ins("Vxnet", "A", "p1", "p3")}},
		{"a delete of the same set in between",
			[]ovsdb.Operation{ins("Vxnet", "A", "p1"), del, ins("Vxnet", "A", "p3")},
			[]ovsdb.Operation{ins("Vxnet", "A", "p1"), del, ins("Vxnet", "A", "p3")}},
		{"a wait on the same row in between",
			[]ovsdb.Operation{ins("Vxnet", "A", "p1"), waitOn("A"), ins("Vxnet", "A", "p2"), ins("Vxnet", "A", "p3")},
			[]ovsdb.Operation{ins("Vxnet", "A", "p1"), waitOn("A"), ins("Vxnet", "A", "p2", "p3")}},
		{"a wait on another row in between",
			[]ovsdb.Operation{ins("Vxnet", "A", "p1"), waitOn("B"), ins("Vxnet", "A", "p2")},
			[]ovsdb.Operation{waitOn("B"), ins("Vxnet", "A", "p1", "p2")}},
		{"a change of the table by name in between",
			[]ovsdb.Operation{ins("Vxnet", "A", "p1"), byName, ins("Vxnet", "A", "p2")},
			[]ovsdb.Operation{ins("Vxnet", "A", "p1"), byName, ins("Vxnet", "A", "p2")}},
		{"another table's row of the same UUID",
			[]ovsdb.Operation{ins("Vxnet", "A", "p1"), ins("VPC", "A", "v1"), ins("Vxnet", "A", "p2")},
			[]ovsdb.Operation{ins("VPC", "A", "v1"), ins("Vxnet", "A", "p1", "p2")}},
	} {
		if got := nbctl.MergeInserts(c.in); !reflect.DeepEqual(got, c.out) {
			t.Errorf("%s:\n got %v\nwant %v", c.name, got, c.out)
		}
	}
}
