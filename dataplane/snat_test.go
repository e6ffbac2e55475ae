package dataplane

import (
	"encoding/binary"
	"net/netip"
	"os"
	"slices"
	"testing"
	"time"
)

// Distributed SNAT in the DVR (#15): every translation run through the
// real programs with BPF_PROG_RUN, its checksums computed afresh here.

var (
	snatAddr = ip4("203.0.113.50")
	server   = ip4("198.51.100.80")
	vm3Addr  = ip4("10.0.1.6")
)

// snatFixture: vm3 (10.0.1.6, no EIP) is translated to 203.0.113.50
// within blocks of 64 ports starting at 1024 (n of them), in network 1,
// whose gateway is gwVTEP.
func snatFixture(t *testing.T, n int) *fixture {
	return snatFixtureOn(t, n, false)
}

// snatFixtureOn is snatFixture on a hub (hub) or a host.
func snatFixtureOn(t *testing.T, n int, hub bool) *fixture {
	f := newFixture(t, hub)
	p := SNATPort{Ifindex: f.p3, VPC: 1, Addr: vm3Addr, Network: 1, BlockSize: 64}
	for i := 0; i < n; i++ {
		p.Blocks = append(p.Blocks, SNATBlock{Addr: snatAddr, Lo: uint16(1024 + 64*i)})
	}
	f.state.SNATPorts = []SNATPort{p}
	f.state.EIPGateways = []EIPGateways{{Network: 1, VTEPs: []netip.Addr{gwVTEP}}}
	if _, err := f.d.Apply(f.state); err != nil {
		t.Fatal(err)
	}
	return f
}

// snatOut runs what vm3 sends and checks it went to the gateway; it
// returns the translated packet.
func snatOut(t *testing.T, f *fixture, ip []byte) parsed {
	t.Helper()
	resetSent(f.d)
	r := run(t, f.d.objs.PortIngress, f.p3, append(ethHdr(gwMAC, vm3MAC, 0x0800), ip...))
	vtep, _, ifx, _ := sent(t, f.d)
	if r.verdict != actRedirect || vtep != gwVTEP || ifx != f.d.vxlan {
		t.Fatalf("verdict %d to %s ifindex %d: want the gateway through the tunnel", r.verdict, vtep, ifx)
	}
	return parse(t, r.out)
}

// snatIn runs what the gateway brings back and checks it reached vm3.
func snatIn(t *testing.T, f *fixture, ip []byte) parsed {
	t.Helper()
	resetSent(f.d)
	r := runTunnel(t, f.d, gwVTEP, 5001, append(ethHdr(vm3MAC, gwMAC, 0x0800), ip...))
	if _, _, ifx, _ := sent(t, f.d); r.verdict != actRedirect || ifx != f.p3 {
		t.Fatalf("verdict %d to ifindex %d, want vm3's port %d", r.verdict, ifx, f.p3)
	}
	return parse(t, r.out)
}

func port16(b []byte, off int) uint16 { return binary.BigEndian.Uint16(b[off:]) }

// synSeg is a connection's first TCP segment: only a SYN opens one
// (a later segment of no connection is snat_untracked).
func synSeg(sport, dport uint16, payload string) []byte {
	s := tcpSeg(sport, dport, payload)
	s[13] = 0x02
	return s
}

func TestSNATTCP(t *testing.T) {
	f := snatFixture(t, 2)
	p := snatOut(t, f, ipPacket(vm3Addr, server, protoTCP, synSeg(40000, 80, "hello"), 0))
	eport := port16(p.l4, 0)
	if p.src != snatAddr || eport < 1024 || eport >= 1024+128 || !p.ipOK || !l4ok(snatAddr, server, protoTCP, p.l4) {
		t.Fatalf("%s:%d -> %s, IPv4 ok %v, TCP ok %v", p.src, eport, p.dst, p.ipOK, l4ok(snatAddr, server, protoTCP, p.l4))
	}
	if again := snatOut(t, f, ipPacket(vm3Addr, server, protoTCP, tcpSeg(40000, 80, "more"), 0)); port16(again.l4, 0) != eport {
		t.Errorf("the connection's second packet left from port %d, its first from %d", port16(again.l4, 0), eport)
	}
	if other := snatOut(t, f, ipPacket(vm3Addr, server, protoTCP, synSeg(40001, 80, "x"), 0)); port16(other.l4, 0) == eport {
		t.Errorf("two connections to one server share port %d", eport)
	}
	back := snatIn(t, f, ipPacket(server, snatAddr, protoTCP, tcpSeg(80, eport, "reply"), 0))
	if back.dst != vm3Addr || port16(back.l4, 2) != 40000 || !back.ipOK || !l4ok(server, vm3Addr, protoTCP, back.l4) {
		t.Errorf("reply to %s:%d, IPv4 ok %v, TCP ok %v", back.dst, port16(back.l4, 2), back.ipOK, l4ok(server, vm3Addr, protoTCP, back.l4))
	}
	if n := counter(t, f.d, "snat_new"); n != 2 {
		t.Errorf("snat_new %d, want 2", n)
	}
}

