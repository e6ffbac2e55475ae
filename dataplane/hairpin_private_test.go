package dataplane

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
)

// A hairpin from a port without an EIP (#15 item 5): vm2 (10.0.2.5, no
// EIP, no SNAT) reaching vm3's EIP on its host, or 10.0.1.7's on peerA,
// goes one hop with its own address kept; the replies are translated
// back to the EIP it called, by state its own egress created on its
// host (hairpin_ct_v1), and by nothing else.

var vm2Addr = ip4("10.0.2.5")

// fromVM2 runs what vm2 sends (IPv4 packet ip, to the gateway MAC).
func fromVM2(t *testing.T, f *fixture, ip []byte) runResult {
	t.Helper()
	resetSent(f.d)
	return run(t, f.d.objs.PortIngress, f.p2, append(ethHdr(gwMAC, vm2MAC, 0x0800), ip...))
}

// toVM2 checks that r went to vm2's port and returns what it got.
func toVM2(t *testing.T, f *fixture, r runResult) parsed {
	t.Helper()
	if _, _, ifx, _ := sent(t, f.d); r.verdict != actRedirect || ifx != f.p2 {
		t.Fatalf("verdict %d to %d, want vm2's port %d", r.verdict, ifx, f.p2)
	}
	return parse(t, r.out)
}

// fromVM3 runs what vm3 sends to vm2 (routed: to the gateway MAC).
func fromVM3(t *testing.T, f *fixture, ip []byte) parsed {
	t.Helper()
	resetSent(f.d)
	return toVM2(t, f, run(t, f.d.objs.PortIngress, f.p3, append(ethHdr(gwMAC, vm3MAC, 0x0800), ip...)))
}

func echo(typ byte, id uint16) []byte {
	b := []byte{typ, 0, 0, 0, 0, 0, 0, 1, 'p', 'i', 'n', 'g'}
	binary.BigEndian.PutUint16(b[4:], id)
	return b
}

func hairpinEntry(t *testing.T, f *fixture, raddr, saddr netip.Addr, rport, sport uint16, proto byte) (dvrHairpinEntry, bool) {
	t.Helper()
	k := dvrHairpinKey{Vpc: 1, Raddr: be32(raddr), Saddr: be32(saddr), Rport: htons(rport), Sport: htons(sport), Proto: proto}
	var e dvrHairpinEntry
	return e, f.d.objs.HairpinCtV1.Lookup(k, &e) == nil
}

