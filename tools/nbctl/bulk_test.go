package nbctl_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/courier-sdn/courier/internal/testenv"
	"github.com/courier-sdn/courier/tools/nbctl"
)

// The bulk path (bulk.go) runs chains of port-adds without a libovsdb
// session. These tests hold it to the general path: the same rows for
// the same chain, the same refusals for the same bad chains, and an
// unanswered commit applied once.

// bulkFixture is a northbound with two vxnets and a port holding a
// virtual IP (a claim row) and a keyed IP.
func bulkFixture(t *testing.T) string {
	db := testenv.StartDBs(t).NB
	mustNB(t, db, "vpc-add", "v", "--", "vxnet-add", "v", "a", "10.1.0.0/16", "--", "vxnet-add", "v", "b", "10.2.0.0/16",
		"--", "port-add", "a", "old", "02:00:00:00:00:01", "10.1.0.5", "--vip", "10.1.0.100", "--chassis", "hv1")
	return db
}

// bulkChains are chains of port-adds of every form, run in order.
var bulkChains = [][]string{
	{"port-add", "a", "p1", "02:00:00:00:01:01", "10.1.1.1",
		"--", "port-add", "b", "p2", "02:00:00:00:01:02", "10.2.1.2", "--chassis", "hv2", "--no-port-security",
		"--", "port-add", "a", "p3", "dynamic", "10.1.1.3", "--learned-limit", "7",
		"--", "port-add", "a", "p4", "02:00:00:00:01:04",
		"--", "port-add", "b", "p5", "02:00:00:00:01:05", "unknown",
		"--", "port-add", "b", "p6",
		"--", "port-add", "a", "p7", "02:00:00:00:01:07", "10.1.1.7", "10.1.1.8",
		"--", "port-add", "a", "p8", "02:00:00:00:01:08", "10.1.1.9", "--vip", "10.1.0.100", "--vip", "10.1.1.101"},
	{"--may-exist", "port-add", "a", "p1", "02:00:00:00:01:01", "10.1.1.1",
		"--", "port-add", "a", "p9", "02:00:00:00:01:09", "10.1.1.19"},
}

// badChains are refused, each as a whole, after bulkChains.
var badChains = [][]string{
	{"port-add", "nope", "x1"},
	{"port-add", "a", "bad name"},
	{"port-add", "a", "x1", "02:00:00:00:02:01", "10.1.2.1", "--", "port-add", "a", "x1", "02:00:00:00:02:02", "10.1.2.2"},
	{"port-add", "a", "x1", "02:00:00:00:02:01", "10.1.2.1", "--", "port-add", "a", "x2", "02:00:00:00:02:01", "10.1.2.2"},
	{"port-add", "a", "x1", "02:00:00:00:02:01", "10.1.2.1", "--", "port-add", "a", "x2", "02:00:00:00:02:02", "10.1.2.1"},
	{"port-add", "a", "x1", "02:00:00:00:02:01", "10.1.2.1", "--", "port-add", "a", "p1", "02:00:00:00:02:02", "10.1.2.2"},
	{"port-add", "a", "x1", "02:00:00:00:02:01", "10.1.2.1", "--", "port-add", "a", "x2", "02:00:00:00:01:01", "10.1.2.2"},
	{"port-add", "a", "x1", "02:00:00:00:02:01", "10.1.1.1"},
	{"port-add", "a", "x1", "02:00:00:00:02:01", "10.1.0.100"},
	{"port-add", "a", "x1", "02:00:00:00:02:01", "10.1.2.1", "--vip", "10.1.1.1"},
	{"port-add", "a", "x1", "02:00:00:00:02:01", "10.9.2.1"},
	{"port-add", "a", "x1", "zz:00:00:00:02:01", "10.1.2.1"},
	{"port-add", "a", "x1", "02:00:00:00:02:01", "10.1.2.1", "--chassis", "bad chassis"},
	{"port-add", "a", "x1", "02:00:00:00:02:01", "10.1.2.1", "--learned-limit", "-1"},
	{"--may-exist", "port-add", "a", "p1", "02:00:00:00:01:01", "10.1.1.2"},
}