// A hub that holds a translated port teaches the gateway nothing about
// what it brought back: a gateway tunnels by its own tables and rejects
// lessons, and one went through hostd every learn interval for every
// flow (learn_sent as many as the replies).
func TestSNATHubTeachesNoGateway(t *testing.T) {
	f := snatFixtureOn(t, 1, true)
	p := snatOut(t, f, ipPacket(vm3Addr, server, protoTCP, synSeg(40000, 80, "hello"), 0))
	eport := port16(p.l4, 0)
	for i := 0; i < 3; i++ {
		back := snatIn(t, f, ipPacket(server, snatAddr, protoTCP, tcpSeg(80, eport, "reply"), 0))
		if back.dst != vm3Addr || port16(back.l4, 2) != 40000 {
			t.Fatalf("reply %d to %s:%d, want vm3's connection", i, back.dst, port16(back.l4, 2))
		}
		time.Sleep(30 * time.Millisecond) // past the learn interval
	}
	if n, h := counter(t, f.d, "learn_sent"), counter(t, f.d, "learn_via_hostd"); n+h != 0 {
		t.Errorf("the hub sent the gateway %d lessons (%d through hostd), want none", n, h)
	}
}

func TestSNATUDPAndICMP(t *testing.T) {
	f := snatFixture(t, 1)
	t.Run("udp both ways", func(t *testing.T) {
		p := snatOut(t, f, ipPacket(vm3Addr, server, protoUDP, udpSeg(5353, 53, "query"), 0))
		eport := port16(p.l4, 0)
		if p.src != snatAddr || !l4ok(snatAddr, server, protoUDP, p.l4) {
			t.Fatalf("from %s:%d, UDP ok %v", p.src, eport, l4ok(snatAddr, server, protoUDP, p.l4))
		}
		back := snatIn(t, f, ipPacket(server, snatAddr, protoUDP, udpSeg(53, eport, "answer"), 0))
		if back.dst != vm3Addr || port16(back.l4, 2) != 5353 || !l4ok(server, vm3Addr, protoUDP, back.l4) {
			t.Errorf("to %s:%d, UDP ok %v", back.dst, port16(back.l4, 2), l4ok(server, vm3Addr, protoUDP, back.l4))
		}
	})
	t.Run("udp without checksum stays without", func(t *testing.T) {
		ip := ipPacket(vm3Addr, server, protoUDP, udpSeg(5454, 53, "query"), 0)
		binary.BigEndian.PutUint16(ip[26:], 0)
		if p := snatOut(t, f, ip); p.src != snatAddr || port16(p.l4, 6) != 0 || !p.ipOK {
			t.Errorf("from %s, UDP checksum %#x (want 0), IPv4 ok %v", p.src, port16(p.l4, 6), p.ipOK)
		}
	})
	t.Run("icmp echo: the identifier is the port", func(t *testing.T) {
		echo := []byte{8, 0, 0, 0, 0x12, 0x34, 0, 1, 'p', 'i', 'n', 'g'}
		p := snatOut(t, f, ipPacket(vm3Addr, server, protoICM, echo, 0))
		id := port16(p.l4, 4)
		if p.src != snatAddr || id < 1024 || id >= 1088 || csum(p.l4) != 0 {
			t.Fatalf("from %s id %d, ICMP ok %v", p.src, id, csum(p.l4) == 0)
		}
		reply := []byte{0, 0, 0, 0, byte(id >> 8), byte(id), 0, 1, 'p', 'i', 'n', 'g'}
		back := snatIn(t, f, ipPacket(server, snatAddr, protoICM, reply, 0))
		if back.dst != vm3Addr || port16(back.l4, 4) != 0x1234 || csum(back.l4) != 0 {
			t.Errorf("reply to %s id %#x, ICMP ok %v", back.dst, port16(back.l4, 4), csum(back.l4) == 0)
		}
	})
	t.Run("icmp error quoting a translated datagram", func(t *testing.T) {
		p := snatOut(t, f, ipPacket(vm3Addr, server, protoUDP, udpSeg(6000, 9, "probe!"), 0))
		eport := port16(p.l4, 0)
		quoted := ipPacket(snatAddr, server, protoUDP, udpSeg(eport, 9, "probe!"), 0)
		icmp := append([]byte{3, 3, 0, 0, 0, 0, 0, 0}, quoted...)
		back := snatIn(t, f, ipPacket(server, snatAddr, protoICM, icmp, 0))
		in := back.l4[8:]
		isrc := netip.AddrFrom4([4]byte(in[12:16]))
		if back.dst != vm3Addr || csum(back.l4) != 0 || isrc != vm3Addr || port16(in, 20) != 6000 ||
			csum(in[:20]) != 0 || !l4ok(vm3Addr, server, protoUDP, in[20:]) {
			t.Errorf("to %s, ICMP ok %v, quoted %s:%d, inner IPv4 ok %v, inner UDP ok %v", back.dst, csum(back.l4) == 0,
				isrc, port16(in, 20), csum(in[:20]) == 0, l4ok(vm3Addr, server, protoUDP, in[20:]))
		}
	})
}

