package dataplane

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// What a hostile VM tries against its own host's DVR, and the protections
// that stop it there: the source addresses a port with unknown addresses
// may use, the budgets for hub-bound packets and for announcements, the
// negative cache of destinations a hub said are unknown, and hubs passed
// over when they stop answering probes.

var unkMAC = mac("02:00:00:00:01:09")

// withUnknownPort adds port "unk" (ifindex returned) with unknown
// addresses to vxnet 5001.
func (f *fixture) withUnknownPort(t *testing.T) int {
	t.Helper()
	idx := veth(t, "p4")
	f.state.Ports = append(f.state.Ports, Port{Ifindex: idx, Name: "unk", VNI: 5001, VPC: 1, MAC: unkMAC, MTU: 1450,
		Security: true, Unknown: true})
	if _, err := f.d.Apply(f.state); err != nil {
		t.Fatal(err)
	}
	return idx
}

// events drains what the ring buffer holds within a short wait.
func events(t *testing.T, ev *EventReader) []Event {
	t.Helper()
	var out []Event
	for {
		ev.SetDeadline(time.Now().Add(50 * time.Millisecond))
		e, err := ev.Read()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
}

func TestUnknownPortMayUseOnlyItsVxnetsFreeAddresses(t *testing.T) {
	f := newFixture(t, false)
	d := f.d
	unk := f.withUnknownPort(t)
	ev, err := d.Events()
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	prog := d.objs.PortIngress
	for _, c := range []struct{ what, src string }{
		{"another vxnet's address", "10.0.2.77"},
		{"an address outside the VPC", "8.8.8.8"},
		{"the gateway", "10.0.1.1"},
		{"the network address", "10.0.1.0"},
		{"the broadcast address", "10.0.1.255"},
		{"a local port's fixed IP", "10.0.1.6"},
	} {
		t.Run("as source: "+c.what, func(t *testing.T) {
			expectDrop(t, d, "spoof_ip", func() runResult {
				return run(t, prog, unk, udpPkt(vm3MAC, unkMAC, ip4(c.src), ip4("10.0.1.6"), 64, 10))
			})
		})
		t.Run("announced: "+c.what, func(t *testing.T) {
			expectDrop(t, d, "spoof_ip", func() runResult {
				return run(t, prog, unk, arpPkt(1, unkMAC, ip4(c.src), nil, ip4(c.src)))
			})
		})
	}
	t.Run("as source: 0.0.0.0, not DHCP", func(t *testing.T) { // a DHCP client's is its only use
		expectDrop(t, d, "spoof_ip", func() runResult {
			return run(t, prog, unk, udpPkt(vm3MAC, unkMAC, ip4("0.0.0.0"), ip4("10.0.1.6"), 64, 10))
		})
	})
	if got := events(t, ev); len(got) != 0 {
		t.Errorf("refused addresses were reported to hostd: %+v", got)
	}
	t.Run("a free address of its vxnet is used and reported", func(t *testing.T) {
		r := run(t, prog, unk, udpPkt(vm3MAC, unkMAC, ip4("10.0.1.50"), ip4("10.0.1.6"), 64, 10))
		if r.verdict != actRedirect {
			t.Errorf("verdict %d", r.verdict)
		}
		got := events(t, ev)
		if len(got) != 1 || got[0].Type != EventAddrSeen || got[0].IP != ip4("10.0.1.50") || got[0].Ifindex != unk {
			t.Errorf("events %+v", got)
		}
	})
	t.Run("an address it holds already is not reported again", func(t *testing.T) {
		f.state.Locals = append(f.state.Locals, Local{VPC: 1, IP: ip4("10.0.1.51"), Ifindex: unk})
		if _, err := d.Apply(f.state); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 3; i++ {
			if r := run(t, prog, unk, udpPkt(vm3MAC, unkMAC, ip4("10.0.1.51"), ip4("10.0.1.6"), 64, 10)); r.verdict != actRedirect {
				t.Errorf("verdict %d", r.verdict)
			}
		}
		if got := events(t, ev); len(got) != 0 {
			t.Errorf("events %+v", got)
		}
	})
}

func TestAnnouncementBudget(t *testing.T) {
	f := newFixtureWith(t, false, Config{AnnounceBudget: Budget{Rate: 1, Burst: 3}})
	d := f.d
	unk := f.withUnknownPort(t)
	ev, err := d.Events()
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	// Ten new source addresses at once: three reach hostd, the packets
	// themselves are not dropped.
	for i := 0; i < 10; i++ {
		src := netip.AddrFrom4([4]byte{10, 0, 1, byte(100 + i)})
		if r := run(t, d.objs.PortIngress, unk, udpPkt(vm3MAC, unkMAC, src, ip4("10.0.1.6"), 64, 10)); r.verdict != actRedirect {
			t.Errorf("verdict %d for source %s", r.verdict, src)
		}
	}
	if got := events(t, ev); len(got) != 3 {
		t.Errorf("%d events reached hostd, want the burst of 3: %+v", len(got), got)
	}
	c, _ := d.Counters()
	if c["announce_limited"] != 7 {
		t.Errorf("announce_limited %d, want 7", c["announce_limited"])
	}
}

func TestHubBudget(t *testing.T) {
	f := newFixtureWith(t, false, Config{HubBudget: Budget{Rate: 1, Burst: 3}})
	d := f.d
	prog := d.objs.PortIngress
	toUnknown := func(port int, srcMAC string, src string, i int) runResult {
		return run(t, prog, port, udpPkt(gwMAC, mac(srcMAC), ip4(src), netip.AddrFrom4([4]byte{10, 0, 2, byte(100 + i)}), 64, 10))
	}
	for i := 0; i < 3; i++ {
		resetSent(d)
		r := toUnknown(f.p1, "02:00:00:00:01:05", "10.0.1.5", i)
		if vtep, _, _, _ := sent(t, d); r.verdict != actRedirect || vtep != hubIP {
			t.Fatalf("packet %d within the budget: verdict %d to %s", i, r.verdict, vtep)
		}
	}
	expectDrop(t, d, "hub_budget", func() runResult { return toUnknown(f.p1, "02:00:00:00:01:05", "10.0.1.5", 3) })
	t.Run("ARP for unknown addresses spends the same budget", func(t *testing.T) {
		expectDrop(t, d, "hub_budget", func() runResult {
			return run(t, prog, f.p1, arpPkt(1, vm1MAC, ip4("10.0.1.5"), nil, ip4("10.0.1.77")))
		})
	})
	t.Run("known destinations are not limited", func(t *testing.T) {
		f.learn(t, ip4("10.0.2.7"), peerB, 5002, remMAC2)
		for i := 0; i < 5; i++ {
			resetSent(d)
			r := run(t, prog, f.p1, udpPkt(gwMAC, vm1MAC, ip4("10.0.1.5"), ip4("10.0.2.7"), 64, 10))
			if vtep, _, _, _ := sent(t, d); r.verdict != actRedirect || vtep != peerB {
				t.Errorf("verdict %d to %s", r.verdict, vtep)
			}
		}
	})
	t.Run("another port has its own budget", func(t *testing.T) {
		resetSent(d)
		r := toUnknown(f.p3, "02:00:00:00:01:06", "10.0.1.6", 9)
		if vtep, _, _, _ := sent(t, d); r.verdict != actRedirect || vtep != hubIP {
			t.Errorf("verdict %d to %s", r.verdict, vtep)
		}
	})
	t.Run("the budget refills", func(t *testing.T) {
		time.Sleep(1100 * time.Millisecond)
		resetSent(d)
		r := toUnknown(f.p1, "02:00:00:00:01:05", "10.0.1.5", 20)
		if vtep, _, _, _ := sent(t, d); r.verdict != actRedirect || vtep != hubIP {
			t.Errorf("verdict %d to %s", r.verdict, vtep)
		}
	})
}

func TestUnknownDestinationsAreDroppedForAMoment(t *testing.T) {
	f := newFixtureWith(t, false, Config{UnknownTTL: 300 * time.Millisecond})
	d := f.d
	prog := d.objs.PortIngress
	toDst := func() runResult {
		return run(t, prog, f.p1, udpPkt(gwMAC, vm1MAC, ip4("10.0.1.5"), ip4("10.0.2.99"), 64, 10))
	}
	unknown := LearnMsg{Op: OpUnknown, VNI: 5002, IP: ip4("10.0.2.99")}
	t.Run("from a host that is not a hub: refused", func(t *testing.T) {
		expectDrop(t, d, "learn_rejected", func() runResult { return runTunnel(t, d, peerA, 5002, unknown.Marshal()) })
		resetSent(d)
		if r := toDst(); r.verdict != actRedirect {
			t.Errorf("verdict %d: a non-hub's word stopped the packet", r.verdict)
		}
	})
	t.Run("from a hub: packets to it are dropped here", func(t *testing.T) {
		runTunnel(t, d, hubIP, 5002, unknown.Marshal())
		expectDrop(t, d, "dst_unknown", toDst)
		// Other destinations still go to the hub.
		resetSent(d)
		r := run(t, prog, f.p1, udpPkt(gwMAC, vm1MAC, ip4("10.0.1.5"), ip4("10.0.2.98"), 64, 10))
		if vtep, _, _, _ := sent(t, d); r.verdict != actRedirect || vtep != hubIP {
			t.Errorf("verdict %d to %s", r.verdict, vtep)
		}
	})
	t.Run("for a moment only", func(t *testing.T) {
		time.Sleep(350 * time.Millisecond)
		resetSent(d)
		r := toDst()
		if vtep, _, _, _ := sent(t, d); r.verdict != actRedirect || vtep != hubIP {
			t.Errorf("verdict %d to %s: the first packet after the moment must reach a hub", r.verdict, vtep)
		}
	})
	t.Run("a learn message ends it at once", func(t *testing.T) {
		runTunnel(t, d, hubIP, 5002, unknown.Marshal())
		expectDrop(t, d, "dst_unknown", toDst)
		f.learn(t, ip4("10.0.2.99"), peerB, 5002, remMAC2)
		resetSent(d)
		r := toDst()
		if vtep, _, _, _ := sent(t, d); r.verdict != actRedirect || vtep != peerB {
			t.Errorf("verdict %d to %s", r.verdict, vtep)
		}
	})
	t.Run("a fresh path outweighs a hub's unknown", func(t *testing.T) {
		runTunnel(t, d, hubIP, 5002, LearnMsg{Op: OpUnknown, VNI: 5002, IP: ip4("10.0.2.99")}.Marshal())
		resetSent(d)
		r := toDst()
		if vtep, _, _, _ := sent(t, d); r.verdict != actRedirect || vtep != peerB {
			t.Errorf("verdict %d to %s", r.verdict, vtep)
		}
	})
}

func TestHubsAnswerProbesAndSilentHubsArePassedOver(t *testing.T) {
	t.Run("a hub answers a probe in the kernel", func(t *testing.T) {
		f := newFixture(t, true)
		resetSent(f.d)
		r := runTunnel(t, f.d, peerA, 5001, LearnMsg{Op: OpProbe, VNI: 5001, VTEP: peerA}.Marshal())
		vtep, vni, _, _ := sent(t, f.d)
		m, err := ParseLearnMsg(r.out)
		if r.verdict != actRedirect || vtep != peerA || vni != 5001 || err != nil || m.Op != OpProbeReply || m.VTEP != hubIP {
			t.Errorf("verdict %d to %s vni %d reply %+v %v", r.verdict, vtep, vni, m, err)
		}
	})
	f := newFixture(t, false)
	d := f.d
	hub2 := ip4("192.168.100.8")
	f.state.Hubs = []Hubs{{VPC: 1, VTEPs: []netip.Addr{hubIP, hub2}}}
	if _, err := d.Apply(f.state); err != nil {
		t.Fatal(err)
	}
	reply := func(from netip.Addr) runResult {
		return runTunnel(t, d, from, 5001, LearnMsg{Op: OpProbeReply, VNI: 5001, VTEP: from}.Marshal())
	}
	// Where packets to 20 unknown destinations (20 flow hashes) go.
	spread := func() map[netip.Addr]int {
		out := map[netip.Addr]int{}
		for i := 0; i < 20; i++ {
			resetSent(d)
			run(t, d.objs.PortIngress, f.p1, udpPkt(gwMAC, vm1MAC, ip4("10.0.1.5"), netip.AddrFrom4([4]byte{10, 0, 2, byte(100 + i)}), 64, 10))
			vtep, _, _, _ := sent(t, d)
			out[vtep]++
		}
		return out
	}
	t.Run("unprobed hubs share the flows", func(t *testing.T) {
		if s := spread(); s[hubIP] == 0 || s[hub2] == 0 {
			t.Errorf("flows went to %v, want both hubs", s)
		}
	})
	t.Run("a reply from a hub that is not probed is not recorded", func(t *testing.T) {
		reply(hubIP)
		if seen, _ := d.HubSeen(); len(seen) != 0 {
			t.Errorf("hub_seen %v", seen)
		}
	})
	if err := d.ProbeHubs([]netip.Addr{hubIP, hub2}); err != nil {
		t.Fatal(err)
	}
	t.Run("a reply from a host that is not a hub is refused", func(t *testing.T) {
		expectDrop(t, d, "learn_rejected", func() runResult { return reply(peerA) })
	})
	t.Run("a hub silent past the threshold is passed over", func(t *testing.T) {
		time.Sleep(DefaultHubDownAfter + 50*time.Millisecond)
		reply(hubIP) // only the first hub answers
		if s := spread(); s[hub2] != 0 || s[hubIP] != 20 {
			t.Errorf("flows went to %v, want all to %s", s, hubIP)
		}
		c, _ := d.Counters()
		if c["hub_down_skipped"] == 0 || c["probe_reply"] != 1 {
			t.Errorf("counters %v", c)
		}
	})
	t.Run("when no hub answers, the hashed one is used", func(t *testing.T) {
		time.Sleep(DefaultHubDownAfter + 50*time.Millisecond)
		if s := spread(); s[hubIP] == 0 || s[hub2] == 0 {
			t.Errorf("flows went to %v, want both hubs", s)
		}
	})
	t.Run("hubs no longer probed are removed", func(t *testing.T) {
		if err := d.ProbeHubs([]netip.Addr{hub2}); err != nil {
			t.Fatal(err)
		}
		seen, _ := d.HubSeen()
		if _, ok := seen[hubIP]; ok || len(seen) != 1 {
			t.Errorf("hub_seen %v", seen)
		}
	})
}

// TestHubDownFromThePins: a data plane opened from the pins (courier-dpctl)
// says a hub is down after the running programs' time, hostd's
// --hub-down-after, not its own zero (which took every hub for down);
// with no program running, it says it cannot know, not a default.
func TestHubDownFromThePins(t *testing.T) {
	f := newFixtureWith(t, true, Config{HubDownAfter: 2 * time.Second})
	p, err := OpenPinned(f.d.cfg.PinRoot, f.d.cfg.Chassis)
	if err != nil {
		t.Fatal(err)
	}
	defer p.ClosePinned()
	if after, err := p.HubDownAfter(); after != 2*time.Second || err != nil {
		t.Errorf("from the pins, with 2s running: %v, %v", after, err)
	}
	if p.HubDown(time.Second) || !p.HubDown(2*time.Second) || !p.HubDown(3*time.Second) {
		t.Errorf("from the pins, with 2s running: down after 1s %v, 2s %v, 3s %v; want false, true, true",
			p.HubDown(time.Second), p.HubDown(2*time.Second), p.HubDown(3*time.Second))
	}
	// The tunnel program's pinned link is how the running programs are
	// found: without it, nothing is known to run.
	if err := os.Remove(filepath.Join(f.d.pinDir, "links", "tunnel")); err != nil {
		t.Fatal(err)
	}
	q, err := OpenPinned(f.d.cfg.PinRoot, f.d.cfg.Chassis)
	if err != nil {
		t.Fatal(err)
	}
	defer q.ClosePinned()
	if after, err := q.HubDownAfter(); err == nil || q.HubDown(time.Hour) {
		t.Errorf("no program found running: %v, %v; want an error, and no hub down", after, err)
	}
	if _, err := q.HubStates(); err == nil {
		t.Error("no program found running: hubs judged all the same")
	}
}

// TestTunnelARPRepliesOnlyFromHubs: an ARP reply from the tunnel is a
// hub's answer to a VM that asked; any other host's, or one in a vxnet
// other than the VM's, would poison the VM's neighbour table.
func TestTunnelARPRepliesOnlyFromHubs(t *testing.T) {
	f := newFixture(t, false)
	d := f.d
	reply := arpPkt(2, remMAC1, ip4("10.0.1.7"), vm1MAC, ip4("10.0.1.5"))
	t.Run("from a hub, in the VM's vxnet: delivered", func(t *testing.T) {
		resetSent(d)
		r := runTunnel(t, d, hubIP, 5001, reply)
		if _, _, ifx, _ := sent(t, d); r.verdict != actRedirect || ifx != f.p1 {
			t.Errorf("verdict %d to %d, want vm1's port %d", r.verdict, ifx, f.p1)
		}
	})
	t.Run("from a host that is no hub", func(t *testing.T) {
		expectDrop(t, d, "arp_unanswered", func() runResult { return runTunnel(t, d, peerA, 5001, reply) })
	})
	t.Run("from a hub, in another vxnet", func(t *testing.T) {
		expectDrop(t, d, "l2_cross_vxnet", func() runResult { return runTunnel(t, d, hubIP, 5002, reply) })
	})
}

// VXLAN is taken only from a chassis's VTEP once the southbound's list
// is in force, and only when sent to this host's VTEP: the
// collect-metadata device takes any VNI and group from whoever reaches
// its port, on any of the host's addresses, a server or router on the
// hosts' segment included. Without a list (a data plane driven without a
// southbound) any sender is taken, as before (the destination is still
// checked).
func TestTunnelOnlyFromChassisVTEPs(t *testing.T) {
	f := newFixture(t, false)
	d := f.d
	stranger := ip4("192.168.100.77")
	pkt := udpPkt(vm1MAC, remMAC1, ip4("10.0.1.7"), ip4("10.0.1.5"), 64, 100)
	delivered := func(t *testing.T, src netip.Addr) {
		t.Helper()
		resetSent(d)
		r := runTunnel(t, d, src, 5001, pkt)
		if _, _, ifx, _ := sent(t, d); r.verdict != actRedirect || ifx != f.p1 {
			t.Errorf("from %s: verdict %d to %d, want vm1's port %d", src, r.verdict, ifx, f.p1)
		}
	}
	refused := func(t *testing.T, src netip.Addr) {
		t.Helper()
		expectDrop(t, d, "unknown_vtep", func() runResult { return runTunnel(t, d, src, 5001, pkt) })
	}
	t.Cleanup(func() { f.state.VTEPs = nil })
	apply := func(t *testing.T, vteps []netip.Addr) {
		t.Helper()
		f.state.VTEPs = vteps
		if _, err := d.Apply(f.state); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("no list: from anyone", func(t *testing.T) { delivered(t, stranger) })
	t.Run("a list: from its VTEPs only", func(t *testing.T) {
		apply(t, []netip.Addr{local, peerA, peerB, hubIP})
		delivered(t, peerA)
		refused(t, stranger)
		// 0.0.0.0 is the marker's key, no sender's (Linux takes it as
		// the source of a broadcast)
		refused(t, ip4("0.0.0.0"))
		// a learn message too: it would install a path to the sender
		msg := LearnMsg{Op: OpLearn, VNI: 5001, IP: ip4("10.0.1.8"), MAC: remMAC1, VTEP: stranger}
		expectDrop(t, d, "unknown_vtep", func() runResult { return runTunnel(t, d, stranger, 5001, msg.Marshal()) })
	})
	t.Run("sent to another address of this host", func(t *testing.T) {
		// broadcast, multicast, the subnet's broadcast, another address
		for _, to := range []netip.Addr{ip4("255.255.255.255"), ip4("224.0.0.1"), ip4("192.168.100.255"), ip4("172.31.0.1")} {
			if err := d.objs.TunnelIn.Put(uint32(0), dvrTunnelRec{Vtep: host32(peerA), Vni: 5001, Local: host32(to)}); err != nil {
				t.Fatal(err)
			}
			expectDrop(t, d, "unknown_vtep", func() runResult { return run(t, d.objs.TunnelIngress, d.vxlan, pkt) })
		}
	})
	// The cache is per CPU: the sender is admitted, then removed, on one.
	t.Run("a chassis that leaves is refused", func(t *testing.T) {
		back, err := onOneCPU() // progcost.go
		if err != nil {
			t.Fatal(err)
		}
		defer back()
		delivered(t, peerA)
		apply(t, []netip.Addr{local, peerB, hubIP})
		refused(t, peerA)
		delivered(t, hubIP)
	})
	t.Run("the list withdrawn: from anyone again", func(t *testing.T) {
		apply(t, nil)
		delivered(t, stranger)
		if m, err := d.vtepsT().dump(); err != nil || len(m) != 0 {
			t.Errorf("vteps holds %v (%v), want nothing", m, err)
		}
	})
	t.Run("not an IPv4 host address: refused, nothing applied", func(t *testing.T) {
		f.state.VTEPs = []netip.Addr{local, ip4("0.0.0.0")}
		defer func() { f.state.VTEPs = nil }()
		if _, err := d.Apply(f.state); err == nil {
			t.Error("0.0.0.0 as a VTEP was taken")
		}
		if m, err := d.vtepsT().dump(); err != nil || len(m) != 0 {
			t.Errorf("vteps holds %v (%v) after a refused Apply, want nothing", m, err)
		}
	})
}
