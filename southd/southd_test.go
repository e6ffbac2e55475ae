package southd_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/internal/central"
	"github.com/courier-sdn/courier/internal/proc"
	"github.com/courier-sdn/courier/internal/testenv"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema/sbdb"
	"github.com/courier-sdn/courier/southd"
	"github.com/courier-sdn/courier/tools/nbctl"
)

// world: real databases, northd, and hosts simulated by their rows.
type world struct {
	dbs *testenv.DBs
	sb  *ops.Session
	mu  sync.Mutex
	// beating: chassis whose heartbeat the test keeps bumping.
	beating map[string]bool
}

const deadAfter = 1500 * time.Millisecond

func newWorld(t *testing.T) *world {
	northd := central.Daemons("", "")[0]
	dbs := testenv.StartDBs(t, northd)
	m, _ := sbdb.FullDatabaseModel()
	sb, err := ops.Open(context.Background(), m, ops.SessionOptions{Remotes: []string{dbs.SB}, Monitor: []client.MonitorOption{
		client.WithTable(&sbdb.Chassis{}), client.WithTable(&sbdb.ChassisPrivate{}), client.WithTable(&sbdb.Hub{}),
		client.WithTable(&sbdb.PortBinding{}), client.WithTable(&sbdb.LearnedBinding{}), client.WithTable(&sbdb.Datapath{})}})
	if err != nil {
		t.Fatal(err)
	}
	w := &world{dbs: dbs, sb: sb, beating: map[string]bool{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { // the hosts' heartbeats
		defer close(done)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			w.mu.Lock()
			var txn []ovsdb.Operation
			for c := range w.beating {
				txn = append(txn, ovsdb.Operation{Op: "mutate", Table: "Chassis_Private", Where: []ovsdb.Condition{{Column: "name", Function: "==", Value: c}},
					Mutations: []ovsdb.Mutation{{Column: "heartbeat", Mutator: "+=", Value: 1}}})
			}
			w.mu.Unlock()
			ops.Transact(ctx, sb, txn...)
		}
	}()
	t.Cleanup(func() { cancel(); <-done; sb.Close() })
	return w
}

func (w *world) nb(t *testing.T, wait string, args ...string) {
	t.Helper()
	var out bytes.Buffer
	if err := nbctl.Run(context.Background(), nbctl.Options{DB: w.dbs.NB, Wait: wait, Format: "table", Timeout: 15 * time.Second}, args, &out); err != nil {
		t.Fatalf("courier-nbctl %s: %v", strings.Join(args, " "), err)
	}
}

// addChassis simulates a host: its rows, a heartbeat, an acked nb_cfg.
func (w *world) addChassis(t *testing.T, name string, hub bool) {
	t.Helper()
	roles := []any{}
	if hub {
		roles = append(roles, "hub")
	}
	_, err := ops.Transact(context.Background(), w.sb,
		ovsdb.Operation{Op: "insert", Table: "Chassis", Row: ovsdb.Row{"name": name, "hostname": name, "encap_ip": "192.0.2.1",
			"roles": ovsdb.OvsSet{GoSet: roles}}},
		ovsdb.Operation{Op: "insert", Table: "Chassis_Private", Row: ovsdb.Row{"name": name}})
	if err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	w.beating[name] = true
	w.mu.Unlock()
}

func (w *world) stopBeating(name string) {
	w.mu.Lock()
	delete(w.beating, name)
	w.mu.Unlock()
}

func (w *world) do(t *testing.T, txn ...ovsdb.Operation) {
	t.Helper()
	if _, err := ops.Transact(context.Background(), w.sb, txn...); err != nil {
		t.Fatal(err)
	}
}

func startSouthd(t *testing.T, w *world) context.CancelFunc {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	d := southd.New(southd.Config{NB: []string{w.dbs.NB}, SB: []string{w.dbs.SB}, DeadAfter: deadAfter,
		LearnedAge: 3 * time.Second, AgeBatch: 2, Tick: 50 * time.Millisecond, Log: testenv.Logger(t)})
	go func() { d.Run(ctx); close(done) }()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}

func hubs(w *world) map[int][]string {
	out := map[int][]string{}
	for _, h := range ops.Rows[sbdb.Hub](w.sb) {
		c := slices.Clone(h.Chassis)
		sort.Strings(c)
		out[h.Vpc] = c
	}
	return out
}

func alive(w *world, name string) *bool {
	for _, p := range ops.Rows[sbdb.ChassisPrivate](w.sb) {
		if p.Name == name {
			return p.Alive
		}
	}
	return nil
}

func TestLivenessHubsAndRestart(t *testing.T) {
	w := newWorld(t)
	for _, c := range []string{"hv1", "hv2", "hv3"} {
		w.addChassis(t, c, true)
	}
	w.addChassis(t, "hv4", false)
	w.nb(t, "sb", "vpc-add", "a", "--", "vpc-add", "b", "--", "vpc-add", "c",
		"--", "vxnet-add", "a", "xa", "10.0.0.0/24", "--", "port-add", "xa", "pa", "02:00:00:00:00:01", "10.0.0.5")
	startSouthd(t, w)
	testenv.Eventually(t, 5*time.Second, "hubs assigned", func() error {
		h := hubs(w)
		if len(h) != 3 {
			return fmt.Errorf("%v", h)
		}
		for _, c := range h {
			if len(c) != 2 || slices.Contains(c, "hv4") {
				return fmt.Errorf("%v", h)
			}
		}
		return nil
	})
	before := hubs(w)
	load := map[string]int{}
	for _, cs := range before {
		for _, c := range cs {
			load[c]++
		}
	}
	for c, n := range load {
		if n > 2 {
			t.Errorf("hubs not balanced: %s serves %d VPCs (%v)", c, n, before)
		}
	}

	// hv1's heartbeat stops: dead within the timeout, its ports down, and
	// its hub duties move to live chassis while nothing else moves.
	pa := func() *sbdb.PortBinding {
		for _, pb := range ops.Rows[sbdb.PortBinding](w.sb) {
			if pb.LogicalPort == "pa" {
				return pb
			}
		}
		return nil
	}
	testenv.Eventually(t, 5*time.Second, "port bound", func() error {
		if pa() == nil {
			return fmt.Errorf("no binding")
		}
		return nil
	})
	w.do(t, ovsdb.Operation{Op: "update", Table: "Port_Binding", Where: []ovsdb.Condition{{Column: "logical_port", Function: "==", Value: "pa"}},
		Row: ovsdb.Row{"chassis": "hv1", "up": true}})
	w.stopBeating("hv1")
	start := time.Now()
	testenv.Eventually(t, 3*deadAfter, "hv1 dead", func() error {
		if a := alive(w, "hv1"); a == nil || *a {
			return fmt.Errorf("alive=%v", a)
		}
		return nil
	})
	t.Logf("hv1 declared dead %v after its last heartbeat (timeout %v)", time.Since(start), deadAfter)
	testenv.Eventually(t, 2*time.Second, "hv1's port down", func() error {
		if pb := pa(); pb.Up == nil || *pb.Up || pb.Chassis == nil || *pb.Chassis != "hv1" {
			return fmt.Errorf("up=%v chassis=%v: want down, still bound", pb.Up, pb.Chassis)
		}
		return nil
	})
	testenv.Eventually(t, 2*time.Second, "hubs moved off hv1", func() error {
		for vpc, cs := range hubs(w) {
			if slices.Contains(cs, "hv1") || len(cs) != 2 {
				return fmt.Errorf("vpc %d: %v", vpc, cs)
			}
		}
		return nil
	})
	after := hubs(w)
	for vpc, cs := range before {
		for _, c := range cs {
			if c != "hv1" && !slices.Contains(after[vpc], c) {
				t.Errorf("vpc %d lost live hub %s (%v -> %v)", vpc, c, cs, after[vpc])
			}
		}
	}
	for _, c := range []string{"hv2", "hv3", "hv4"} {
		if a := alive(w, c); a == nil || !*a {
			t.Errorf("%s not alive", c)
		}
	}
}

func TestRestartMovesNothing(t *testing.T) {
	w := newWorld(t)
	for _, c := range []string{"hv1", "hv2", "hv3"} {
		w.addChassis(t, c, true)
	}
	w.nb(t, "sb", "vpc-add", "a", "--", "vpc-add", "b")
	stop := startSouthd(t, w)
	testenv.Eventually(t, 5*time.Second, "hubs", func() error {
		if len(hubs(w)) != 2 {
			return fmt.Errorf("%v", hubs(w))
		}
		return nil
	})
	before := hubs(w)
	stop()
	startSouthd(t, w)
	time.Sleep(2 * deadAfter)
	if after := hubs(w); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("restart moved hubs: %v -> %v", before, after)
	}
	for _, c := range []string{"hv1", "hv2", "hv3"} {
		if a := alive(w, c); a == nil || !*a {
			t.Errorf("restart declared %s dead", c)
		}
	}
}

