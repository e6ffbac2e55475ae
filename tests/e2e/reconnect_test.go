package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"

	"github.com/courier-sdn/courier/internal/daemon"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// Reconnect backoff grew across separate outages: it was reset only by a
// session that had lived a minute, so after a few short database restarts
// the daemons waited 8-10 s to reach servers that had been back for
// milliseconds. Both databases are restarted ten times in a row; each
// time, a --wait=hv port-add must be applied by every host. What is
// checked is the behaviour, not a time (which a loaded machine would
// stretch): every session that ended after it was established was
// retried after at most the first backoff (each host's log says how long
// it waited), and every host saw every outage. The time each round took
// is logged (0.1-0.2 s here).
func TestReconnectStaysFastAcrossRestarts(t *testing.T) {
	const rounds = 10
	e := start(t, 2, 1)
	e.nb("vpc-add", "r", "--", "vxnet-add", "r", "x", "10.3.0.0/24")
	// The outages must meet established sessions: a hostd started a
	// moment ago may not have connected yet, and its first attempt
	// failing (then waiting out its first backoff) is not what this
	// test is about; it made the first round take 2 s once.
	settled := time.Now()
	for err := e.hostsApplied(); err != nil; err = e.hostsApplied() {
		if time.Since(settled) > 20*time.Second {
			t.Fatalf("before the restarts: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	c := e.s.Ctl()
	var took []time.Duration
	for i := range rounds {
		for _, db := range []string{"sb", "nb"} {
			if err := c.StopServer(db); err != nil {
				t.Fatalf("round %d: stop %s: %v", i, db, err)
			}
		}
		for _, db := range []string{"nb", "sb"} {
			if err := c.StartServer(t.Context(), db); err != nil {
				t.Fatalf("round %d: start %s: %v", i, db, err)
			}
		}
		back := time.Now()
		port := fmt.Sprintf("r%d", i)
		if err := e.nbErr("hv", "port-add", "x", port, fmt.Sprintf("02:00:00:03:00:%02x", i+10), fmt.Sprintf("10.3.0.%d", i+10)); err != nil {
			t.Fatalf("round %d: port-add %s: %v", i, port, err)
		}
		// --wait=hv counts live hosts only: a hostd still waiting to
		// reconnect could have been declared dead meanwhile.
		for err := e.hostsApplied(); err != nil; err = e.hostsApplied() {
			if time.Since(back) > 20*time.Second {
				t.Fatalf("round %d: %v", i, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		took = append(took, time.Since(back))
		t.Logf("restart %d: port-add --wait=hv applied by every host %v after the servers were back", i+1, took[i].Round(time.Millisecond))
	}
	sorted := slices.Sorted(slices.Values(took))
	t.Logf("%d restarts of both databases: min %v, median %v, max %v", rounds,
		sorted[0].Round(time.Millisecond), sorted[rounds/2].Round(time.Millisecond), sorted[rounds-1].Round(time.Millisecond))
	for _, host := range []string{"hv1", "hv2"} {
		waits := e.reconnectWaits(host)
		if len(waits) < rounds {
			t.Errorf("%s's log shows %d established sessions ending, want at least %d (one per outage)", host, len(waits), rounds)
		}
		for i, w := range waits {
			if w > daemon.DefaultFirstBackoff {
				t.Errorf("%s: established session %d ended and was retried after %v, more than the first backoff %v: the backoff was not reset",
					host, i+1, w, daemon.DefaultFirstBackoff)
			}
		}
	}
}

// reconnectWaits reads from a host's hostd log how long it waited before
// reconnecting each session that ended after it was established.
func (e *env) reconnectWaits(host string) []time.Duration {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join(e.s.RunDir, "hostd-"+host+".log"))
	if err != nil {
		e.t.Fatal(err)
	}
	var out []time.Duration
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.Contains(l, "ended; reconnecting") || !strings.Contains(l, "established=true") {
			continue
		}
		_, in, ok := strings.Cut(l, " in=")
		if !ok {
			e.t.Fatalf("%s: a reconnect line without its wait: %s", host, l)
		}
		d, err := time.ParseDuration(strings.Fields(in)[0])
		if err != nil {
			e.t.Fatalf("%s: wait in %q: %v", host, l, err)
		}
		out = append(out, d)
	}
	return out
}

// hostsApplied says whether every host has applied the southbound's
// current nb_cfg.
func (e *env) hostsApplied() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, _ := sbdb.FullDatabaseModel()
	s, err := ops.Open(ctx, m, ops.SessionOptions{Remotes: []string{e.s.SB()},
		Monitor: []client.MonitorOption{client.WithTable(&sbdb.SBGlobal{}), client.WithTable(&sbdb.ChassisPrivate{})}})
	if err != nil {
		return err
	}
	defer s.Close()
	gs := ops.Rows[sbdb.SBGlobal](s)
	if len(gs) != 1 {
		return fmt.Errorf("%d SB_Global rows", len(gs))
	}
	cps := ops.Rows[sbdb.ChassisPrivate](s)
	if len(cps) != len(e.s.State.Hosts) {
		return fmt.Errorf("%d of %d chassis registered", len(cps), len(e.s.State.Hosts))
	}
	for _, cp := range cps {
		if cp.NbCfg < gs[0].NbCfg {
			return fmt.Errorf("%s applied nb_cfg %d of %d", cp.Name, cp.NbCfg, gs[0].NbCfg)
		}
	}
	return nil
}