func TestHairpinWithoutAnEIP(t *testing.T) {
	f := hairpinFixture(t)
	vm3, remote := ip4("10.0.1.6"), ip4("10.0.1.7")
	t.Run("tcp to a local VM's EIP: delivered from the sender's own address, the connection noted", func(t *testing.T) {
		r := fromVM2(t, f, ipPacket(vm2Addr, eip3, protoTCP, tcpSeg(40000, 8080, "hi"), 0))
		if _, _, ifx, peer := sent(t, f.d); r.verdict != actRedirect || ifx != f.p3 || !peer {
			t.Fatalf("verdict %d to %d (peer %v), want vm3's port %d", r.verdict, ifx, peer, f.p3)
		}
		p := parse(t, r.out)
		if p.src != vm2Addr || p.dst != vm3 || p.ttl != 63 || !p.ipOK || !l4ok(vm2Addr, vm3, protoTCP, p.l4) {
			t.Errorf("%s -> %s ttl %d, IPv4 ok %v, TCP ok %v", p.src, p.dst, p.ttl, p.ipOK, l4ok(vm2Addr, vm3, protoTCP, p.l4))
		}
		if e, ok := hairpinEntry(t, f, vm3, vm2Addr, 8080, 40000, protoTCP); !ok || e.Ifindex != uint32(f.p2) || e.Eip != be32(eip3) {
			t.Errorf("hairpin_ct entry %+v (found %v), want vm2's port %d and %s", e, ok, f.p2, eip3)
		}
	})
	t.Run("the reply reaches the sender from the EIP it called, checksums right", func(t *testing.T) {
		before := counter(t, f.d, "hairpin_back")
		p := fromVM3(t, f, ipPacket(vm3, vm2Addr, protoTCP, tcpSeg(8080, 40000, "ho"), 0))
		if p.src != eip3 || p.dst != vm2Addr || !p.ipOK || !l4ok(eip3, vm2Addr, protoTCP, p.l4) {
			t.Errorf("%s -> %s, IPv4 ok %v, TCP ok %v", p.src, p.dst, p.ipOK, l4ok(eip3, vm2Addr, protoTCP, p.l4))
		}
		if n := counter(t, f.d, "hairpin_back"); n != before+1 {
			t.Errorf("hairpin_back %d, want %d", n, before+1)
		}
	})
	t.Run("udp to a remote VM's EIP: straight to its host; the reply over the tunnel comes back from the EIP", func(t *testing.T) {
		r := fromVM2(t, f, ipPacket(vm2Addr, eipRemote, protoUDP, udpSeg(5000, 53, "q"), 0))
		if vtep, vni, _, _ := sent(t, f.d); r.verdict != actRedirect || vtep != peerA || vni != 5001 {
			t.Fatalf("verdict %d to %s vni %d, want 10.0.1.7's host %s", r.verdict, vtep, vni, peerA)
		}
		if p := parse(t, r.out); p.src != vm2Addr || p.dst != remote || !p.ipOK || !l4ok(vm2Addr, remote, protoUDP, p.l4) {
			t.Errorf("%s -> %s, IPv4 ok %v, UDP ok %v", p.src, p.dst, p.ipOK, l4ok(vm2Addr, remote, protoUDP, p.l4))
		}
		resetSent(f.d)
		rr := runTunnel(t, f.d, peerA, 5002, append(ethHdr(vm2MAC, gwMAC, 0x0800), ipPacket(remote, vm2Addr, protoUDP, udpSeg(53, 5000, "a"), 0)...))
		if p := toVM2(t, f, rr); p.src != eipRemote || p.dst != vm2Addr || !p.ipOK || !l4ok(eipRemote, vm2Addr, protoUDP, p.l4) {
			t.Errorf("reply %s -> %s, IPv4 ok %v, UDP ok %v", p.src, p.dst, p.ipOK, l4ok(eipRemote, vm2Addr, protoUDP, p.l4))
		}
	})
	t.Run("a reply in fragments comes back from the EIP, its later fragment too", func(t *testing.T) {
		fromVM2(t, f, ipPacket(vm2Addr, eip3, protoUDP, udpSeg(5300, 53, "query"), 0))
		first, later, _ := fragments(vm3, vm2Addr, 53, 5300, 0x5151)
		a, b := fromVM3(t, f, first), fromVM3(t, f, later)
		whole := append(bytes.Clone(a.l4), b.l4...)
		if a.src != eip3 || b.src != eip3 || !b.ipOK || !l4ok(eip3, vm2Addr, protoUDP, whole) {
			t.Errorf("fragments from %s and %s, later's IPv4 ok %v, the datagram's UDP ok %v", a.src, b.src, b.ipOK,
				l4ok(eip3, vm2Addr, protoUDP, whole))
		}
		_, stray, _ := fragments(vm3, vm2Addr, 53, 5300, 0x5152)
		if p := fromVM3(t, f, stray); p.src != vm3 {
			t.Errorf("a later fragment of no translated datagram came from %s, want %s untouched", p.src, vm3)
		}
	})
	t.Run("icmp echo: the identifier as the port", func(t *testing.T) {
		if r := fromVM2(t, f, ipPacket(vm2Addr, eip3, protoICM, echo(8, 0x77), 0)); r.verdict != actRedirect {
			t.Fatalf("echo request verdict %d", r.verdict)
		}
		p := fromVM3(t, f, ipPacket(vm3, vm2Addr, protoICM, echo(0, 0x77), 0))
		if p.src != eip3 || !p.ipOK || csum(p.l4) != 0 {
			t.Errorf("echo reply from %s, IPv4 ok %v, ICMP ok %v", p.src, p.ipOK, csum(p.l4) == 0)
		}
		if p := fromVM3(t, f, ipPacket(vm3, vm2Addr, protoICM, echo(0, 0x78), 0)); p.src != vm3 {
			t.Errorf("an echo reply of another identifier came from %s, want %s untranslated", p.src, vm3)
		}
	})
	t.Run("an icmp error from the receiver about the connection: its quote translated too", func(t *testing.T) {
		sentUDP := append(ethHdr(gwMAC, vm2MAC, 0x0800), ipPacket(vm2Addr, eip3, protoUDP, udpSeg(5001, 9, ""), 0)...)
		if r := fromVM2(t, f, sentUDP[14:]); r.verdict != actRedirect {
			t.Fatalf("udp verdict %d", r.verdict)
		}
		got := append(ethHdr(vm3MAC, gwMAC, 0x0800), ipPacket(vm2Addr, vm3, protoUDP, udpSeg(5001, 9, ""), 0)...) // what vm3 got
		resetSent(f.d)
		fr := icmpErr(gwMAC, vm3MAC, vm3, vm2Addr, 3, 3, got)
		binary.BigEndian.PutUint16(fr[34+2:], csum(fr[34:])) // icmpErr leaves it 0
		p := toVM2(t, f, run(t, f.d.objs.PortIngress, f.p3, fr))
		inner := p.l4[8:]
		in := parse(t, append(make([]byte, 14), inner...))
		if p.src != eip3 || !p.ipOK || csum(p.l4) != 0 || in.dst != eip3 || in.src != vm2Addr || !in.ipOK || !l4ok(vm2Addr, eip3, protoUDP, inner[20:28]) {
			t.Errorf("error from %s (IPv4 ok %v, ICMP ok %v) quoting %s -> %s (IPv4 ok %v, UDP ok %v)", p.src, p.ipOK, csum(p.l4) == 0,
				in.src, in.dst, in.ipOK, l4ok(vm2Addr, eip3, protoUDP, inner[20:28]))
		}
	})
	t.Run("a connection opened straight to the receiver forgets a hairpin's on its tuple", func(t *testing.T) {
		if r := fromVM2(t, f, ipPacket(vm2Addr, eip3, protoTCP, tcpSeg(43000, 8080, "h"), 0)); r.verdict != actRedirect {
			t.Fatalf("hairpin verdict %d", r.verdict)
		}
		syn := tcpSeg(43000, 8080, "")
		syn[13] = 0x02
		if r := fromVM2(t, f, ipPacket(vm2Addr, vm3, protoTCP, syn, 0)); r.verdict != actRedirect {
			t.Fatalf("SYN verdict %d", r.verdict)
		}
		if _, ok := hairpinEntry(t, f, vm3, vm2Addr, 8080, 43000, protoTCP); ok {
			t.Errorf("the hairpin's entry outlived a new connection on its tuple")
		}
		if p := fromVM3(t, f, ipPacket(vm3, vm2Addr, protoTCP, tcpSeg(8080, 43000, "r"), 0)); p.src != vm3 {
			t.Errorf("the new connection's reply came from %s, want %s", p.src, vm3)
		}
	})
	t.Run("a packet to the sender of no connection it opened is not translated", func(t *testing.T) {
		if p := fromVM3(t, f, ipPacket(vm3, vm2Addr, protoTCP, tcpSeg(8080, 40001, "x"), 0)); p.src != vm3 {
			t.Errorf("from %s, want %s", p.src, vm3)
		}
	})
}

