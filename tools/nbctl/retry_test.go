package nbctl_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"

	"github.com/courier-sdn/courier/internal/proc"
	"github.com/courier-sdn/courier/internal/testenv"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema/nbdb"
	"github.com/courier-sdn/courier/tools/nbctl"
)

// courier-nbctl failed at once while a cluster had no leader, even with
// --timeout: 40% of the writes made during Raft elections failed within
// milliseconds. The leader of a three-member northbound cluster is killed
// or stopped, again and again, while one write after another runs with
// --timeout; every write must succeed, and be applied exactly once. Each
// write adds a port (the schema refuses a second port of the same name)
// and a route (nothing but courier-nbctl keeps a route from being added
// twice).
func TestWritesWaitOutLeaderElections(t *testing.T) {
	const elections, timeout = 4, 15 * time.Second
	cl := testenv.StartCluster(t)
	db := strings.Join(cl.Remotes("nb"), ",")
	run := func(args ...string) error {
		o := nbctl.Options{DB: db, Wait: "none", Format: "table", LeaderOnly: true, Timeout: timeout}
		return nbctl.Run(context.Background(), o, args, &bytes.Buffer{})
	}
	if err := run("init", "--", "vpc-add", "v", "--", "vxnet-add", "v", "x", "10.0.0.0/16"); err != nil {
		t.Fatal(err)
	}

	w := &writer{run: run, stop: make(chan struct{}), done: make(chan struct{})}
	go w.loop()
	defer w.halt()
	for e := range elections {
		time.Sleep(500 * time.Millisecond)
		electNewLeader(t, cl, e%2 == 0)
	}
	time.Sleep(500 * time.Millisecond)
	w.halt()

	t.Logf("%d writes across %d elections: %d succeeded, the slowest took %v", w.attempted, elections, w.succeeded, w.slowest.Round(time.Millisecond))
	for i, f := range w.failures {
		if i == 5 {
			t.Logf("... and %d more failures", len(w.failures)-i)
			break
		}
		t.Log(f)
	}
	if len(w.failures) > 0 {
		t.Errorf("%d of %d writes failed within --timeout=%v", len(w.failures), w.attempted, timeout)
	}
	if w.attempted < 2*elections {
		t.Fatalf("only %d writes attempted", w.attempted)
	}
	checkOnce(t, db, w.ok, w.attempted)
}

