package bench

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"
)

func testChurner(n int) *churner {
	c := &churner{from: "ghost", to: "ghost2", n: n, uuid: map[int]string{}, at: map[int]string{}, busy: map[int]bool{}}
	for p := 0; p < n; p++ {
		c.uuid[p], c.at[p] = fmt.Sprintf("u%d", p), "ghost"
	}
	return c
}

// The churn deletes, adds back and moves in turn, never touches a port
// with a change in flight, and keeps its view equal to what the changes
// made: a port deleted is added back, a failed change leaves it as it
// was.
func TestChurnerPicks(t *testing.T) {
	c := testChurner(10)
	kinds := map[churnKind]int{}
	inFlight := map[int]churnKind{}
	for i := 0; i < 300; i++ {
		kind, p, ok := c.pick(i)
		if !ok {
			t.Fatalf("change %d: no port to pick", i)
		}
		if _, busy := inFlight[p]; busy {
			t.Fatalf("change %d picked port %d, which has a change in flight", i, p)
		}
		if _, exists := c.uuid[p]; exists == (kind == churnAdd) {
			t.Fatalf("change %d: %v of port %d, which exists: %v", i, kind, p, exists)
		}
		inFlight[p] = kind
		kinds[kind]++
		if len(inFlight) < 3 {
			continue // keep a few in flight
		}
		for q, k := range inFlight {
			var err error
			if i%7 == 0 {
				err = errors.New("refused")
			}
			c.done(k, q, "new-"+fmt.Sprint(q), err)
			delete(inFlight, q)
		}
	}
	if kinds[churnDelete] != 100 || kinds[churnAdd] < 90 || kinds[churnMove] < 100 {
		t.Fatalf("changes made: %v, want a third deletes and about as many adds", kinds)
	}
	if got := len(c.uuid) + len(c.gone) + len(inFlight); got < 10 {
		t.Fatalf("%d ports accounted for, want 10", got)
	}
}

func TestChurnerOps(t *testing.T) {
	c := testChurner(300)
	del := c.ops(churnDelete, 260)
	if len(del) != 1 || del[0].Table != "Vxnet" || del[0].Where[0].Value != "x7" ||
		del[0].Mutations[0].Mutator != ovsdb.MutateOperationDelete {
		t.Fatalf("delete of p260: %+v, want it taken out of vxnet x7's ports", del)
	}
	c.done(churnDelete, 260, "", nil)
	add := c.ops(churnAdd, 260)
	if len(add) != 2 || add[0].Row["name"] != "p260" || add[0].Row["ips"] != benchIP(260).String() || add[0].Row["requested_chassis"] != "ghost" {
		t.Fatalf("add of p260: %+v", add)
	}
	mv := c.ops(churnMove, 5)
	c.done(churnMove, 5, "", nil)
	back := c.ops(churnMove, 5)
	if mv[0].Row["requested_chassis"] != "ghost2" || back[0].Row["requested_chassis"] != "ghost" {
		t.Fatalf("moves of p5: %v then %v, want ghost2 then back", mv[0].Row, back[0].Row)
	}
}

// The summary names every target the run missed, and only those.
func TestHostScaleMissed(t *testing.T) {
	rate := func(asked int, achieved, up, reply float64) ScaleRate {
		return ScaleRate{Churn: ChurnStats{Asked: asked, Achieved: achieved}, ToUp: Latency{P99: up}, Latency: Latency{P99: reply}}
	}
	r := &HostScaleResult{Ports: 64000, Idle: []HostLoad{{Host: "hostd-hv1", CPUPct: 0.5}, {Host: "courier-northd", CPUPct: 3}},
		Rates: []ScaleRate{rate(20, 20, 500, 500), rate(100, 99, 99, 149)}}
	if m := r.missed(); len(m) != 0 {
		t.Fatalf("missed %q; every target at 100/s met, 20/s has none, northd is no hostd", m)
	}
	r.Rates[1] = rate(100, 70, 100, 150)
	r.Idle[0].CPUPct = 1
	m := r.missed()
	for _, want := range []string{"idle hostd-hv1", "port up p99", "first echo reply p99", "70.0 made a second"} {
		if !strings.Contains(strings.Join(m, "\n"), want) {
			t.Errorf("missed %q, want %q among them", m, want)
		}
	}
	if len(m) != 4 {
		t.Errorf("missed %q, want 4", m)
	}
	r.Ports = 8000
	if m = r.missed(); len(m) != 1 {
		t.Errorf("at 8,000 ports, missed %q; only the idle target applies", m)
	}
	r.BelowTarget = m
	var b strings.Builder
	rep := &Report{HostScale: []*HostScaleResult{r}}
	b.WriteString(rep.Markdown())
	if !strings.Contains(b.String(), "below target on 1") || !strings.Contains(b.String(), "**BELOW TARGET:**") {
		t.Errorf("the summary does not say the host-side scale run missed a target:\n%s", b.String())
	}
}

func TestHubMemoryPerBinding(t *testing.T) {
	m := HubMemory{Bindings: 64000, RSSBeforeMiB: 25, RSSAfterMiB: 25 + 625, HeapBeforeMiB: 4, HeapAfterMiB: 4 + 500,
		LiveBeforeMiB: 2, LiveAfterMiB: 2 + 250, MapMaxEntries: 131072, MapBytes: 131072 * 88}
	rss, heap, live, kernel := m.PerBinding()
	if int(rss) != 10240 || int(heap) != 8192 || int(live) != 4096 || kernel != 88 {
		t.Fatalf("per binding: RSS %v, heap %v, live %v, kernel %v; want 10240, 8192, 4096, 88", rss, heap, live, kernel)
	}
	if live := liveHeapMiB(map[string]float64{"go_gc_gogc_percent": 100, "go_memstats_next_gc_bytes": 400 << 20}); live != 200 {
		t.Fatalf("live heap %v MiB, want 200: the next goal is twice the live heap at GOGC=100", live)
	}
}