// A chassis declares the hub role itself; when the operator names the
// hubs (set-hub-chassis), a chassis outside the list is never one, and
// changing the list moves the duty.
func TestHubsOnlyAmongNamedChassis(t *testing.T) {
	w := newWorld(t)
	for _, c := range []string{"hv1", "hv2", "hv3"} {
		w.addChassis(t, c, true)
	}
	w.nb(t, "sb", "set-hub-chassis", "hv3", "hv1", "--", "vpc-add", "a", "--", "vpc-add", "b")
	startSouthd(t, w)
	want := func(cs ...string) func() error {
		return func() error {
			h := hubs(w)
			if len(h) != 2 {
				return fmt.Errorf("%v", h)
			}
			for _, got := range h {
				if fmt.Sprint(got) != fmt.Sprint(cs) {
					return fmt.Errorf("%v, want %v for every VPC", h, cs)
				}
			}
			return nil
		}
	}
	testenv.Eventually(t, 5*time.Second, "hubs among the named", want("hv1", "hv3"))
	w.nb(t, "sb", "set-hub-chassis", "hv2")
	testenv.Eventually(t, 5*time.Second, "hubs moved to the one named", want("hv2"))
	w.nb(t, "sb", "set-hub-chassis")
	testenv.Eventually(t, 5*time.Second, "any hub-role chassis again", func() error {
		for _, cs := range hubs(w) {
			if len(cs) != 2 || !slices.Contains(cs, "hv2") {
				return fmt.Errorf("%v", hubs(w))
			}
		}
		return nil
	})
}

