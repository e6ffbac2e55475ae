package ctl_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"

	"github.com/courier-sdn/courier/internal/central"
	"github.com/courier-sdn/courier/internal/proc"
	"github.com/courier-sdn/courier/internal/testenv"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema/nbdb"
)

// The operator's path: courier-ctl start, Debian's tools read what it made,
// courier-ctl stop leaves no process behind.
func TestStartStatusStop(t *testing.T) {
	testenv.Integration(t, "ovsdb-client")
	bin := testenv.BinDir(t)
	dir := testenv.RunDir(t)
	courierCtl := func(args ...string) (string, error) {
		cmd := exec.Command(filepath.Join(bin, "courier-ctl"), append([]string{"--run-dir", dir}, args...)...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	t.Cleanup(func() { courierCtl("stop") })
	if out, err := courierCtl("--ovsdb-allocator", "jemalloc", "start", "--no-daemons"); err != nil {
		t.Fatalf("start: %v\n%s", err, out)
	}
	// Starting twice is harmless.
	if out, err := courierCtl("start", "--no-daemons"); err != nil {
		t.Fatalf("second start: %v\n%s", err, out)
	}
	out, _ := courierCtl("status")
	if !strings.Contains(out, "ovsdb-server-nb  running") || !strings.Contains(out, "ovsdb-server-sb  running") {
		t.Fatalf("status:\n%s", out)
	}
	var pids []int
	for _, db := range []string{"nb", "sb"} {
		pid, ok := proc.Running(filepath.Join(dir, "ovsdb-server-"+db+".pid"), "ovsdb-server")
		if !ok {
			t.Fatalf("no running ovsdb-server for %s", db)
		}
		pids = append(pids, pid)
		if maps, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid)); err != nil || !strings.Contains(string(maps), "libjemalloc") {
			t.Errorf("ovsdb-server %s (pid %d) does not run on jemalloc (err %v)", db, pid, err)
		}
		sock := "unix:" + filepath.Join(dir, db+".sock")
		schemaName := map[string]string{"nb": "Courier_Northbound", "sb": "Courier_Southbound"}[db]
		testenv.Run(t, "ovsdb-client", "list-dbs", sock)
		testenv.Run(t, "ovsdb-client", "get-schema", sock, schemaName)
		testenv.Run(t, "ovsdb-client", "list-tables", sock, schemaName)
		dump := testenv.Run(t, "ovsdb-client", "dump", sock, schemaName)
		if !strings.Contains(dump, map[string]string{"nb": "NB_Global table", "sb": "SB_Global table"}[db]) {
			t.Errorf("dump of %s lacks its global table:\n%s", db, dump)
		}
		file := filepath.Join(dir, db+".db")
		if got := strings.TrimSpace(testenv.Run(t, "ovsdb-tool", "db-name", file)); got != schemaName {
			t.Errorf("ovsdb-tool db-name %s = %q", file, got)
		}
		testenv.Run(t, "ovsdb-tool", "db-is-standalone", file)
		testenv.Run(t, "ovsdb-tool", "schema-version", filepath.Join(dir, db+".ovsschema"))
	}
	if out, err := courierCtl("stop"); err != nil {
		t.Fatalf("stop: %v\n%s", err, out)
	}
	for _, pid := range pids {
		if proc.Matches(pid, "ovsdb-server") {
			t.Errorf("ovsdb-server %d still running after stop", pid)
		}
	}
	if out, err := courierCtl("status"); err == nil || !strings.Contains(out, "stopped") {
		t.Errorf("status after stop should fail and say stopped: %v\n%s", err, out)
	}
}

