package southd_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/courier-sdn/courier/internal/testenv"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/southd"
)

// lockedBuffer collects a southd's log for the test to read.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// handoffs lists the SNAT_Handoff rows as "PORT FROM>TO", sorted.
func handoffs(t *testing.T, w *world) []string {
	t.Helper()
	res, err := ops.Transact(context.Background(), w.sb, ovsdb.Operation{Op: "select", Table: "SNAT_Handoff", Where: []ovsdb.Condition{},
		Columns: []string{"logical_port", "from_chassis", "to_chassis"}})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range res[0].Rows {
		out = append(out, fmt.Sprintf("%s %s>%s", r["logical_port"], r["from_chassis"], r["to_chassis"]))
	}
	sort.Strings(out)
	return out
}

func counters(t *testing.T, reg *prometheus.Registry, name, label string) map[string]float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label {
					out[l.GetValue()] = m.GetCounter().GetValue()
				}
			}
		}
	}
	return out
}

// #15: a SNAT_Handoff row nobody will ever install does not stay. With
// real databases, northd and southd: a handoff whose port was deleted,
// whose destination never existed or has been dead past the bound, is
// removed, with a log line and a count by why; one whose source alone
// is gone stays for its live destination, as does one between two live
// chassis, until both are too old.
func TestStaleSNATHandoffsAreRemoved(t *testing.T) {
	w := newWorld(t)
	for _, c := range []string{"hv1", "hv2", "hv3", "hv4"} {
		w.addChassis(t, c, false)
	}
	w.nb(t, "sb", "vpc-add", "a", "--", "vxnet-add", "a", "x", "10.0.0.0/24",
		"--", "port-add", "x", "p1", "02:00:00:00:00:01", "10.0.0.5",
		"--", "port-add", "x", "p2", "02:00:00:00:00:02", "10.0.0.6",
		"--", "port-add", "x", "p3", "02:00:00:00:00:03", "10.0.0.7")
	reg := prometheus.NewRegistry()
	var logs lockedBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	const maxAge = 12 * time.Second
	d := southd.New(southd.Config{NB: []string{w.dbs.NB}, SB: []string{w.dbs.SB}, DeadAfter: deadAfter, Tick: 50 * time.Millisecond,
		HandoffDeadFor: time.Second, HandoffMaxAge: maxAge, Metrics: southd.NewMetrics(reg),
		Log: slog.New(slog.NewTextHandler(io.MultiWriter(tWriter{t}, &logs), &slog.HandlerOptions{Level: slog.LevelDebug}))})
	go func() { d.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	row := func(port, from, to string) ovsdb.Operation {
		return ovsdb.Operation{Op: "insert", Table: "SNAT_Handoff", Row: ovsdb.Row{"logical_port": port, "from_chassis": from, "to_chassis": to,
			"connections": ovsdb.OvsSet{GoSet: []any{"6 40000 198.51.100.10:80 203.0.113.100:1024"}}}}
	}
	inserted := time.Now()
	w.do(t, row("p1", "hv1", "hv2"), // both ends live
		row("p1", "hv3", "hv2"), // its source is deleted below
		row("p2", "hv1", "hv9"), // a destination that never was
		row("p2", "hv1", "hv4"), // a destination that dies below
		row("p3", "hv1", "hv2")) // a port deleted below
	w.stopBeating("hv3")
	w.do(t, ovsdb.Operation{Op: "delete", Table: "Chassis", Where: []ovsdb.Condition{{Column: "name", Function: "==", Value: "hv3"}}},
		ovsdb.Operation{Op: "delete", Table: "Chassis_Private", Where: []ovsdb.Condition{{Column: "name", Function: "==", Value: "hv3"}}})
	w.stopBeating("hv4")
	w.nb(t, "sb", "port-del", "p3")

	want := []string{"p1 hv1>hv2", "p1 hv3>hv2"}
	testenv.Eventually(t, 9*time.Second, "the stale handoffs removed", func() error {
		if got := handoffs(t, w); fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("handoffs %v, want %v", got, want)
		}
		return nil
	})
	if time.Since(inserted) >= maxAge {
		t.Fatal("too slow to tell the stale rows from the aged")
	}
	// southd counts and logs a removal after its transaction commits,
	// so the rows can be gone a moment before both say so.
	testenv.Eventually(t, 2*time.Second, "the removals counted and logged", func() error {
		if got, want := counters(t, reg, "courier_southd_snat_handoffs_removed_total", "why"),
			map[string]float64{"no_port": 1, "destination_gone": 2}; fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("removed by why: %v, want %v", got, want)
		}
		for _, l := range []string{"p3 from=hv1 to=hv2 why=no_port", "p2 from=hv1 to=hv9 why=destination_gone", "p2 from=hv1 to=hv4 why=destination_gone"} {
			if !strings.Contains(logs.String(), `msg="removed a stale SNAT handoff" port=`+l) {
				return fmt.Errorf("no log line of a stale handoff with %q", l)
			}
		}
		return nil
	})
	// hv4's row goes deadAfter after its last beat (judged dead), then
	// HandoffDeadFor, at the next pass (at most safetyPass later).
	testenv.Eventually(t, maxAge+5*time.Second, "the old handoffs removed", func() error {
		if got := handoffs(t, w); len(got) > 0 {
			return fmt.Errorf("handoffs %v", got)
		}
		return nil
	})
	if time.Since(inserted) < maxAge {
		t.Errorf("handoffs between live chassis removed after %v, before their max age %v", time.Since(inserted), maxAge)
	}
	// Counted after the commit, as above: a moment after the rows go.
	testenv.Eventually(t, 2*time.Second, "the aged removals counted", func() error {
		if got := counters(t, reg, "courier_southd_snat_handoffs_removed_total", "why")["aged"]; got != 2 {
			return fmt.Errorf("aged: %v, want 2", got)
		}
		return nil
	})
}