// What no connection can be mapped for is dropped, never sent with the
// port's private address.
func TestSNATUntracked(t *testing.T) {
	f := snatFixture(t, 1)
	send := func(ip []byte) func() runResult {
		return func() runResult {
			return run(t, f.d.objs.PortIngress, f.p3, append(ethHdr(gwMAC, vm3MAC, 0x0800), ip...))
		}
	}
	t.Run("a later fragment", func(t *testing.T) {
		expectDrop(t, f.d, "snat_untracked", send(ipPacket(vm3Addr, server, protoUDP, []byte("0123456789abcdef"), 3)))
	})
	t.Run("an icmp error", func(t *testing.T) {
		quoted := ipPacket(server, vm3Addr, protoUDP, udpSeg(53, 9, "x"), 0)
		expectDrop(t, f.d, "snat_untracked", send(ipPacket(vm3Addr, server, protoICM, append([]byte{3, 3, 0, 0, 0, 0, 0, 0}, quoted...), 0)))
	})
	t.Run("a reset of no connection", func(t *testing.T) {
		seg := synSeg(41000, 80, "")
		seg[13] = 0x04
		expectDrop(t, f.d, "snat_untracked", send(ipPacket(vm3Addr, server, protoTCP, seg, 0)))
	})
	t.Run("a segment of no connection other than a SYN", func(t *testing.T) {
		// a migrated port's before its connections are handed over:
		// mapped anew, it would leave from another port and be reset
		expectDrop(t, f.d, "snat_untracked", send(ipPacket(vm3Addr, server, protoTCP, tcpSeg(41001, 80, "mid-stream"), 0)))
	})
	t.Run("another protocol", func(t *testing.T) {
		expectDrop(t, f.d, "snat_untracked", send(ipPacket(vm3Addr, server, 47, []byte("gre payload!"), 0)))
	})
}