// A hostile port cannot make the table translate for a connection it
// does not own: vm4 (no port security, no EIP) sends as vm2. An entry it
// creates names its own port, so replies to vm2's port are left alone;
// an entry vm2 made is not taken over.
func TestHairpinSpoofedSender(t *testing.T) {
	f := hairpinFixture(t)
	p4 := veth(t, "p4")
	vm4MAC := mac("02:00:00:00:02:06")
	f.state.Ports = append(f.state.Ports, Port{Ifindex: p4, Name: "vm4", VNI: 5002, VPC: 1, MAC: vm4MAC, MTU: 1450,
		IPs: []netip.Addr{ip4("10.0.2.6")}})
	if _, err := f.d.Apply(f.state); err != nil {
		t.Fatal(err)
	}
	vm3 := ip4("10.0.1.6")
	fromVM4 := func(ip []byte) {
		t.Helper()
		resetSent(f.d)
		if r := run(t, f.d.objs.PortIngress, p4, append(ethHdr(gwMAC, net.HardwareAddr(vm4MAC), 0x0800), ip...)); r.verdict != actRedirect {
			t.Fatalf("vm4's spoofed packet: verdict %d (the test needs it delivered)", r.verdict)
		}
	}
	t.Run("an entry a spoofer made does not translate replies to the real owner's port", func(t *testing.T) {
		// vm2 has a hairpin of its own: what is delivered to it is looked up
		if r := fromVM2(t, f, ipPacket(vm2Addr, eip3, protoTCP, tcpSeg(40999, 8080, "o"), 0)); r.verdict != actRedirect {
			t.Fatalf("vm2's verdict %d", r.verdict)
		}
		fromVM4(ipPacket(vm2Addr, eip3, protoTCP, tcpSeg(41000, 8080, "s"), 0))
		if e, ok := hairpinEntry(t, f, vm3, vm2Addr, 8080, 41000, protoTCP); !ok || e.Ifindex != uint32(p4) {
			t.Fatalf("entry %+v (found %v), want vm4's port %d", e, ok, p4)
		}
		if p := fromVM3(t, f, ipPacket(vm3, vm2Addr, protoTCP, tcpSeg(8080, 41000, "r"), 0)); p.src != vm3 {
			t.Errorf("a reply to vm2 came from %s: translated by vm4's entry", p.src)
		}
	})
	t.Run("the owner's entry is not taken over", func(t *testing.T) {
		if r := fromVM2(t, f, ipPacket(vm2Addr, eip3, protoTCP, tcpSeg(42000, 8080, "o"), 0)); r.verdict != actRedirect {
			t.Fatalf("vm2's verdict %d", r.verdict)
		}
		fromVM4(ipPacket(vm2Addr, eip3, protoTCP, tcpSeg(42000, 8080, "s"), 0))
		if e, ok := hairpinEntry(t, f, vm3, vm2Addr, 8080, 42000, protoTCP); !ok || e.Ifindex != uint32(f.p2) {
			t.Errorf("entry %+v (found %v), want vm2's port %d still", e, ok, f.p2)
		}
		if p := fromVM3(t, f, ipPacket(vm3, vm2Addr, protoTCP, tcpSeg(8080, 42000, "r"), 0)); p.src != eip3 {
			t.Errorf("vm2's reply came from %s, want %s", p.src, eip3)
		}
	})
}