// TestBulkPathWritesWhatTheGeneralPathWrites runs the same chains on two
// northbounds, one through each path: the rows written are the same,
// and so are the refusals of bad chains, which change nothing.
func TestBulkPathWritesWhatTheGeneralPathWrites(t *testing.T) {
	bulkDB, generalDB := bulkFixture(t), bulkFixture(t)
	commits := nbctl.BulkCommits()
	for _, chain := range bulkChains {
		mustNB(t, bulkDB, chain...)
		restore := nbctl.SetBulk(false)
		mustNB(t, generalDB, chain...)
		restore()
	}
	if n := nbctl.BulkCommits() - commits; n != int64(len(bulkChains)) {
		t.Errorf("the bulk path committed %d chains, want %d", n, len(bulkChains))
	}
	if b, g := portRows(t, bulkDB), portRows(t, generalDB); b != g {
		t.Errorf("the paths wrote different rows:\nbulk:\n%s\ngeneral:\n%s", b, g)
	}
	before := dump(t, bulkDB)
	for _, chain := range badChains {
		_, berr := nb(bulkDB, chain...)
		restore := nbctl.SetBulk(false)
		_, gerr := nb(generalDB, chain...)
		restore()
		if berr == nil || errText(berr) != errText(gerr) {
			t.Errorf("%v: bulk path: %v; general path: %v", chain, berr, gerr)
		}
		if after := dump(t, bulkDB); after != before {
			t.Fatalf("%v changed the database:\n%s", chain, after)
		}
	}
}