// A database file with an older schema is converted in place on start,
// keeping its rows.
func TestStartConvertsOldSchema(t *testing.T) {
	testenv.Integration(t, "ovsdb-client")
	dir := testenv.RunDir(t)
	// The previous schema: version 0.9.0, Route had no external_ids.
	var sch map[string]any
	json.Unmarshal(central.Databases[0].Schema, &sch)
	current := sch["version"].(string)
	sch["version"] = "0.9.0"
	delete(sch["tables"].(map[string]any)["Route"].(map[string]any)["columns"].(map[string]any), "external_ids")
	old, _ := json.Marshal(sch)
	os.WriteFile(filepath.Join(dir, "old.ovsschema"), old, 0o644)
	testenv.Run(t, "ovsdb-tool", "create", filepath.Join(dir, "nb.db"), filepath.Join(dir, "old.ovsschema"))
	testenv.Run(t, "ovsdb-tool", "transact", filepath.Join(dir, "nb.db"),
		`["Courier_Northbound",{"op":"insert","table":"VPC","row":{"name":"kept"}}]`)
	c := &central.Config{RunDir: dir, BinDir: testenv.BinDir(t)} // courier-nbctl claim-sync runs after a conversion
	t.Cleanup(func() { c.Stop() })
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if v := strings.TrimSpace(testenv.Run(t, "ovsdb-tool", "db-version", filepath.Join(dir, "nb.db"))); v != current {
		t.Fatalf("database not converted: version %s", v)
	}
	if out := testenv.Run(t, "ovsdb-client", "dump", c.Remote(central.Databases[0]), "Courier_Northbound", "VPC"); !strings.Contains(out, "kept") {
		t.Fatalf("conversion lost a row:\n%s", out)
	}
}

func startCluster(t *testing.T) []*central.Config { return testenv.StartCluster(t).Members }

func leaderOf(t *testing.T, members []*central.Config, d central.Database) int {
	return (&testenv.Cluster{Members: members}).Leader(d.Short)
}

// The leader of the northbound cluster is killed while a writer commits
// one VPC after another; every write the cluster acknowledged must survive.
func TestClusterLosesNoAcknowledgedWrite(t *testing.T) {
	members := startCluster(t)
	var remotes []string
	for _, c := range members {
		remotes = append(remotes, c.Remote(central.Databases[0]))
	}
	dbModel, _ := nbdb.FullDatabaseModel()
	open := func(ctx context.Context) (*ops.Session, error) {
		return ops.Open(ctx, dbModel, ops.SessionOptions{Remotes: remotes, LeaderOnly: true,
			ConnectTimeout: 3 * time.Second, Monitor: []client.MonitorOption{client.WithTable(&nbdb.VPC{})}})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	var mu sync.Mutex
	var acked []string
	killed := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		sess, err := open(ctx)
		if err != nil {
			done <- err
			return
		}
		afterKill := 0
		for i := 0; afterKill < 40; i++ {
			select {
			case <-killed:
				afterKill++
			default:
			}
			if ctx.Err() != nil {
				done <- ctx.Err()
				return
			}
			name := fmt.Sprintf("v%04d", i)
			vpc := &nbdb.VPC{UUID: "new", Name: name}
			opsList, _ := sess.Create(vpc)
			tctx, tcancel := context.WithTimeout(ctx, 3*time.Second)
			_, err := ops.Transact(tctx, sess, opsList...)
			tcancel()
			if err == nil {
				mu.Lock()
				acked = append(acked, name)
				mu.Unlock()
				continue
			}
			// Outcome unknown: not counted. Reconnect to the new leader.
			var txnErr *ops.TxnError
			if errors.As(err, &txnErr) {
				continue
			}
			sess.Close()
			for {
				if sess, err = open(ctx); err == nil || ctx.Err() != nil {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if err != nil {
				done <- err
				return
			}
		}
		sess.Close()
		done <- nil
	}()

	testenv.Eventually(t, 30*time.Second, "30 acknowledged writes", func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(acked) < 30 {
			return fmt.Errorf("%d so far", len(acked))
		}
		return nil
	})
	nb := central.Databases[0]
	l := leaderOf(t, members, nb)
	if l < 0 {
		t.Fatal("no northbound leader")
	}
	pid, ok := proc.Running(filepath.Join(members[l].RunDir, "ovsdb-server-nb.pid"), "ovsdb-server")
	if !ok {
		t.Fatal("leader's ovsdb-server is not running")
	}
	syscall.Kill(pid, syscall.SIGKILL)
	t.Logf("killed northbound leader (member %d, pid %d) after %d acknowledged writes", l, pid, len(acked))
	close(killed)
	if err := <-done; err != nil {
		t.Fatalf("writer: %v", err)
	}

	// Read back through a survivor and check every acknowledged name.
	sess, err := open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	vpcs, _ := ops.List[nbdb.VPC](ctx, sess, nil)
	have := map[string]bool{}
	for _, v := range vpcs {
		have[v.Name] = true
	}
	mu.Lock()
	defer mu.Unlock()
	for _, n := range acked {
		if !have[n] {
			t.Errorf("acknowledged write %s lost", n)
		}
	}
	t.Logf("%d writes acknowledged, %d rows present, %d members alive", len(acked), len(vpcs), 2)
	if l2 := leaderOf(t, members, nb); l2 < 0 || l2 == l {
		t.Errorf("no new leader elected (old %d, new %d)", l, l2)
	}
}

// courierCtl runs the built courier-ctl in run directory dir and stops
// what it started there when the test ends.
func courierCtl(t *testing.T, dir string) func(args ...string) (string, error) {
	t.Helper()
	bin := filepath.Join(testenv.BinDir(t), "courier-ctl")
	run := func(args ...string) (string, error) {
		out, err := exec.Command(bin, append([]string{"--run-dir", dir}, args...)...).CombinedOutput()
		return string(out), err
	}
	t.Cleanup(func() {
		if t.Failed() {
			testenv.DumpLogs(t, dir)
		}
		if out, err := run("stop"); err != nil {
			t.Errorf("stop %s: %v\n%s", dir, err, out)
		}
	})
	return run
}

// Two run directories on one machine, each with northd and southd: the
// second's daemons died on the first's fixed metrics ports
// (127.0.0.1:9650 and 9651) while start still said all was well.
func TestSecondRunDirChoosesItsOwnMetrics(t *testing.T) {
	testenv.Integration(t)
	var addrs []string
	var ctls []func(...string) (string, error)
	for i := 0; i < 2; i++ {
		northd, southd := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)), fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
		courierCtl := courierCtl(t, testenv.RunDir(t))
		if out, err := courierCtl("start", "--northd-metrics", northd, "--southd-metrics", southd); err != nil {
			t.Fatalf("start run directory %d: %v\n%s", i, err, out)
		}
		addrs = append(addrs, northd, southd)
		ctls = append(ctls, courierCtl)
	}
	for _, a := range addrs {
		testenv.Eventually(t, 10*time.Second, "metrics on "+a, func() error {
			resp, err := http.Get("http://" + a + "/metrics")
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("%s", resp.Status)
			}
			return nil
		})
	}
	for i, courierCtl := range ctls {
		if out, err := courierCtl("status"); err != nil {
			t.Errorf("run directory %d: not everything runs: %v\n%s", i, err, out)
		}
	}
}