// Groups see a hairpin from a port without an EIP as the VMs do: the
// sender's egress as to the internet (it called an EIP), the receiver's
// ingress as VPC traffic from the sender's own address and identity
// (sgState: vm3 is db, whose egress allows anything; vm1 is web, which
// admits ICMP from db by group, TCP 80 from 10.0.0.0/8 by prefix; vm2
// is ops, whose one egress rule names web's group).
func TestHairpinWithoutAnEIPGroups(t *testing.T) {
	f := eipFixture(t, gwVTEP)
	sgState(f)
	f.state.VPCEIPs = []VPCEIP{{VPC: 1, EIP: eip1, Addr: ip4("10.0.1.5")}}
	if _, err := f.d.Apply(f.state); err != nil {
		t.Fatal(err)
	}
	closePickUp(t, f.d)
	vm1, vm3 := ip4("10.0.1.5"), ip4("10.0.1.6")
	to := func(t *testing.T, from int, src net.HardwareAddr, ip []byte, want int) parsed {
		t.Helper()
		resetSent(f.d)
		r := run(t, f.d.objs.PortIngress, from, append(ethHdr(gwMAC, src, 0x0800), ip...))
		if _, _, ifx, _ := sent(t, f.d); r.verdict != actRedirect || ifx != want {
			t.Fatalf("verdict %d to %d, want port %d; drops %v", r.verdict, ifx, want, drops(t, f.d))
		}
		return parse(t, r.out)
	}
	t.Run("icmp by the sender's group, and its reply through the sender's conntrack", func(t *testing.T) {
		if p := to(t, f.p3, vm3MAC, ipPacket(vm3, eip1, protoICM, echo(8, 9), 0), f.p1); p.src != vm3 || p.dst != vm1 {
			t.Errorf("%s -> %s, want %s -> %s", p.src, p.dst, vm3, vm1)
		}
		if p := to(t, f.p1, vm1MAC, ipPacket(vm1, vm3, protoICM, echo(0, 9), 0), f.p3); p.src != eip1 {
			t.Errorf("reply from %s, want %s", p.src, eip1)
		}
	})
	t.Run("tcp 80 by the sender's private prefix", func(t *testing.T) {
		to(t, f.p3, vm3MAC, ipPacket(vm3, eip1, protoTCP, tcpSeg(40000, 80, "x"), 0), f.p1)
	})
	t.Run("the sender's egress sees the internet: a rule naming a group does not let it go", func(t *testing.T) {
		resetSent(f.d)
		before := drops(t, f.d)["sg_egress"]
		run(t, f.d.objs.PortIngress, f.p2, append(ethHdr(gwMAC, vm2MAC, 0x0800), ipPacket(vm2Addr, eip1, protoTCP, tcpSeg(40000, 443, "x"), 0)...))
		if n := drops(t, f.d)["sg_egress"]; n != before+1 {
			t.Errorf("sg_egress drops %d, want %d", n, before+1)
		}
	})
}
