package e2e

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema/sbdb"
	"github.com/courier-sdn/courier/tools/dpctl"
)

// Faults that must not outlast themselves (#12, items 5 and 7), under
// traffic.

// hubRows lists each VPC's hubs as the southbound says.
func (e *env) hubRows() string {
	e.t.Helper()
	var out []string
	for _, r := range e.sbRows(sbdb.HubTable, "vpc", "chassis") {
		out = append(out, fmt.Sprintf("%v:%v", r["vpc"], ops.StringSet(r["chassis"])))
	}
	return strings.Join(out, " ")
}

// 5. The southbound server freezes, then stops, each time for longer than
// southd's dead-after, while VMs ping across hosts on a learned path at
// 100 a second. When it answers again, southd must not read the
// heartbeats that nobody could write meanwhile as deaths: before, it
// declared every chassis dead, removed every hub, the hubs told the
// senders to forget their paths, and about 3% of the pings were lost.
func TestSouthboundOutageLosesNoPings(t *testing.T) {
	e := start(t, 3, 2) // dead-after is 2 s
	e.blue()
	e.mustPing("w1", "10.0.2.10") // hv3 -> hv2, learned
	e.mustPing("d1", "10.0.1.12") // hv2 -> hv1
	hubs := e.hubRows()
	p1 := e.startPing("w1", "10.0.2.10", 1300, "0.01")
	p2 := e.startPing("d1", "10.0.1.12", 1300, "0.01")
	time.Sleep(500 * time.Millisecond)
	c := e.s.Ctl()
	pid := c.ServerPID("sb")
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	if err := c.StopServer("sb"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	if err := c.StartServer(t.Context(), "sb"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*pingLoop{p1, p2} {
		sent, recv := p.wait()
		t.Logf("%d pings across a 3 s southbound freeze and a 3 s outage, %d answered", sent, recv)
		if sent != recv {
			t.Errorf("%d pings lost", sent-recv)
		}
	}
	if e.logged("courier-southd", "chassis liveness changed", "alive=false") {
		t.Error("southd declared a chassis dead after the southbound answered again")
	}
	if now := e.hubRows(); now != hubs {
		t.Errorf("hubs moved: %s -> %s", hubs, now)
	}
}

// 7. A hub dies. Flows that hash to it must go to the VPC's other hub
// within half a second, long before southd (dead-after 2 s here) replaces
// it: each host probes its hubs every 100 ms and its DVR passes over a
// hub silent for 300 ms. Every host refreshes its learned paths through a
// hub at each packet here, so that the ping's every packet takes the hub
// path, as a new flow's first packets would.
func TestDeadHubIsPassedOverWithinHalfASecond(t *testing.T) {
	e := startWith(t, 4, 2, "--refresh", "1ms") // hv1 and hv2 are the hubs
	e.nb("vpc-add", "v", "--", "vxnet-add", "v", "x", "10.9.0.0/24",
		"--", "port-add", "x", "a", "02:00:00:0f:00:0a", "10.9.0.10", "--", "port-add", "x", "b", "02:00:00:0f:00:0b", "10.9.0.11")
	e.vm("hv3", "a")
	e.vm("hv4", "b")
	e.nb("sync")
	e.mustPing("a", "10.9.0.11")
	// Which hub carries a's pings to b?
	before := map[string]uint64{"hv1": e.counters("hv1")["hub_forward"], "hv2": e.counters("hv2")["hub_forward"]}
	e.mustPing("a", "10.9.0.11")
	used := ""
	for _, h := range []string{"hv1", "hv2"} {
		if e.counters(h)["hub_forward"] > before[h] {
			used = h
		}
	}
	if used == "" {
		t.Fatal("neither hub forwarded the pings")
	}
	p := e.startPing("a", "10.9.0.11", 300, "0.01") // 3 s
	time.Sleep(500 * time.Millisecond)
	e.hostDown(used)
	// Between the DVR passing over it (300 ms) and southd replacing it
	// (2 s), the operator's view says so.
	time.Sleep(700 * time.Millisecond)
	var hubs bytes.Buffer
	hubsErr := dpctl.App(&hubs).Run([]string{"courier-dpctl", "--pin-root", e.s.State.PinRoot, "--chassis", "hv3", "hubs"})
	sent, recv := p.wait()
	gap := time.Duration(sent-recv) * 10 * time.Millisecond
	t.Logf("%s died under a 100/s ping through it: %d of %d lost, new flows stopped for about %v", used, sent-recv, sent, gap)
	if gap > 500*time.Millisecond {
		t.Errorf("flows through the dead hub failed for about %v, want under 500 ms", gap)
	}
	if c := e.counters("hv3"); c["hub_down_skipped"] == 0 {
		t.Errorf("hv3's DVR never passed over the dead hub: %v", c)
	}
	down := regexp.MustCompile(`probe ` + regexp.QuoteMeta(e.vtep(used).String()) + `: last answered \S+ ago, down: the DVR passes over it\n`)
	if hubsErr != nil || !down.MatchString(hubs.String()) {
		t.Errorf("courier-dpctl hubs on hv3, %s dead for 700 ms: %v\n%s", used, hubsErr, hubs.String())
	}
}