// Inbound, only a gateway's packet for a mapped connection is translated.
func TestSNATInboundRefusals(t *testing.T) {
	f := snatFixture(t, 1)
	notDelivered := func(t *testing.T, from netip.Addr, ip []byte) {
		t.Helper()
		resetSent(f.d)
		r := runTunnel(t, f.d, from, 5001, append(ethHdr(vm3MAC, gwMAC, 0x0800), ip...))
		if _, _, ifx, _ := sent(t, f.d); r.verdict == actRedirect && ifx == f.p3 {
			t.Errorf("delivered to vm3")
		}
	}
	p := snatOut(t, f, ipPacket(vm3Addr, server, protoTCP, synSeg(40000, 80, "x"), 0))
	eport := port16(p.l4, 0)
	t.Run("a port no connection holds", func(t *testing.T) {
		notDelivered(t, gwVTEP, ipPacket(server, snatAddr, protoTCP, tcpSeg(80, eport+1, "x"), 0))
	})
	t.Run("another remote end", func(t *testing.T) {
		notDelivered(t, gwVTEP, ipPacket(ip4("198.51.100.81"), snatAddr, protoTCP, tcpSeg(80, eport, "x"), 0))
	})
	t.Run("from a host that is not a gateway", func(t *testing.T) {
		notDelivered(t, peerA, ipPacket(server, snatAddr, protoTCP, tcpSeg(80, eport, "x"), 0))
	})
}

// Ports are taken in turn, a port serves different remotes, and only when
// every port of the blocks is in use with one remote does a connection
// fail, counted.
func TestSNATExhaustion(t *testing.T) {
	f := snatFixture(t, 1)
	seen := map[uint16]bool{}
	for i := 0; i < 64; i++ {
		p := snatOut(t, f, ipPacket(vm3Addr, server, protoTCP, synSeg(uint16(30000+i), 80, ""), 0))
		seen[port16(p.l4, 0)] = true
	}
	if len(seen) != 64 {
		t.Fatalf("64 connections to one server took %d ports", len(seen))
	}
	expectDrop(t, f.d, "snat_exhausted", func() runResult {
		return run(t, f.d.objs.PortIngress, f.p3, append(ethHdr(gwMAC, vm3MAC, 0x0800),
			ipPacket(vm3Addr, server, protoTCP, synSeg(31000, 80, ""), 0)...))
	})
	if p := snatOut(t, f, ipPacket(vm3Addr, ip4("198.51.100.81"), protoTCP, synSeg(31000, 80, ""), 0)); p.src != snatAddr {
		t.Errorf("a connection to another server left from %s", p.src)
	}
	use, err := f.d.SNATUses()
	if err != nil || use[f.p3].Allocs != 65 || use[f.p3].Fails != 1 {
		t.Errorf("use %+v %v, want 65 allocations and 1 failure", use[f.p3], err)
	}
	// A further block makes room.
	f.state.SNATPorts[0].Blocks = append(f.state.SNATPorts[0].Blocks, SNATBlock{Addr: snatAddr, Lo: 1088})
	if _, err := f.d.Apply(f.state); err != nil {
		t.Fatal(err)
	}
	if p := snatOut(t, f, ipPacket(vm3Addr, server, protoTCP, synSeg(31000, 80, ""), 0)); port16(p.l4, 0) < 1088 {
		t.Errorf("with a second block, the connection took port %d", port16(p.l4, 0))
	}
	if use, _ := f.d.SNATUses(); use[f.p3].Allocs != 66 {
		t.Errorf("a rewritten port entry lost its use counters: %+v", use[f.p3])
	}
}

// Idle connections are forgotten after their protocol's timeout, those of
// a port no longer translated at once; the others are counted per port.
func TestSNATGC(t *testing.T) {
	f := snatFixture(t, 1)
	snatOut(t, f, ipPacket(vm3Addr, server, protoTCP, synSeg(40000, 80, ""), 0))
	snatOut(t, f, ipPacket(vm3Addr, server, protoUDP, udpSeg(5353, 53, "q"), 0))
	st, err := f.d.SNATGC(SNATTimeouts{TCP: time.Hour, TCPClosing: time.Hour, UDP: time.Nanosecond, ICMP: time.Hour})
	if err != nil || st.Removed != 1 || st.Live[f.p3] != 1 {
		t.Fatalf("gc %+v %v: want the UDP one removed, the TCP one live", st, err)
	}
	f.state.SNATPorts = nil
	if _, err := f.d.Apply(f.state); err != nil {
		t.Fatal(err)
	}
	if st, err := f.d.SNATGC(DefaultSNATTimeouts); err != nil || st.Removed != 1 || len(st.Live) != 0 {
		t.Errorf("gc after the port left %+v %v: want its connection removed", st, err)
	}
}

