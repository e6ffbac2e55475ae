package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/courier-sdn/courier/tools/trace"
)

// courier-trace against a sandbox, live and logical, each case checked
// against what the real packet does (#14).

func (e *env) trace(chassis, microflow string) *trace.Trace {
	e.t.Helper()
	o := trace.Options{SB: []string{e.s.SB()}, Chassis: chassis, Timeout: 20 * time.Second}
	if chassis != "" {
		o.Sites = trace.SandboxSites(e.s.RunDir)
	}
	tr, err := trace.Run(context.Background(), o, microflow)
	if err != nil {
		e.t.Fatalf("courier-trace %s: %v", microflow, err)
	}
	return tr
}

// route is the chassis a trace went through.
func route(tr *trace.Trace) string {
	var hs []string
	for _, h := range tr.Hops {
		hs = append(hs, h.Chassis)
	}
	return strings.Join(hs, ">")
}

func TestTraceMatchesWhatHappens(t *testing.T) {
	e := start(t, 3, 1) // hv1 is the hub
	e.nb("vpc-add", "blue", "--", "vxnet-add", "blue", "web", "10.0.1.0/24", "--", "vxnet-add", "blue", "db", "10.0.2.0/24",
		"--", "port-add", "web", "a", "02:00:00:10:01:0a", "10.0.1.10",
		"--", "port-add", "web", "b", "02:00:00:10:01:0b", "10.0.1.11",
		"--", "port-add", "web", "c", "02:00:00:10:01:0c", "10.0.1.12",
		"--", "port-add", "db", "d", "02:00:00:10:02:0a", "10.0.2.10",
		"--", "vpc-add", "red", "--", "vxnet-add", "red", "app", "10.0.1.0/24", "--", "vxnet-add", "red", "data", "10.0.2.0/24",
		"--", "port-add", "app", "r1", "02:00:00:11:01:0a", "10.0.1.10",
		"--", "port-add", "data", "r2", "02:00:00:11:02:0a", "10.0.2.10")
	for _, v := range []struct{ host, port string }{{"hv2", "a"}, {"hv3", "b"}, {"hv2", "c"}, {"hv3", "d"}, {"hv2", "r1"}, {"hv1", "r2"}} {
		e.vm(v.host, v.port)
	}
	e.nb("sync")
	expect := func(tr *trace.Trace, outcome, detail, path string) {
		t.Helper()
		if tr.Outcome != outcome || !strings.Contains(tr.Detail, detail) || (path != "" && route(tr) != path) {
			var b strings.Builder
			tr.Write(&b, trace.Detailed, "text")
			t.Errorf("trace of %s: %s via %s, want %s %q via %s\n%s", tr.Microflow, tr.Detail, route(tr), outcome, detail, path, b.String())
		}
	}

	t.Run("same vxnet, same host", func(t *testing.T) {
		expect(e.trace("hv2", `inport == "a" && ip4.dst == 10.0.1.12`), trace.Delivered, "delivered to c on hv2", "hv2")
		e.mustPing("a", "10.0.1.12")
	})
	t.Run("same vxnet, not learned: through the hub, then direct", func(t *testing.T) {
		cache := e.cache("hv2")
		expect(e.trace("hv2", `inport == "a" && ip4.dst == 10.0.1.11`), trace.Delivered, "delivered to b on hv3", "hv2>hv1>hv3")
		if now := e.cache("hv2"); fmt.Sprint(now) != fmt.Sprint(cache) {
			t.Errorf("the trace changed hv2's learned paths: %v -> %v", cache, now)
		}
		// The real VM asks for b's MAC first: the hub answers that, and
		// the sender learns from the answer.
		hub := func() uint64 { c := e.counters("hv1"); return c["hub_forward"] + c["hub_arp_reply"] }
		before := hub()
		e.mustPing("a", "10.0.1.11")
		if hub() == before {
			t.Error("the real packets did not go through the hub as the trace said")
		}
		expect(e.trace("hv2", `inport == "a" && ip4.dst == 10.0.1.11`), trace.Delivered, "delivered to b on hv3", "hv2>hv3")
	})
	t.Run("across vxnets", func(t *testing.T) {
		expect(e.trace("hv2", `inport == "a" && ip4.dst == 10.0.2.10 && tcp.dst == 80`), trace.Delivered, "delivered to d on hv3", "")
		e.mustPing("a", "10.0.2.10")
		tr := e.trace("hv2", `inport == "a" && ip4.dst == 10.0.2.10`)
		expect(tr, trace.Delivered, "delivered to d on hv3", "hv2>hv3")
		// The route's decision is dst_lookup's; sg_egress, last, lets it go.
		steps := tr.Hops[0].Steps
		if i := len(steps) - 2; i < 0 || steps[i].Stage != "dst_lookup" || steps[i].Hit != "cache" || steps[i+1].Stage != "sg_egress" {
			t.Errorf("after the ping, hv2 should send from its learned path: %+v", steps)
		}
	})
	t.Run("a spoofed source is dropped at port security", func(t *testing.T) {
		tr := e.trace("hv2", `inport == "a" && ip4.src == 10.0.1.99 && ip4.dst == 10.0.1.12`)
		expect(tr, trace.Dropped, "port_sec: spoof_ip", "hv2")
		before := e.dropsOf("hv2")["spoof_ip"]
		in := e.injector("a")
		in.send(udpFrame(mac("02:00:00:10:01:0c"), in.mac, netip.MustParseAddr("10.0.1.99"), netip.MustParseAddr("10.0.1.12")))
		if !waitFor(time.Second, func() bool { return e.dropsOf("hv2")["spoof_ip"] == before+1 }) {
			t.Error("the real spoofed packet was not dropped as spoof_ip on hv2")
		}
	})
	t.Run("another VPC with the same CIDRs", func(t *testing.T) {
		expect(e.trace("hv2", `inport == "r1" && ip4.dst == 10.0.2.10`), trace.Delivered, "delivered to r2 on hv1", "")
		e.mustPing("r1", "10.0.2.10")
	})
	t.Run("ARP for the gateway is answered on the host", func(t *testing.T) {
		expect(e.trace("hv2", `inport == "a" && arp.tpa == 10.0.1.1`), trace.Answered, "answered on hv2", "hv2")
		before := e.counters("hv2")["arp_reply"]
		in := e.injector("a")
		in.send(arpRequest(in.mac, netip.MustParseAddr("10.0.1.10"), netip.MustParseAddr("10.0.1.1")))
		if !waitFor(time.Second, func() bool { return e.counters("hv2")["arp_reply"] > before }) {
			t.Error("the real ARP request was not answered on hv2")
		}
	})
	t.Run("the logical trace agrees", func(t *testing.T) {
		expect(e.trace("", `inport == "a" && ip4.dst == 10.0.2.10`), trace.Delivered, "delivered to d on hv3", "hv2>hv3")
		expect(e.trace("", `inport == "a" && ip4.src == 10.0.1.99 && ip4.dst == 10.0.1.12`), trace.Dropped, "spoof_ip", "hv2")
		expect(e.trace("", `inport == "a" && arp.tpa == 10.0.1.1`), trace.Answered, "answered on hv2", "hv2")
	})
}