func learned(w *world) []string {
	var out []string
	for _, lb := range ops.Rows[sbdb.LearnedBinding](w.sb) {
		s := lb.LogicalPort + "/" + lb.IP
		if !lb.Accepted {
			s += "(pending)"
		}
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

func TestLearnedBindings(t *testing.T) {
	w := newWorld(t)
	w.addChassis(t, "hv1", false)
	w.addChassis(t, "hv2", false)
	w.nb(t, "sb", "vpc-add", "a", "--", "vxnet-add", "a", "x", "10.0.0.0/24",
		"--", "port-add", "x", "p1", "02:00:00:00:00:01", "10.0.0.5", "--vip", "10.0.0.100",
		"--", "port-add", "x", "p2", "02:00:00:00:00:02", "10.0.0.6", "--vip", "10.0.0.100",
		"--", "port-add", "x", "p3", "02:00:00:00:00:03", "10.0.0.7",
		"--", "port-add", "x", "u", "02:00:00:00:00:04", "unknown")
	bind := func(port, chassis string) ovsdb.Operation {
		return ovsdb.Operation{Op: "update", Table: "Port_Binding", Where: []ovsdb.Condition{{Column: "logical_port", Function: "==", Value: port}},
			Row: ovsdb.Row{"chassis": chassis}}
	}
	w.do(t, bind("p1", "hv1"), bind("p2", "hv2"), bind("p3", "hv1"), bind("u", "hv2"))
	startSouthd(t, w)
	now := int(time.Now().UnixMilli())
	row := func(port, chassis, ip string, seq, ts int) ovsdb.Operation {
		return ovsdb.Operation{Op: "insert", Table: "Learned_Binding", Row: ovsdb.Row{"vpc": 1, "vni": 1, "ip": ip,
			"mac": "02:00:00:00:00:01", "logical_port": port, "chassis": chassis, "kind": "virtual_ip", "seq": seq, "timestamp": ts}}
	}
	// Two holders of one virtual IP: the newest announcement wins.
	w.do(t, row("p1", "hv1", "10.0.0.100", 1, now), row("p2", "hv2", "10.0.0.100", 2, now))
	// Not allowed: p3 may not hold it; p1 is not on hv2; u, whose
	// addresses are unknown, may not take p3's fixed IP.
	unknown := row("u", "hv2", "10.0.0.7", 99, now)
	unknown.Row["kind"] = "unknown"
	w.do(t, row("p3", "hv1", "10.0.0.100", 9, now), row("p1", "hv2", "10.0.0.101", 1, now), unknown)
	testenv.Eventually(t, 3*time.Second, "arbitration", func() error {
		if got := learned(w); fmt.Sprint(got) != "[p2/10.0.0.100]" {
			return fmt.Errorf("%v", got)
		}
		return nil
	})
	// Aging: only stale rows go, a bounded batch at a time.
	old := int(time.Now().Add(-time.Hour).UnixMilli())
	w.do(t, ovsdb.Operation{Op: "update", Table: "Port_Binding", Where: []ovsdb.Condition{{Column: "logical_port", Function: "==", Value: "p3"}},
		Row: ovsdb.Row{"virtual_ips": ovsdb.OvsSet{GoSet: []any{"10.0.0.110", "10.0.0.111", "10.0.0.112", "10.0.0.113", "10.0.0.114"}}}})
	var txn []ovsdb.Operation
	for i := 0; i < 5; i++ {
		txn = append(txn, row("p3", "hv1", fmt.Sprintf("10.0.0.11%d", i), 1, old))
	}
	w.do(t, txn...)
	testenv.Eventually(t, 5*time.Second, "aged out", func() error {
		if n := len(learned(w)); n != 1 {
			return fmt.Errorf("%d rows", n)
		}
		return nil
	})
	if got := learned(w); fmt.Sprint(got) != "[p2/10.0.0.100]" {
		t.Errorf("aging removed the fresh row: %v", got)
	}
}

func TestWaitHVIgnoresDeadChassis(t *testing.T) {
	w := newWorld(t)
	w.addChassis(t, "hv1", false)
	w.addChassis(t, "hv2", false)
	startSouthd(t, w)
	// Simulated hosts that apply whatever nb_cfg they see.
	m, _ := sbdb.FullDatabaseModel()
	sbg, err := ops.Open(context.Background(), m, ops.SessionOptions{Remotes: []string{w.dbs.SB}, Monitor: []client.MonitorOption{client.WithTable(&sbdb.SBGlobal{})}})
	if err != nil {
		t.Fatal(err)
	}
	defer sbg.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	acking := map[string]bool{"hv1": true, "hv2": true}
	var mu sync.Mutex
	go func() {
		for ctx.Err() == nil {
			var cfg int
			for _, g := range ops.Rows[sbdb.SBGlobal](sbg) {
				cfg = g.NbCfg
			}
			mu.Lock()
			for c, on := range acking {
				if on {
					ops.Transact(ctx, sbg, ovsdb.Operation{Op: "update", Table: "Chassis_Private", Where: []ovsdb.Condition{{Column: "name", Function: "==", Value: c}},
						Row: ovsdb.Row{"nb_cfg": cfg}})
				}
			}
			mu.Unlock()
			time.Sleep(20 * time.Millisecond)
		}
	}()
	w.nb(t, "hv", "vpc-add", "x") // both hosts ack: returns
	mu.Lock()
	acking["hv2"] = false // hv2 stops applying ...
	mu.Unlock()
	o := nbctl.Options{DB: w.dbs.NB, Wait: "hv", Format: "table", Timeout: 800 * time.Millisecond}
	if err := nbctl.Run(context.Background(), o, []string{"vpc-add", "y"}, &bytes.Buffer{}); err == nil {
		t.Fatal("--wait=hv returned although hv2 had not applied the change")
	}
	w.stopBeating("hv2") // ... and dies: it no longer holds anyone up
	start := time.Now()
	w.nb(t, "hv", "vpc-add", "z")
	t.Logf("--wait=hv returned %v after hv2 stopped; dead-after %v", time.Since(start), deadAfter)
}

// The active southd is killed; the standby takes over.
func TestStandbyTakesOver(t *testing.T) {
	w := newWorld(t)
	w.addChassis(t, "hv1", true)
	w.addChassis(t, "hv2", true)
	bin := testenv.BinDir(t)
	var pids []int
	for i := 0; i < 2; i++ {
		name := fmt.Sprintf("southd%d", i)
		pid, err := proc.Start(proc.Spec{Bin: filepath.Join(bin, "courier-southd"), LogFile: filepath.Join(w.dbs.RunDir, name+".log"),
			PidFile: filepath.Join(w.dbs.RunDir, name+".pid"),
			Args:    []string{"--nb", w.dbs.NB, "--sb", w.dbs.SB, "--dead-after", "1s", "--log-level", "debug"}})
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, pid)
		t.Cleanup(func() { proc.StopPID(pid, "courier-southd", 5*time.Second) })
		time.Sleep(300 * time.Millisecond)
	}
	w.nb(t, "sb", "vpc-add", "a")
	testenv.Eventually(t, 5*time.Second, "first decision", func() error {
		if len(hubs(w)) != 1 {
			return fmt.Errorf("no hubs yet")
		}
		return nil
	})
	syscall.Kill(pids[0], syscall.SIGKILL) // the first one took the lock
	start := time.Now()
	w.nb(t, "sb", "vpc-add", "b")
	testenv.Eventually(t, 5*time.Second, "standby decides", func() error {
		if len(hubs(w)) != 2 {
			return fmt.Errorf("%v", hubs(w))
		}
		return nil
	})
	took := time.Since(start)
	t.Logf("standby assigned hubs for a new VPC %v after the active southd was killed", took)
	if took > 3*time.Second {
		t.Errorf("takeover took %v", took)
	}
}

// A southbound that stops answering for longer than dead-after (frozen
// here; a restart ends southd's session, which starts afresh) must not
// make southd declare anybody dead once it answers again: no heartbeat
// could change meanwhile. Before, every chassis was declared dead and
// every hub removed the moment the server came back.
func TestStalledSouthboundDeclaresNobodyDead(t *testing.T) {
	w := newWorld(t)
	for _, c := range []string{"hv1", "hv2"} {
		w.addChassis(t, c, true)
	}
	w.nb(t, "sb", "vpc-add", "a")
	startSouthd(t, w)
	testenv.Eventually(t, 5*time.Second, "hubs assigned", func() error {
		if h := hubs(w); len(h[1]) != 2 {
			return fmt.Errorf("%v", h)
		}
		return nil
	})
	pid := w.dbs.ServerPID("sb")
	if pid == 0 {
		t.Fatal("no southbound server")
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * deadAfter)
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	// Watch for longer than dead-after: the heartbeats resume at once.
	end := time.Now().Add(deadAfter + time.Second)
	for time.Now().Before(end) {
		for _, c := range []string{"hv1", "hv2"} {
			if a := alive(w, c); a == nil || !*a {
				t.Fatalf("%s declared dead after the southbound answered again", c)
			}
		}
		if h := hubs(w); len(h[1]) != 2 {
			t.Fatalf("hubs changed: %v", h)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