// A daemon that dies at start-up makes start fail, naming it and quoting
// its log: start used to return 0 while northd had exited on a metrics
// port already taken.
func TestStartFailsWhenADaemonExitsAtStartUp(t *testing.T) {
	testenv.Integration(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	courierCtl := courierCtl(t, testenv.RunDir(t))
	out, err := courierCtl("start", "--northd-metrics", taken.Addr().String(), "--southd-metrics", "")
	if err == nil {
		t.Fatalf("start succeeded though courier-northd cannot listen on %s:\n%s", taken.Addr(), out)
	}
	for _, want := range []string{"courier-northd", "exited", "address already in use"} {
		if !strings.Contains(out, want) {
			t.Errorf("start's error does not say %q:\n%s", want, out)
		}
	}
}

// An ovsdb-server that exits at start-up (here: its database file is
// locked by another run directory's server) is reported at once, with
// its log, not after ten seconds of waiting for its socket.
func TestStartFailsWhenADatabaseServerExitsAtStartUp(t *testing.T) {
	testenv.Integration(t)
	dbDir := testenv.RunDir(t)
	first := courierCtl(t, testenv.RunDir(t))
	if out, err := first("--db-dir", dbDir, "start", "--no-daemons"); err != nil {
		t.Fatalf("first start: %v\n%s", err, out)
	}
	second := courierCtl(t, testenv.RunDir(t))
	began := time.Now()
	out, err := second("--db-dir", dbDir, "start", "--no-daemons")
	if err == nil {
		t.Fatalf("a second server on the same database file started:\n%s", out)
	}
	for _, want := range []string{"ovsdb-server (nb) exited during start-up", "failed to lock"} {
		if !strings.Contains(out, want) {
			t.Errorf("start's error does not say %q:\n%s", want, out)
		}
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Errorf("start took %v to notice", d)
	}
}

// A cluster member's northd keeps compiling when that member's own
// servers stop: courier-ctl used to give the daemons the member's own
// sockets only. Here member 0 runs the daemons, told of every member.
func TestClusterMemberDaemonsReachEveryMember(t *testing.T) {
	testenv.Integration(t, "ovs-appctl", "ovsdb-client")
	dirs := []string{testenv.RunDir(t), testenv.RunDir(t), testenv.RunDir(t)}
	remotes := func(db string) string {
		var r []string
		for _, d := range dirs {
			r = append(r, "unix:"+filepath.Join(d, db+".sock"))
		}
		return strings.Join(r, ",")
	}
	raft := func() string { return fmt.Sprintf("tcp:127.0.0.1:%d", testenv.FreePort(t)) }
	nbFirst, sbFirst := raft(), raft()
	for i, dir := range dirs {
		args := []string{"cluster-create", "--nb-raft", nbFirst, "--sb-raft", sbFirst, "--northd-metrics", "", "--southd-metrics", "",
			"--nb-remotes", remotes("nb"), "--sb-remotes", remotes("sb")}
		if i > 0 {
			args = []string{"cluster-join", "--nb-raft", raft(), "--sb-raft", raft(), "--nb-peer", nbFirst, "--sb-peer", sbFirst, "--no-daemons"}
		}
		if out, err := courierCtl(t, dir)(args...); err != nil {
			t.Fatalf("member %d: %v\n%s", i, err, out)
		}
	}
	for i, dir := range dirs {
		c := &central.Config{RunDir: dir}
		testenv.Eventually(t, 30*time.Second, fmt.Sprintf("member %d joined", i), func() error {
			for _, d := range central.Databases {
				out, err := exec.Command("ovs-appctl", "-t", c.CtlSocket(d), "cluster/status", d.Name).CombinedOutput()
				if err != nil || !strings.Contains(string(out), "Status: cluster member") {
					return fmt.Errorf("%s: %s", d.Short, out)
				}
			}
			return nil
		})
	}
	// Intent goes in and compiled state is read through member 1.
	nb, sb := "unix:"+filepath.Join(dirs[1], "nb.sock"), "unix:"+filepath.Join(dirs[1], "sb.sock")
	compiled := func(vpc string) {
		t.Helper()
		testenv.Run(t, "ovsdb-client", "transact", nb, `["Courier_Northbound",{"op":"insert","table":"VPC","row":{"name":"`+vpc+`"}}]`)
		testenv.Eventually(t, 30*time.Second, "northd compiles VPC "+vpc, func() error {
			out, err := exec.Command("ovsdb-client", "transact", sb, `["Courier_Southbound",{"op":"select","table":"Datapath",`+
				`"where":[["name","==","vpc:`+vpc+`"]],"columns":["name"]}]`).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "vpc:"+vpc) {
				return fmt.Errorf("%v: %s", err, out)
			}
			return nil
		})
	}
	compiled("before")
	for _, db := range []string{"nb", "sb"} {
		if err := proc.Stop(filepath.Join(dirs[0], "ovsdb-server-"+db+".pid"), "ovsdb-server", 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	compiled("after")
	if _, ok := proc.Running(filepath.Join(dirs[0], "courier-northd.pid"), "courier-northd"); !ok {
		t.Errorf("member 0's northd is gone")
	}
}

// A cluster member started again without every member's remotes says
// that its daemons will reach only its own servers: the remotes are not
// remembered, and nothing told the operator they were missing.
func TestClusterMemberStartedWithoutRemotesWarns(t *testing.T) {
	testenv.Integration(t)
	courierCtl := courierCtl(t, testenv.RunDir(t))
	raft := func() string { return fmt.Sprintf("tcp:127.0.0.1:%d", testenv.FreePort(t)) }
	noMetrics := []string{"--northd-metrics", "", "--southd-metrics", ""}
	const warning = "list every member's with --nb-remotes and --sb-remotes"
	out, err := courierCtl(append([]string{"cluster-create", "--nb-raft", raft(), "--sb-raft", raft()}, noMetrics...)...)
	if err != nil || !strings.Contains(out, warning) {
		t.Fatalf("cluster-create without remotes: %v, want the warning %q:\n%s", err, warning, out)
	}
	if out, err := courierCtl("stop"); err != nil {
		t.Fatalf("stop: %v\n%s", err, out)
	}
	if out, err = courierCtl(append([]string{"start"}, noMetrics...)...); err != nil || !strings.Contains(out, warning) {
		t.Errorf("start of a cluster member without remotes: %v, want the warning %q:\n%s", err, warning, out)
	}
}