// electNewLeader kills (or stops gracefully) the northbound leader, waits
// for another member to lead, and starts the old leader again so that the
// next election has a quorum.
func electNewLeader(t *testing.T, cl *testenv.Cluster, kill bool) {
	t.Helper()
	l := -1
	testenv.Eventually(t, 20*time.Second, "a northbound leader", func() error {
		if l = cl.Leader("nb"); l < 0 {
			return fmt.Errorf("none")
		}
		return nil
	})
	m := cl.Members[l]
	if kill {
		pid, ok := proc.Running(filepath.Join(m.RunDir, "ovsdb-server-nb.pid"), "ovsdb-server")
		if !ok {
			t.Fatal("the leader's ovsdb-server is not running")
		}
		syscall.Kill(pid, syscall.SIGKILL)
	} else if err := m.StopServer("nb"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	testenv.Eventually(t, 20*time.Second, "a new northbound leader", func() error {
		if n := cl.Leader("nb"); n < 0 || n == l {
			return fmt.Errorf("leader %d", n)
		}
		return nil
	})
	t.Logf("member %d %s; member %d leads after %v", l, map[bool]string{true: "killed", false: "stopped"}[kill],
		cl.Leader("nb"), time.Since(start).Round(time.Millisecond))
	if err := m.StartServer(t.Context(), "nb"); err != nil {
		t.Fatal(err)
	}
}

// writer adds a port and a route per write until stopped.
type writer struct {
	run                  func(args ...string) error
	stop, done           chan struct{}
	once                 sync.Once
	attempted, succeeded int
	ok                   map[int]bool
	slowest              time.Duration
	failures             []string
}

func (w *writer) loop() {
	defer close(w.done)
	w.ok = map[int]bool{}
	for i := 0; ; i++ {
		select {
		case <-w.stop:
			return
		default:
		}
		start := time.Now()
		err := w.run("port-add", "x", fmt.Sprintf("p%d", i), fmt.Sprintf("02:00:00:00:%02x:%02x", i/256, i%256),
			fmt.Sprintf("10.0.%d.%d", i/250, i%250+2),
			"--", "route-add", "v", fmt.Sprintf("172.%d.%d.0/24", 16+i/256, i%256), "10.0.0.2")
		took := time.Since(start)
		w.attempted++
		w.slowest = max(w.slowest, took)
		if err != nil {
			w.failures = append(w.failures, fmt.Sprintf("write %d failed after %v: %v", i, took.Round(time.Millisecond), err))
			time.Sleep(20 * time.Millisecond)
			continue
		}
		w.succeeded++
		w.ok[i] = true
	}
}

func (w *writer) halt() {
	w.once.Do(func() { close(w.stop) })
	<-w.done
}

// checkOnce checks that every write that succeeded left exactly one port
// and one route, and that a write that failed left both or neither.
func checkOnce(t *testing.T, db string, ok map[int]bool, attempted int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, _ := nbdb.FullDatabaseModel()
	s, err := ops.OpenRetrying(ctx, m, ops.SessionOptions{Remotes: strings.Split(db, ","), LeaderOnly: true,
		Monitor: []client.MonitorOption{client.WithTable(&nbdb.VPC{}), client.WithTable(&nbdb.Port{}), client.WithTable(&nbdb.Route{})}},
		&ops.Backoff{First: 50 * time.Millisecond, Max: 500 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ports, routes := map[string]int{}, map[string]int{}
	for _, p := range ops.Rows[nbdb.Port](s) {
		ports[p.Name]++
	}
	for _, r := range ops.Rows[nbdb.Route](s) {
		routes[r.Prefix]++
	}
	for i := range attempted {
		pc, rc := ports[fmt.Sprintf("p%d", i)], routes[fmt.Sprintf("172.%d.%d.0/24", 16+i/256, i%256)]
		switch {
		case ok[i] && (pc != 1 || rc != 1):
			t.Errorf("write %d succeeded and left %d ports and %d routes, want one of each", i, pc, rc)
		case !ok[i] && (pc != rc || rc > 1):
			t.Errorf("write %d failed and left %d ports and %d routes", i, pc, rc)
		}
	}
}

// A transaction whose answer is lost may have committed or not; either
// way the invocation must succeed and apply its change exactly once. A
// proxy in front of the server drops the connection either after the
// server has answered the write (it committed) or instead of passing the
// write on (it did not).
func TestUnansweredWriteAppliesOnce(t *testing.T) {
	dbs := testenv.StartDBs(t)
	mustNB(t, dbs.NB, "vpc-add", "v", "--", "vxnet-add", "v", "x", "10.0.0.0/16")
	for i, committed := range []bool{true, false} {
		proxy := lossyProxy(t, strings.TrimPrefix(dbs.NB, "unix:"), committed, `"Route"`)
		o := nbctl.Options{DB: "unix:" + proxy, Wait: "none", Format: "table", LeaderOnly: true, Timeout: 10 * time.Second}
		err := nbctl.Run(context.Background(), o, []string{"port-add", "x", fmt.Sprintf("p%d", i), fmt.Sprintf("02:00:00:00:00:%02x", i+2),
			fmt.Sprintf("10.0.0.%d", i+10), "--", "route-add", "v", fmt.Sprintf("172.16.%d.0/24", i), "10.0.0.2"}, &bytes.Buffer{})
		if err != nil {
			t.Errorf("committed=%v: %v", committed, err)
		}
	}
	checkOnce(t, dbs.NB, map[int]bool{0: true, 1: true}, 2)
}

// The same for commands that read only the rows they name: port-add
// reads no port, so the read after an unanswered attempt must read the
// ports that attempt created to see that it committed, not add the port
// again and fail with "already exists".
func TestUnansweredNamedWriteAppliesOnce(t *testing.T) {
	dbs := testenv.StartDBs(t)
	mustNB(t, dbs.NB, "vpc-add", "v", "--", "vxnet-add", "v", "x", "10.0.0.0/16")
	for i, committed := range []bool{true, false} {
		proxy := lossyProxy(t, strings.TrimPrefix(dbs.NB, "unix:"), committed, `"Address_Claim"`)
		o := nbctl.Options{DB: "unix:" + proxy, Wait: "none", Format: "table", LeaderOnly: true, Timeout: 10 * time.Second}
		err := nbctl.Run(context.Background(), o, []string{"port-add", "x", fmt.Sprintf("p%d", i), fmt.Sprintf("02:00:00:00:00:%02x", i+2),
			fmt.Sprintf("10.0.0.%d", i+10)}, &bytes.Buffer{})
		if err != nil {
			t.Errorf("committed=%v: %v", committed, err)
		}
	}
	if out := mustNB(t, dbs.NB, "port-list", "x"); strings.Count(out, "\n") != 1+2 {
		t.Errorf("port-list after the unanswered writes:\n%s", out)
	}
}

// lossyProxy passes JSON-RPC messages between its clients and the server
// at socket, except the first transaction that names table (quoted): with
// committed, the server's answer to it is dropped with the connection;
// without, the transaction itself is.
func lossyProxy(t *testing.T, socket string, committed bool, table string) string {
	path := filepath.Join(testenv.RunDir(t), "proxy.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var fired atomic.Bool
	var drop atomic.Pointer[string] // the id of the answer to drop
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("unix", socket)
			if err != nil {
				c.Close()
				continue
			}
			t.Cleanup(func() { c.Close(); s.Close() })
			go relay(s, c, func(id string, _ []byte) bool {
				p := drop.Load()
				return p == nil || *p != id || !drop.CompareAndSwap(p, nil)
			})
			go relay(c, s, func(id string, msg []byte) bool {
				if !bytes.Contains(msg, []byte(`"transact"`)) || !bytes.Contains(msg, []byte(table)) || fired.Swap(true) {
					return true
				}
				if committed {
					drop.Store(&id)
				}
				return committed
			})
		}
	}()
	return path
}

// relay copies messages from src to dst while pass says so; when it does
// not, it closes both.
func relay(src, dst net.Conn, pass func(id string, msg []byte) bool) {
	defer src.Close()
	defer dst.Close()
	dec := json.NewDecoder(src)
	for {
		var msg json.RawMessage
		if err := dec.Decode(&msg); err != nil {
			return
		}
		var head struct {
			ID json.RawMessage `json:"id"`
		}
		json.Unmarshal(msg, &head)
		if !pass(string(head.ID), msg) {
			return
		}
		if _, err := dst.Write(msg); err != nil {
			return
		}
	}
}

// --wait only reads once the change is committed, so losing the database
// while waiting is not a failure: the wait goes on through a new session.
func TestWaitSurvivesADatabaseRestart(t *testing.T) {
	dbs := testenv.StartDBs(t)
	mustNB(t, dbs.NB, "init")
	done := make(chan error, 1)
	go func() {
		o := nbctl.Options{DB: dbs.NB, Wait: "sb", Format: "table", LeaderOnly: true, Timeout: 15 * time.Second}
		done <- nbctl.Run(context.Background(), o, []string{"vpc-add", "w"}, &bytes.Buffer{})
	}()
	testenv.Eventually(t, 10*time.Second, "the write committed", func() error {
		out := testenv.Run(t, "ovsdb-client", "transact", dbs.NB, `["Courier_Northbound",
		  {"op":"select","table":"NB_Global","where":[],"columns":["nb_cfg"]}]`)
		if !strings.Contains(out, `"nb_cfg":1}`) {
			return fmt.Errorf("%s", out)
		}
		return nil
	})
	if err := dbs.StopServer("nb"); err != nil {
		t.Fatal(err)
	}
	if err := dbs.StartServer(t.Context(), "nb"); err != nil {
		t.Fatal(err)
	}
	// Play northd: acknowledge the change.
	testenv.Run(t, "ovsdb-client", "transact", dbs.NB, `["Courier_Northbound",
	  {"op":"update","table":"NB_Global","where":[],"row":{"sb_cfg":1}}]`)
	if err := <-done; err != nil {
		t.Fatalf("--wait=sb across a restart: %v", err)
	}
}
