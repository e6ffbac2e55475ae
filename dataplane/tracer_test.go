package dataplane

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/courier-sdn/courier/pipeline"
)

// stateOf is what a trace must not change: counters, drops, learned
// paths (with their use stamps), and the per-packet state the programs
// keep (first misses, budgets, learn rate limits, unknown destinations).
func stateOf(t *testing.T, d *Datapath) string {
	t.Helper()
	c, _ := d.Counters()
	dr, _ := d.Drops()
	cache, _ := d.cacheT().dump()
	s := fmt.Sprint(c, dr, cache)
	for _, m := range []struct {
		name string
		m    *ebpf.Map
	}{{"miss_ts", d.objs.MissTsV1}, {"budgets", d.objs.BudgetsV1}, {"learn_rl", d.objs.LearnRlV1},
		{"unknown", d.objs.UnknownV1}, {"hub_seen", d.objs.HubSeenV1}, {"ev_rl", d.objs.EvRlV1}} {
		s += " " + m.name + fmt.Sprint(rawDump(t, m.m))
	}
	return s
}

func rawDump(t *testing.T, m *ebpf.Map) map[string]string {
	out := map[string]string{}
	var k, v []byte
	it := m.Iterate()
	for it.Next(&k, &v) {
		out[fmt.Sprintf("%x", k)] = fmt.Sprintf("%x", v)
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func verdicts(r *TraceResult) string {
	var out string
	for _, s := range r.Stages {
		out += fmt.Sprintf("%s:%s", pipeline.Stages[s.Stage].Name, pipeline.VerdictName(s.Verdict))
		if s.Verdict == 1 {
			out += "(" + pipeline.DropName(s.Reason) + ")"
		}
		out += " "
	}
	return out
}

func TestTraceRunsTheRealProgramAndChangesNothing(t *testing.T) {
	f := newFixture(t, false)
	d := f.d
	f.learn(t, ip4("10.0.2.7"), peerB, 5002, remMAC2)
	tr, err := OpenTracer(d.cfg.PinRoot, d.cfg.Chassis)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if tr.VTEP != local || tr.Hub {
		t.Errorf("tracer configured as %s hub=%v, want the chassis's %s", tr.VTEP, tr.Hub, local)
	}
	before := stateOf(t, d)
	cross := udpPkt(gwMAC, vm1MAC, ip4("10.0.1.5"), ip4("10.0.2.7"), 64, 10)
	cases := []struct {
		name  string
		run   func() (*TraceResult, error)
		want  string
		check func(r *TraceResult) error
	}{
		{"across vxnets to a learned path", func() (*TraceResult, error) { return tr.RunPort(f.p1, cross) },
			"port_sec:next l2_lookup:next ip_route:next dst_lookup:output sg_egress:output ",
			func(r *TraceResult) error {
				l := r.Stages[3] // dst_lookup's (sg_egress, last, only passes it on)
				if l.VTEP != peerB || l.VNI != 5002 || l.Hit != 6 /* cache */ || r.Stages[2].Flags&0x1 == 0 {
					return fmt.Errorf("last %+v, route flags %#x", l, r.Stages[2].Flags)
				}
				if r.Packet[14+8] != 63 {
					return fmt.Errorf("TTL %d in the traced packet", r.Packet[14+8])
				}
				// ip_route found the binding already (its fast path), for
				// dst_lookup: its own record shows the route, as without.
				if rt := r.Stages[2]; rt.Hit != 9 /* route */ || rt.VTEP.IsValid() || rt.Ifindex != f.p1 || rt.VNI != 5002 ||
					!bytes.Equal(rt.MAC, make([]byte, 6)) {
					return fmt.Errorf("ip_route's record %+v", rt)
				}
				return nil
			}},
		{"a spoofed source", func() (*TraceResult, error) {
			return tr.RunPort(f.p1, udpPkt(gwMAC, vm1MAC, ip4("10.0.1.99"), ip4("10.0.2.7"), 64, 10))
		}, "port_sec:drop(spoof_ip) ", nil},
		{"an unknown destination, through a hub", func() (*TraceResult, error) {
			return tr.RunPort(f.p1, udpPkt(gwMAC, vm1MAC, ip4("10.0.1.5"), ip4("10.0.2.99"), 64, 10))
		}, "port_sec:next l2_lookup:next ip_route:next dst_lookup:next to_hub:output sg_egress:output ",
			func(r *TraceResult) error {
				if l := r.Stages[4]; l.VTEP != hubIP || l.Hit != 10 {
					return fmt.Errorf("last %+v", l)
				}
				return nil
			}},
		{"ARP for the gateway", func() (*TraceResult, error) {
			return tr.RunPort(f.p1, arpPkt(1, vm1MAC, ip4("10.0.1.5"), nil, ip4("10.0.1.1")))
		}, "port_sec:next arp_rsp:reply ", nil},
		{"from the tunnel to a local port", func() (*TraceResult, error) {
			return tr.RunTunnel(peerA, 5001, udpPkt(vm1MAC, remMAC1, ip4("10.0.1.7"), ip4("10.0.1.5"), 64, 10))
		}, "tun_admit:next eip_in:next tun_lookup:output sg_ingress:output ",
			func(r *TraceResult) error {
				if l := r.Last(); l.Ifindex != f.p1 {
					return fmt.Errorf("last %+v", l)
				}
				return nil
			}},
		{"a learn message is not installed by a trace", func() (*TraceResult, error) {
			return tr.RunTunnel(hubIP, 5001, LearnMsg{Op: OpLearn, VNI: 5001, IP: ip4("10.0.1.88"), MAC: remMAC1, VTEP: peerA}.Marshal())
		}, "tun_admit:next tun_learn:consumed ", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var r *TraceResult
			var err error
			within(func() { r, err = c.run() })
			if err != nil {
				t.Fatal(err)
			}
			if got := verdicts(r); got != c.want {
				t.Errorf("stages %q, want %q", got, c.want)
			}
			if c.check != nil {
				if err := c.check(r); err != nil {
					t.Error(err)
				}
			}
		})
	}
	if after := stateOf(t, d); after != before {
		t.Errorf("tracing changed the data plane's state:\nbefore %s\nafter  %s", before, after)
	}
	// The production program, run on the same packet, does what the
	// trace said.
	resetSent(d)
	r := run(t, d.objs.PortIngress, f.p1, cross)
	if vtep, vni, _, _ := sent(t, d); r.verdict != actRedirect || vtep != peerB || vni != 5002 {
		t.Errorf("the real program sent to %s vni %d (verdict %d)", vtep, vni, r.verdict)
	}
}

// runningVars reads the running programs' variables by name, cut by
// their own BTF: every variable of this build's .rodata and .bss, of
// its size, and the values Load gave (hostd's configuration).
func TestRunningVarsByName(t *testing.T) {
	f := newFixtureWith(t, false, Config{HubDownAfter: 1234 * time.Millisecond})
	vars, err := runningVars(f.d.pinDir)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := loadDvr()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for name, v := range spec.Variables {
		if v.SectionName != ".rodata" && v.SectionName != ".bss" {
			continue
		}
		n++
		if len(vars[name]) != len(v.Value) {
			t.Errorf("%s (%s): %d bytes read, %d in this build", name, v.SectionName, len(vars[name]), len(v.Value))
		}
	}
	if n == 0 || len(vars) != n {
		t.Errorf("%d variables read, this build has %d", len(vars), n)
	}
	for name, want := range map[string]uint64{"cfg_hub_down_ns": uint64(1234 * time.Millisecond), "cfg_local_vtep": uint64(host32(local))} {
		b := append(vars[name], make([]byte, 8)...)
		if got := binary.LittleEndian.Uint64(b[:8]) & (1<<(8*len(vars[name])) - 1); got != want {
			t.Errorf("%s read as %#x, want %#x", name, got, want)
		}
	}
}