// gatewaySNATFixture is a gateway whose uplink is up, serving one block
// (203.0.113.50:1024-2047) of a port on peerA, and inbound, which runs
// what the uplink receives and returns where it was tunnelled.
func gatewaySNATFixture(t *testing.T) (d *Datapath, up int, inbound func(ip []byte) (runResult, netip.Addr)) {
	f := newFixture(t, false)
	up = veth(t, "up0")
	f.state.Gateway = &Gateway{Uplink: up, SNAT: []GatewaySNAT{{Addr: snatAddr, Lo: 1024, BlockSize: 1024, VTEP: peerA, VNI: 5001, MAC: vm3MAC, GwMAC: gwMAC}}}
	if _, err := f.d.Apply(f.state); err != nil {
		t.Fatal(err)
	}
	d = f.d
	inbound = func(ip []byte) (runResult, netip.Addr) {
		resetSent(d)
		r := run(t, d.objs.GwUplinkIngress, up, append(ethHdr(linkMAC(t, up), mac("02:bb:00:00:00:01"), 0x0800), ip...))
		vtep, _, _, _ := sent(t, d)
		return r, vtep
	}
	return d, up, inbound
}

// A gateway tunnels what comes back for a block to its port's host, and
// takes from a host only what it sends from its own ports' blocks.
func TestGatewaySNAT(t *testing.T) {
	d, up, inbound := gatewaySNATFixture(t)
	if r, vtep := inbound(ipPacket(server, snatAddr, protoTCP, tcpSeg(80, 2047, "x"), 0)); r.verdict != actRedirect || vtep != peerA {
		t.Errorf("port 2047: verdict %d to %s, want the block's host %s", r.verdict, vtep, peerA)
	}
	quoted := ipPacket(snatAddr, server, protoUDP, udpSeg(1500, 9, "x"), 0)
	if r, vtep := inbound(ipPacket(server, snatAddr, protoICM, append([]byte{3, 3, 0, 0, 0, 0, 0, 0}, quoted...), 0)); r.verdict != actRedirect || vtep != peerA {
		t.Errorf("an ICMP error about port 1500: verdict %d to %s", r.verdict, vtep)
	}
	expectDrop(t, d, "gw_no_block", func() runResult {
		r, _ := inbound(ipPacket(server, snatAddr, protoTCP, tcpSeg(80, 2048, "x"), 0))
		return r
	})
	resetSent(d)
	r := runTunnel(t, d, peerA, 5001, append(ethHdr(gwMAC, vm3MAC, 0x0800), ipPacket(snatAddr, server, protoTCP, tcpSeg(1100, 80, "x"), 0)...))
	if _, _, ifx, _ := sent(t, d); r.verdict != actRedirect || ifx != up {
		t.Errorf("outbound from the block's host: verdict %d to %d, want the uplink", r.verdict, ifx)
	}
	expectDrop(t, d, "gw_spoof", func() runResult {
		return runTunnel(t, d, peerB, 5001, append(ethHdr(gwMAC, vm3MAC, 0x0800), ipPacket(snatAddr, server, protoTCP, tcpSeg(1100, 80, "x"), 0)...))
	})
}

// A port's quota bounds the connections it may map (a hostile VM cannot
// take its host's whole table); the refusals are not failures that would
// ask for more blocks, and another port is not held back.
func TestSNATQuota(t *testing.T) {
	f := snatFixture(t, 4)
	if err := f.d.SetSNATQuotas(map[int]uint64{f.p3: 2}); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		snatOut(t, f, ipPacket(vm3Addr, server, protoTCP, synSeg(uint16(30000+i), 80, ""), 0))
	}
	expectDrop(t, f.d, "snat_quota", func() runResult {
		return run(t, f.d.objs.PortIngress, f.p3, append(ethHdr(gwMAC, vm3MAC, 0x0800),
			ipPacket(vm3Addr, server, protoTCP, synSeg(30002, 80, ""), 0)...))
	})
	// A connection already mapped goes on.
	snatOut(t, f, ipPacket(vm3Addr, server, protoTCP, tcpSeg(30000, 80, "more"), 0))
	if use, _ := f.d.SNATUses(); use[f.p3].Allocs != 2 || use[f.p3].Fails != 0 {
		t.Errorf("use %+v: want 2 allocations and no failure", use[f.p3])
	}
	if err := f.d.SetSNATQuotas(nil); err != nil {
		t.Fatal(err)
	}
	snatOut(t, f, ipPacket(vm3Addr, server, protoTCP, synSeg(30002, 80, ""), 0))
}