// portRows are the Port rows and the vxnets' port lists, by name, with
// the keys' vxnet UUIDs written as names and per-port scopes as "scope",
// sorted: what two northbounds given the same commands must agree on.
func portRows(t *testing.T, db string) string {
	t.Helper()
	sel := func(table string) []map[string]any {
		out, err := exec.Command("ovsdb-client", "transact", db,
			fmt.Sprintf(`["Courier_Northbound",{"op":"select","table":%q,"where":[]}]`, table)).CombinedOutput()
		if err != nil {
			t.Fatalf("select %s: %v: %s", table, err, out)
		}
		var res []struct {
			Rows []map[string]any `json:"rows"`
		}
		if err := json.Unmarshal(out, &res); err != nil {
			t.Fatal(err)
		}
		return res[0].Rows
	}
	uuids := map[string]string{} // UUID -> name
	claims := map[string]string{}
	for _, c := range sel("Address_Claim") {
		claims[uuidOf(c["_uuid"])] = fmt.Sprint(c["kind"], " ", c["address"])
	}
	ports := sel("Port")
	for _, p := range ports {
		uuids[uuidOf(p["_uuid"])] = "port " + p["name"].(string)
	}
	vxnets := sel("Vxnet")
	for _, v := range vxnets {
		uuids[uuidOf(v["_uuid"])] = v["name"].(string)
	}
	var lines []string
	for _, p := range ports {
		delete(p, "_uuid")
		delete(p, "_version")
		for _, k := range []string{"mac_key", "ip_key"} {
			key := p[k].(string)
			if vx, addr, ok := strings.Cut(key, "/"); ok {
				p[k] = uuids[vx] + "/" + addr
			} else {
				p[k] = "scope"
			}
		}
		var cl []string
		for _, u := range members(p["claims"]) {
			cl = append(cl, claims[u])
		}
		slices.Sort(cl)
		p["claims"] = cl
		b, _ := json.Marshal(p)
		lines = append(lines, string(b))
	}
	for _, v := range vxnets {
		var names []string
		for _, u := range members(v["ports"]) {
			names = append(names, uuids[u])
		}
		slices.Sort(names)
		lines = append(lines, fmt.Sprintf("vxnet %s: %v", v["name"], names))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// uuidOf is the UUID of ["uuid", U].
func uuidOf(v any) string {
	if a, ok := v.([]any); ok && len(a) == 2 && a[0] == "uuid" {
		return a[1].(string)
	}
	return ""
}

// members are the UUIDs of a set of references, one or ["set", [...]].
func members(v any) []string {
	if u := uuidOf(v); u != "" {
		return []string{u}
	}
	var out []string
	if a, ok := v.([]any); ok && len(a) == 2 && a[0] == "set" {
		for _, m := range a[1].([]any) {
			out = append(out, uuidOf(m))
		}
	}
	return out
}

// TestUnansweredBulkCommitAppliesOnce: a chain of port-adds whose commit
// goes unanswered (committed or not) is applied exactly once, as the
// general path's would be.
func TestUnansweredBulkCommitAppliesOnce(t *testing.T) {
	dbs := testenv.StartDBs(t)
	mustNB(t, dbs.NB, "vpc-add", "v", "--", "vxnet-add", "v", "x", "10.0.0.0/16")
	commits := nbctl.BulkCommits()
	for i, committed := range []bool{true, false} {
		proxy := lossyProxy(t, strings.TrimPrefix(dbs.NB, "unix:"), committed, `"insert"`)
		o := nbctl.Options{DB: "unix:" + proxy, Wait: "none", Format: "table", LeaderOnly: true, Timeout: 10 * time.Second}
		err := nbctl.Run(context.Background(), o, []string{
			"port-add", "x", fmt.Sprintf("p%d", i), fmt.Sprintf("02:00:00:00:00:%02x", i+2), fmt.Sprintf("10.0.0.%d", i+10),
			"--", "port-add", "x", fmt.Sprintf("q%d", i), fmt.Sprintf("02:00:00:00:01:%02x", i+2), fmt.Sprintf("10.0.1.%d", i+10),
		}, &bytes.Buffer{})
		if err != nil {
			t.Errorf("committed=%v: %v", committed, err)
		}
	}
	if n := nbctl.BulkCommits() - commits; n != 0 {
		t.Errorf("the bulk path reported %d commits of unanswered transactions", n)
	}
	if out := mustNB(t, dbs.NB, "port-list", "x"); strings.Count(out, "\n") != 1+4 {
		t.Errorf("port-list after the unanswered writes:\n%s", out)
	}
}

// TestValidNameIsTheRegexp: the hand-written name check accepts what
// ^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$ accepts, and nothing else.
func TestValidNameIsTheRegexp(t *testing.T) {
	re := regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$`)
	names := []string{"", "a", "-a", "a-", "_", "a_b.c:d-e", "é", "a b", "a\n", strings.Repeat("a", 64), strings.Repeat("a", 65)}
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := "aZ09_.:-/ \x00\xff"
	for i := 0; i < 20000; i++ {
		b := make([]byte, rng.IntN(67))
		for j := range b {
			b[j] = alphabet[rng.IntN(len(alphabet))]
		}
		names = append(names, string(b))
	}
	for _, n := range names {
		if got, want := nbctl.ValidName(n), re.MatchString(n); got != want {
			t.Errorf("validName(%q) = %v, the regexp says %v", n, got, want)
		}
	}
}

// TestBulkPathWritesOnTheLeader: in a cluster, the bulk path commits
// only on the leader; a chain whose first remote is a follower goes to
// the general path, which finds the leader.
func TestBulkPathWritesOnTheLeader(t *testing.T) {
	cl := testenv.StartCluster(t)
	remotes := cl.Remotes("nb")
	leader := -1
	testenv.Eventually(t, 20*time.Second, "a northbound leader", func() error {
		if leader = cl.Leader("nb"); leader < 0 {
			return fmt.Errorf("none")
		}
		return nil
	})
	follower := (leader + 1) % len(remotes)
	run := func(first int, args ...string) {
		t.Helper()
		db := strings.Join(append([]string{remotes[first]}, slices.Delete(slices.Clone(remotes), first, first+1)...), ",")
		o := nbctl.Options{DB: db, Wait: "none", Format: "table", LeaderOnly: true, Timeout: 20 * time.Second}
		if err := nbctl.Run(context.Background(), o, args, &bytes.Buffer{}); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
	}
	run(leader, "init", "--", "vpc-add", "v", "--", "vxnet-add", "v", "x", "10.0.0.0/16")
	commits := nbctl.BulkCommits()
	run(follower, "port-add", "x", "p1", "02:00:00:00:00:01", "10.0.0.11", "--", "port-add", "x", "p2", "02:00:00:00:00:02", "10.0.0.12")
	if n := nbctl.BulkCommits() - commits; n != 0 {
		t.Errorf("a chain sent first to a follower was committed by the bulk path (%d)", n)
	}
	run(leader, "port-add", "x", "p3", "02:00:00:00:00:03", "10.0.0.13")
	if n := nbctl.BulkCommits() - commits; n != 1 {
		t.Errorf("a chain sent first to the leader: %d bulk commits, want 1", n)
	}
	if out := mustNB(t, strings.Join(remotes, ","), "port-list", "x"); strings.Count(out, "\n") != 1+3 {
		t.Errorf("port-list:\n%s", out)
	}
}
