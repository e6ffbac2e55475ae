package northd_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/internal/testenv"
	"github.com/courier-sdn/courier/ops/jsonrpc"
	"github.com/courier-sdn/courier/schema"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// External networks reach the southbound as gateways need them: one row
// per accepted network with its kind and next hop, none for a refused
// one, following changes and deletions, and repaired when somebody else
// writes them.
func TestExternalNetworksReachTheSouthbound(t *testing.T) {
	dbs := testenv.StartDBs(t)
	startNorthd(t, dbs.NB, dbs.SB)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := jsonrpc.Dial(dbs.SB, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	transact := func(op ovsdb.Operation) ovsdb.OperationResult { return rawOp(t, ctx, c, schema.SBName, op) }
	rows := func() string {
		res := transact(ovsdb.Operation{Op: "select", Table: sbdb.ExternalNetworkTable, Where: []ovsdb.Condition{}})
		var out []string
		for _, r := range res.Rows {
			nh := ""
			if s, ok := r["next_hop"].(string); ok {
				nh = s
			}
			out = append(out, fmt.Sprintf("%s %s %s", r["name"], r["kind"], nh))
		}
		sort.Strings(out)
		return strings.Join(out, "; ")
	}
	settled := func(what, want string) {
		t.Helper()
		testenv.Eventually(t, 5*time.Second, what, func() error {
			if got := rows(); got != want {
				return fmt.Errorf("southbound networks %q, want %q", got, want)
			}
			return nil
		})
	}

	nb(t, dbs.NB, "extnet-add", "internet", "203.0.113.0/24", "--kind", "public", "--next-hop", "198.51.100.1",
		"--", "extnet-add", "dc", "192.168.200.0/24", "--kind", "physical")
	// Refused (it overlaps internet), written raw as the CLI refuses it.
	n, err := jsonrpc.Dial(dbs.NB, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	rawOp(t, ctx, n, schema.NBName, ovsdb.Operation{Op: "insert", Table: "External_Network",
		Row: ovsdb.Row{"name": "overlap", "kind": "public", "cidrs": "203.0.113.128/25"}})
	settled("accepted networks written", "dc physical ; internet public 198.51.100.1")

	nb(t, dbs.NB, "set", "External_Network", "internet", "next_hop=198.51.100.2")
	settled("a changed next hop written", "dc physical ; internet public 198.51.100.2")
	nb(t, dbs.NB, "clear", "External_Network", "internet", "next_hop")
	settled("a cleared next hop written", "dc physical ; internet public ")

	// Somebody else's writes are repaired.
	byName := func(n string) []ovsdb.Condition { return []ovsdb.Condition{{Column: "name", Function: "==", Value: n}} }
	transact(ovsdb.Operation{Op: "update", Table: sbdb.ExternalNetworkTable, Where: byName("internet"),
		Row: ovsdb.Row{"next_hop": "192.0.2.66"}})
	settled("a foreign next hop repaired", "dc physical ; internet public ")
	transact(ovsdb.Operation{Op: "delete", Table: sbdb.ExternalNetworkTable, Where: byName("dc")})
	settled("a deleted row put back", "dc physical ; internet public ")
	transact(ovsdb.Operation{Op: "insert", Table: sbdb.ExternalNetworkTable, Row: ovsdb.Row{"name": "stray", "kind": "public"}})
	settled("a stray row deleted", "dc physical ; internet public ")

	// The refused network is accepted once the one it overlaps is gone.
	nb(t, dbs.NB, "extnet-del", "internet")
	settled("a deleted network's row deleted, the other accepted", "dc physical ; overlap public ")
}

// rawOp runs one operation on database db through c, as a writer other
// than the daemons, and fails the test unless it succeeds.
func rawOp(t *testing.T, ctx context.Context, c *jsonrpc.Conn, db string, op ovsdb.Operation) ovsdb.OperationResult {
	t.Helper()
	var res []ovsdb.OperationResult
	if err := c.Call(ctx, "transact", []any{db, op}, &res); err != nil || len(res) != 1 || res[0].Error != "" {
		t.Fatalf("%s on %s: %v %+v", op.Op, db, err, res)
	}
	return res[0]
}