// A block added while the cursor is in the older ones is reached only
// after them: the gateways get the time to learn it.
func TestSNATNewBlockLast(t *testing.T) {
	f := snatFixture(t, 1)
	for i := 0; i < 70; i++ { // each to its own remote: ports wrap round, none in use
		snatOut(t, f, ipPacket(vm3Addr, netip.AddrFrom4([4]byte{198, 51, 100, byte(i + 1)}), protoTCP, synSeg(40000, 80, ""), 0))
	}
	f.state.SNATPorts[0].Blocks = append(f.state.SNATPorts[0].Blocks, SNATBlock{Addr: snatAddr, Lo: 1088})
	if _, err := f.d.Apply(f.state); err != nil {
		t.Fatal(err)
	}
	p := snatOut(t, f, ipPacket(vm3Addr, ip4("198.51.100.200"), protoTCP, synSeg(40000, 80, ""), 0))
	if port := port16(p.l4, 0); port >= 1088 {
		t.Errorf("the next connection took port %d of the new block, before the older block's turn ended", port)
	}
}

// TestSNATPathCost logs what SNAT costs per packet beside the paths it
// sits by, as TestEIPPathCost does for EIPs (kernel timing of single
// BPF_PROG_RUN runs, median of 5,000): out, a connection's first packet
// (each run a new source port, so each maps a new connection: the
// allocation, both maps written) and a packet of an established one; in,
// a gateway's packet for an established connection. A measurement, not
// a check: COURIER_MEASURE=1 go test ./dataplane -run TestSNATPathCost -v.
func TestSNATPathCost(t *testing.T) {
	if os.Getenv("COURIER_MEASURE") == "" {
		t.Skip("a measurement: set COURIER_MEASURE=1")
	}
	const runs = 5000
	// Blocks of 1,024 ports, 8 of them: every new connection of the
	// runs finds a free port at its first try, as below exhaustion.
	f := newFixture(t, false)
	p := SNATPort{Ifindex: f.p3, VPC: 1, Addr: vm3Addr, Network: 1, BlockSize: 1024}
	for i := 0; i < 8; i++ {
		p.Blocks = append(p.Blocks, SNATBlock{Addr: snatAddr, Lo: uint16(1024 * (i + 1))})
	}
	f.state.SNATPorts = []SNATPort{p}
	f.state.EIPGateways = []EIPGateways{{Network: 1, VTEPs: []netip.Addr{gwVTEP}}}
	if _, err := f.d.Apply(f.state); err != nil {
		t.Fatal(err)
	}
	d := f.d
	tcp := func(src, dst netip.Addr, sport, dport uint16, dmac, smac []byte) []byte {
		return append(ethHdr(dmac, smac, 0x0800), ipPacket(src, dst, protoTCP, tcpSeg(sport, dport, "0123456789"), 0)...)
	}
	tunnelFrom := func(src netip.Addr) {
		if err := d.objs.TunnelIn.Put(uint32(0), dvrTunnelRec{Vtep: host32(src), Vni: 5001}); err != nil {
			t.Fatal(err)
		}
	}
	logCost := func(name string, cost time.Duration, verdict uint32, err error) {
		t.Helper()
		if err != nil || verdict != actRedirect {
			drops, _ := d.Drops()
			t.Fatalf("%s: verdict %d, %v (drops %v)", name, verdict, err, drops)
		}
		t.Logf("%-40s %4d ns", name, cost.Nanoseconds())
	}
	for _, c := range []struct {
		name, prog string
		ifindex    int
		pkt        []byte
		from       netip.Addr
	}{
		{"port: routed to a local port", "port_ingress", f.p3, tcp(vm3Addr, ip4("10.0.2.5"), 40000, 80, gwMAC, vm3MAC), peerA},
		{"port: routed to a hub (tunnel)", "port_ingress", f.p3, tcp(vm3Addr, ip4("10.0.2.7"), 40000, 80, gwMAC, vm3MAC), peerA},
		{"tunnel: to a local port", "tunnel_ingress", d.vxlan, tcp(ip4("10.0.1.7"), vm3Addr, 80, 40000, vm3MAC, remMAC1), peerA},
	} {
		tunnelFrom(c.from)
		var cost time.Duration
		var verdict uint32
		var err error
		within(func() { cost, verdict, err = d.ProgramCost(c.prog, c.ifindex, c.pkt, runs) })
		logCost(c.name, cost, verdict, err)
	}
	// New connections: one run each, from source ports 20000 on.
	durs := make([]time.Duration, 0, runs)
	var verdict uint32
	var err error
	within(func() {
		for i := 0; i < runs && err == nil; i++ {
			var c time.Duration
			syn := append(ethHdr(gwMAC, vm3MAC, 0x0800), ipPacket(vm3Addr, server, protoTCP, synSeg(uint16(20000+i), 80, ""), 0)...)
			c, verdict, err = d.ProgramCost("port_ingress", f.p3, syn, 1)
			if verdict != actRedirect {
				break
			}
			durs = append(durs, c)
		}
	})
	slices.Sort(durs)
	var med time.Duration
	if len(durs) > 0 {
		med = durs[len(durs)/2]
	}
	logCost("port: SNAT out, a new connection", med, verdict, err)
	if n := counter(t, d, "snat_new"); n != runs {
		t.Fatalf("snat_new %d after %d new connections", n, runs)
	}
	// Established: the first of them again, and its replies.
	first := tcp(vm3Addr, server, 20000, 80, gwMAC, vm3MAC)
	eport := port16(parse(t, run(t, d.objs.PortIngress, f.p3, first).out).l4, 0)
	var cost time.Duration
	within(func() { cost, verdict, err = d.ProgramCost("port_ingress", f.p3, first, runs) })
	logCost("port: SNAT out, established", cost, verdict, err)
	tunnelFrom(gwVTEP)
	within(func() {
		cost, verdict, err = d.ProgramCost("tunnel_ingress", d.vxlan, tcp(server, snatAddr, 80, eport, vm3MAC, gwMAC), runs)
	})
	logCost("tunnel: SNAT in, established", cost, verdict, err)
	if n := counter(t, d, "snat_new"); n != runs {
		t.Errorf("snat_new %d: an established connection was mapped again", n)
	}
}

