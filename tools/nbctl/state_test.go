package nbctl

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"

	"github.com/courier-sdn/courier/internal/testenv"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema/nbdb"
	"github.com/courier-sdn/courier/tools/cmdline"
)

// Commands decide from what they read; a transaction built from a read
// that another client's commit has since made stale must not commit, or
// a route could be added twice (nothing in the schema prevents it) when a
// retried write and the one it retries both land. Each command that
// changes a set checks, in the same transaction, that the set is as it
// read it; a port's addresses are claims that the server's index refuses
// to hold twice (claims.go).
func TestStaleReadIsNotCommitted(t *testing.T) {
	dbs := testenv.StartDBs(t)
	run := func(args ...string) error {
		o := Options{DB: dbs.NB, Wait: "none", Format: "table", LeaderOnly: true, Timeout: 10 * time.Second}
		return Run(context.Background(), o, args, &bytes.Buffer{})
	}
	if err := run("vpc-add", "v", "--", "vxnet-add", "v", "x", "10.0.0.0/16", "--", "port-add", "x", "p0", "02:00:00:00:00:02", "10.0.0.5"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		mine      []string
		theirs    []string
		duplicate func(*ops.Session) bool
		refusal   string // how the stale transaction is refused
	}{
		{"route-add", []string{"route-add", "v", "172.16.0.0/24", "10.0.0.2"}, []string{"route-add", "v", "172.16.0.0/24", "10.0.0.3"},
			func(s *ops.Session) bool { return len(ops.Rows[nbdb.Route](s)) > 1 }, "timed out"},
		{"port-add with the same address", []string{"port-add", "x", "p1", "02:00:00:00:00:03", "10.0.0.9"},
			[]string{"port-add", "x", "p2", "02:00:00:00:00:04", "10.0.0.9"},
			func(s *ops.Session) bool { return len(ops.Rows[nbdb.Port](s)) > 2 }, "constraint violation"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := nbdb.FullDatabaseModel()
			ctx := context.Background()
			var mon []client.MonitorOption
			for _, tm := range tableModels {
				mon = append(mon, client.WithTable(tm))
			}
			s, err := ops.Open(ctx, m, ops.SessionOptions{Remotes: []string{dbs.NB}, Monitor: mon})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			st, err := loadState(ctx, s, nil)
			if err != nil {
				t.Fatal(err)
			}
			table := map[string]*command{}
			for _, c := range commands() {
				table[c.Name] = c
			}
			inv, cmd, err := cmdline.Parse("courier-nbctl", table, tc.mine)
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Run(st, inv, &cmdline.Output{}); err != nil {
				t.Fatal(err)
			}
			// Another client commits a conflicting change after our read.
			if err := run(tc.theirs...); err != nil {
				t.Fatal(err)
			}
			_, err = ops.Transact(ctx, s, st.ops...)
			if te := (*ops.TxnError)(nil); !errors.As(err, &te) || te.Err != tc.refusal {
				t.Errorf("a transaction built from a stale read: %v, want %q", err, tc.refusal)
			}
			after, err := ops.Open(ctx, m, ops.SessionOptions{Remotes: []string{dbs.NB}, Monitor: mon})
			if err != nil {
				t.Fatal(err)
			}
			defer after.Close()
			if tc.duplicate(after) {
				t.Errorf("both writes committed:\n%s", dumpNB(after))
			}
		})
	}
}

func dumpNB(s *ops.Session) string {
	var b strings.Builder
	for _, p := range ops.Rows[nbdb.Port](s) {
		b.WriteString("port " + p.Name + " " + strings.Join(p.IPs, ",") + "\n")
	}
	for _, r := range ops.Rows[nbdb.Route](s) {
		b.WriteString("route " + r.Prefix + " via " + r.Nexthop + "\n")
	}
	return b.String()
}

// A session lost between connecting and reading made the read, depending
// on when libovsdb noticed, either return the rows as if nothing had
// happened or wait for a reconnection that never comes until --timeout
// ran out (one write in ten failed that way across leader elections under
// load). The read must fail at once, so that the invocation connects
// again. The waiting case depends on timing inside libovsdb; this test
// reaches the other one every time.
func TestReadFromLostSessionFailsAtOnce(t *testing.T) {
	dbs := testenv.StartDBs(t)
	m, _ := nbdb.FullDatabaseModel()
	s, err := ops.Open(context.Background(), m, ops.SessionOptions{Remotes: []string{dbs.NB},
		Monitor: []client.MonitorOption{client.WithTable(&nbdb.VPC{}), client.WithTable(&nbdb.NBGlobal{})}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := dbs.StopServer("nb"); err != nil {
		t.Fatal(err)
	}
	<-s.Done()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	_, err = loadState(ctx, s, nil)
	if took := time.Since(start); took > time.Second || !errors.Is(err, ops.ErrNoConnection) {
		t.Fatalf("reading from a lost session: %v after %v, want ErrNoConnection at once", err, took)
	}
}