// A connection mapped into a block its port gave back is forgotten by
// the next sweep, not left to leave from ports now somebody else's.
func TestSNATGCForgetsBlocksGivenBack(t *testing.T) {
	f := snatFixture(t, 2)
	for i := 0; i < 66; i++ { // 64 fill the first block, two go to the second
		snatOut(t, f, ipPacket(vm3Addr, server, protoTCP, synSeg(uint16(30000+i), 80, ""), 0))
	}
	f.state.SNATPorts[0].Blocks = f.state.SNATPorts[0].Blocks[:1]
	if _, err := f.d.Apply(f.state); err != nil {
		t.Fatal(err)
	}
	st, err := f.d.SNATGC(DefaultSNATTimeouts)
	if err != nil || st.Removed != 2 || st.Live[f.p3] != 64 {
		t.Errorf("sweep %+v %v: want the second block's 2 connections removed, 64 live", st, err)
	}
}

// A FIN marks a connection closing (forgotten sooner); a SYN that reuses
// its tuple opens it anew.
func TestSNATClosingThenReused(t *testing.T) {
	f := snatFixture(t, 1)
	seg := func(flags byte) []byte {
		s := tcpSeg(40000, 80, "")
		s[13] = flags
		return ipPacket(vm3Addr, server, protoTCP, s, 0)
	}
	closing := func() bool {
		cs, err := f.d.SNATConns()
		if err != nil || len(cs) != 1 {
			t.Fatalf("connections %+v %v", cs, err)
		}
		return cs[0].Closing
	}
	snatOut(t, f, seg(0x02))
	snatOut(t, f, seg(0x11)) // FIN ACK
	if !closing() {
		t.Fatal("a FIN did not mark the connection closing")
	}
	snatOut(t, f, seg(0x02))
	if closing() {
		t.Error("a SYN reusing the tuple left it closing")
	}
}
