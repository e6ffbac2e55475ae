package dataplane

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

// EIPs in the DVR (#15): every rewrite run through the real programs with
// BPF_PROG_RUN, its checksums checked by computing them afresh here.

var (
	eip1     = ip4("203.0.113.10")
	client   = ip4("198.51.100.10")
	gwVTEP   = ip4("192.168.100.20")
	gwVTEP2  = ip4("192.168.100.21")
	protoTCP = byte(6)
	protoUDP = byte(17)
	protoICM = byte(1)
)

// eipFixture: vm1 (10.0.1.5) has EIP 203.0.113.10 in network 1, whose
// gateways are gwVTEP and gwVTEP2; vm3 has none.
func eipFixture(t *testing.T, gateways ...netip.Addr) *fixture {
	f := newFixture(t, false)
	f.state.EIPs = []EIP{{Ifindex: f.p1, VPC: 1, EIP: eip1, Addr: ip4("10.0.1.5"), Network: 1}}
	f.state.EIPGateways = []EIPGateways{{Network: 1, VTEPs: gateways}}
	if _, err := f.d.Apply(f.state); err != nil {
		t.Fatal(err)
	}
	return f
}

// ipPacket builds an IPv4 packet with valid checksums: l4 is the
// transport header and payload (its checksum field zero; filled here for
// TCP, UDP and ICMP). frag is the fragment field (flags and offset).
func ipPacket(src, dst netip.Addr, proto byte, l4 []byte, frag uint16) []byte {
	ip := make([]byte, 20)
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(l4)))
	binary.BigEndian.PutUint16(ip[4:], 0x1234)
	binary.BigEndian.PutUint16(ip[6:], frag)
	ip[8], ip[9] = 64, proto
	s, d := src.As4(), dst.As4()
	copy(ip[12:16], s[:])
	copy(ip[16:20], d[:])
	binary.BigEndian.PutUint16(ip[10:], csum(ip))
	l4 = bytes.Clone(l4)
	if frag&0x3fff == 0 { // a fragment keeps the checksum it was given
		switch proto {
		case protoTCP:
			binary.BigEndian.PutUint16(l4[16:], l4sum(src, dst, proto, l4))
		case protoUDP:
			binary.BigEndian.PutUint16(l4[6:], l4sum(src, dst, proto, l4))
		case protoICM:
			binary.BigEndian.PutUint16(l4[2:], csum(l4))
		}
	}
	return append(ip, l4...)
}

// l4sum is the TCP or UDP checksum of seg (checksum field zero) with the
// pseudo header: computed whole, independently of the data plane.
func l4sum(src, dst netip.Addr, proto byte, seg []byte) uint16 {
	s, d := src.As4(), dst.As4()
	ph := append(append(append([]byte{}, s[:]...), d[:]...), 0, proto, byte(len(seg)>>8), byte(len(seg)))
	v := csum(append(ph, seg...))
	if v == 0 && proto == protoUDP {
		v = 0xffff
	}
	return v
}

// l4ok says whether seg's own checksum is right for src and dst.
func l4ok(src, dst netip.Addr, proto byte, seg []byte) bool {
	s, d := src.As4(), dst.As4()
	ph := append(append(append([]byte{}, s[:]...), d[:]...), 0, proto, byte(len(seg)>>8), byte(len(seg)))
	return csum(append(ph, seg...)) == 0
}

func tcpSeg(sport, dport uint16, payload string) []byte {
	b := make([]byte, 20, 20+len(payload))
	binary.BigEndian.PutUint16(b[0:], sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint32(b[4:], 1000)
	b[12], b[13] = 5<<4, 0x18 // PSH ACK
	binary.BigEndian.PutUint16(b[14:], 65000)
	return append(b, payload...)
}

func udpSeg(sport, dport uint16, payload string) []byte {
	b := make([]byte, 8, 8+len(payload))
	binary.BigEndian.PutUint16(b[0:], sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint16(b[4:], uint16(8+len(payload)))
	return append(b, payload...)
}

// parsed is what the tests look at in a rewritten frame.
type parsed struct {
	src, dst netip.Addr
	ttl      byte
	ipOK     bool
	l4       []byte
}

func parse(t *testing.T, out []byte) parsed {
	t.Helper()
	ip := out[14:34]
	tot := int(binary.BigEndian.Uint16(ip[2:]))
	return parsed{src: netip.AddrFrom4([4]byte(ip[12:16])), dst: netip.AddrFrom4([4]byte(ip[16:20])), ttl: ip[8],
		ipOK: csum(ip) == 0, l4: out[34 : 14+tot]}
}

// fromGateway runs tunnel_ingress with a frame a gateway sent for an EIP
// and checks it went to vm1.
func fromGateway(t *testing.T, f *fixture, ip []byte) parsed {
	t.Helper()
	resetSent(f.d)
	r := runTunnel(t, f.d, gwVTEP, 5001, append(ethHdr(vm1MAC, gwMAC, 0x0800), ip...))
	if _, _, ifx, peer := sent(t, f.d); r.verdict != actRedirect || ifx != f.p1 || !peer {
		t.Fatalf("verdict %d to %d (peer %v), want vm1's port %d", r.verdict, ifx, peer, f.p1)
	}
	return parse(t, r.out)
}

func TestEIPInbound(t *testing.T) {
	f := eipFixture(t, gwVTEP, gwVTEP2)
	vm := ip4("10.0.1.5")
	t.Run("tcp: destination and checksums", func(t *testing.T) {
		p := fromGateway(t, f, ipPacket(client, eip1, protoTCP, tcpSeg(43210, 80, "GET / HTTP/1.0\r\n\r\n"), 0))
		if p.src != client || p.dst != vm || !p.ipOK || !l4ok(client, vm, protoTCP, p.l4) {
			t.Errorf("%s -> %s, IPv4 checksum ok %v, TCP checksum ok %v", p.src, p.dst, p.ipOK, l4ok(client, vm, protoTCP, p.l4))
		}
		if string(p.l4[20:]) != "GET / HTTP/1.0\r\n\r\n" {
			t.Errorf("payload changed: %q", p.l4[20:])
		}
	})
	t.Run("udp: checksum", func(t *testing.T) {
		p := fromGateway(t, f, ipPacket(client, eip1, protoUDP, udpSeg(5353, 53, "query"), 0))
		if p.dst != vm || !p.ipOK || !l4ok(client, vm, protoUDP, p.l4) {
			t.Errorf("to %s, IPv4 ok %v, UDP ok %v", p.dst, p.ipOK, l4ok(client, vm, protoUDP, p.l4))
		}
	})
	t.Run("udp without checksum stays without", func(t *testing.T) {
		ip := ipPacket(client, eip1, protoUDP, udpSeg(5353, 53, "query"), 0)
		binary.BigEndian.PutUint16(ip[26:], 0)
		p := fromGateway(t, f, ip)
		if p.dst != vm || !p.ipOK || binary.BigEndian.Uint16(p.l4[6:]) != 0 {
			t.Errorf("to %s, IPv4 ok %v, UDP checksum %#x (want 0)", p.dst, p.ipOK, binary.BigEndian.Uint16(p.l4[6:]))
		}
	})
	t.Run("icmp echo", func(t *testing.T) {
		echo := []byte{8, 0, 0, 0, 0x12, 0x34, 0, 1, 'p', 'i', 'n', 'g'}
		p := fromGateway(t, f, ipPacket(client, eip1, protoICM, echo, 0))
		if p.dst != vm || !p.ipOK || csum(p.l4) != 0 {
			t.Errorf("to %s, IPv4 ok %v, ICMP ok %v", p.dst, p.ipOK, csum(p.l4) == 0)
		}
	})
	t.Run("icmp error quoting what the VM sent from its EIP", func(t *testing.T) {
		// The VM sent UDP from 203.0.113.10:40000 to the client; the
		// client's port unreachable quotes it whole.
		quoted := ipPacket(eip1, client, protoUDP, udpSeg(40000, 9, "probe!"), 0)
		icmp := append([]byte{3, 3, 0, 0, 0, 0, 0, 0}, quoted...)
		p := fromGateway(t, f, ipPacket(client, eip1, protoICM, icmp, 0))
		if p.dst != vm || !p.ipOK || csum(p.l4) != 0 {
			t.Fatalf("to %s, IPv4 ok %v, ICMP ok %v", p.dst, p.ipOK, csum(p.l4) == 0)
		}
		in := p.l4[8:]
		isrc := netip.AddrFrom4([4]byte(in[12:16]))
		if isrc != vm || csum(in[:20]) != 0 || !l4ok(vm, client, protoUDP, in[20:]) {
			t.Errorf("quoted source %s (want %s), inner IPv4 ok %v, inner UDP ok %v", isrc, vm, csum(in[:20]) == 0, l4ok(vm, client, protoUDP, in[20:]))
		}
	})
	t.Run("fragments: the first's UDP checksum is right for the whole datagram", func(t *testing.T) {
		seg := udpSeg(5353, 53, "0123456789abcdefghijklmnopqrstuv") // 40 bytes
		binary.BigEndian.PutUint16(seg[6:], l4sum(client, eip1, protoUDP, seg))
		first := ipPacket(client, eip1, protoUDP, seg[:24], 0x2000) // MF, offset 0
		second := ipPacket(client, eip1, protoUDP, seg[24:], 3)     // offset 24 bytes
		a := fromGateway(t, f, first)
		a.l4 = bytes.Clone(a.l4)
		b := fromGateway(t, f, second)
		if a.dst != vm || b.dst != vm || !a.ipOK || !b.ipOK {
			t.Fatalf("fragments to %s and %s, IPv4 ok %v %v", a.dst, b.dst, a.ipOK, b.ipOK)
		}
		if !bytes.Equal(b.l4, seg[24:]) {
			t.Errorf("the later fragment's payload changed")
		}
		if whole := append(a.l4, b.l4...); !l4ok(client, vm, protoUDP, whole) {
			t.Errorf("the reassembled datagram's UDP checksum is wrong")
		}
	})
	t.Run("from a host that is not a gateway, an EIP is not translated", func(t *testing.T) {
		resetSent(f.d)
		r := runTunnel(t, f.d, peerA, 5001, append(ethHdr(vm1MAC, gwMAC, 0x0800), ipPacket(client, eip1, protoUDP, udpSeg(1, 2, "x"), 0)...))
		if _, _, ifx, peer := sent(t, f.d); r.verdict == actRedirect && peer {
			t.Errorf("delivered to port %d", ifx)
		}
	})
	t.Run("an address that is no local EIP is not translated", func(t *testing.T) {
		r := runTunnel(t, f.d, gwVTEP, 5001, append(ethHdr(vm1MAC, gwMAC, 0x0800), ipPacket(client, ip4("203.0.113.11"), protoUDP, udpSeg(1, 2, "x"), 0)...))
		if r.verdict == actRedirect {
			if _, _, ifx, peer := sent(t, f.d); peer {
				t.Errorf("delivered to port %d", ifx)
			}
		}
	})
}

func TestEIPOutbound(t *testing.T) {
	f := eipFixture(t, gwVTEP, gwVTEP2)
	vm := ip4("10.0.1.5")
	out := func(t *testing.T, ip []byte) (parsed, netip.Addr) {
		t.Helper()
		resetSent(f.d)
		r := run(t, f.d.objs.PortIngress, f.p1, append(ethHdr(gwMAC, vm1MAC, 0x0800), ip...))
		vtep, vni, ifx, peer := sent(t, f.d)
		if r.verdict != actRedirect || (vtep != gwVTEP && vtep != gwVTEP2) || vni != 5001 || ifx != f.d.vxlan || peer {
			t.Fatalf("verdict %d to %s vni %d ifindex %d: want a gateway through the tunnel", r.verdict, vtep, vni, ifx)
		}
		if !bytes.Equal(r.out[6:12], gwMAC) {
			t.Errorf("source MAC %x, want the VPC's gateway MAC", r.out[6:12])
		}
		return parse(t, r.out), vtep
	}
	t.Run("tcp: source, TTL and checksums", func(t *testing.T) {
		p, _ := out(t, ipPacket(vm, client, protoTCP, tcpSeg(40000, 80, "hello"), 0))
		if p.src != eip1 || p.dst != client || p.ttl != 63 || !p.ipOK || !l4ok(eip1, client, protoTCP, p.l4) {
			t.Errorf("%s -> %s ttl %d, IPv4 ok %v, TCP ok %v", p.src, p.dst, p.ttl, p.ipOK, l4ok(eip1, client, protoTCP, p.l4))
		}
	})
	t.Run("icmp error about what the client sent to the EIP", func(t *testing.T) {
		quoted := ipPacket(client, vm, protoUDP, udpSeg(5353, 9, "knock"), 0)
		icmp := append([]byte{3, 3, 0, 0, 0, 0, 0, 0}, quoted...)
		p, _ := out(t, ipPacket(vm, client, protoICM, icmp, 0))
		in := p.l4[8:]
		idst := netip.AddrFrom4([4]byte(in[16:20]))
		if p.src != eip1 || !p.ipOK || csum(p.l4) != 0 || idst != eip1 || csum(in[:20]) != 0 || !l4ok(client, eip1, protoUDP, in[20:]) {
			t.Errorf("from %s, ICMP ok %v, quoted destination %s, inner IPv4 ok %v, inner UDP ok %v",
				p.src, csum(p.l4) == 0, idst, csum(in[:20]) == 0, l4ok(client, eip1, protoUDP, in[20:]))
		}
	})
	t.Run("flows spread over both gateways", func(t *testing.T) {
		seen := map[netip.Addr]bool{}
		for port := uint16(1000); port < 1064; port++ {
			_, vtep := out(t, ipPacket(vm, client, protoUDP, udpSeg(port, 53, "q"), 0))
			seen[vtep] = true
		}
		if len(seen) != 2 {
			t.Errorf("64 flows went to %v", seen)
		}
	})
	t.Run("a port without EIP has no route outside", func(t *testing.T) {
		expectDrop(t, f.d, "no_route", func() runResult {
			return run(t, f.d.objs.PortIngress, f.p3, append(ethHdr(gwMAC, vm3MAC, 0x0800), ipPacket(ip4("10.0.1.6"), client, protoUDP, udpSeg(1, 2, "x"), 0)...))
		})
	})
}

func TestEIPWithoutGateway(t *testing.T) {
	f := eipFixture(t)
	expectDrop(t, f.d, "no_gateway", func() runResult {
		return run(t, f.d.objs.PortIngress, f.p1, append(ethHdr(gwMAC, vm1MAC, 0x0800), ipPacket(ip4("10.0.1.5"), client, protoUDP, udpSeg(1, 2, "x"), 0)...))
	})
}

// A gateway: what comes in for an EIP goes unchanged to its port's host;
// what a host sends from its port's EIP goes up the uplink; from another
// host, it is dropped.
func TestGateway(t *testing.T) {
	f := newFixture(t, false)
	up := veth(t, "up0")
	f.state.Gateway = &Gateway{Uplink: up, EIPs: []GatewayEIP{{EIP: eip1, VTEP: peerA, VNI: 5001, MAC: vm1MAC, GwMAC: gwMAC}}}
	if _, err := f.d.Apply(f.state); err != nil {
		t.Fatal(err)
	}
	d := f.d
	t.Run("inbound, tunnelled unchanged to the port's host", func(t *testing.T) {
		ip := ipPacket(client, eip1, protoTCP, tcpSeg(43210, 80, "x"), 0)
		resetSent(d)
		r := run(t, d.objs.GwUplinkIngress, up, append(ethHdr(linkMAC(t, up), mac("02:bb:00:00:00:01"), 0x0800), ip...))
		vtep, vni, ifx, _ := sent(t, d)
		if r.verdict != actRedirect || vtep != peerA || vni != 5001 || ifx != d.vxlan {
			t.Fatalf("verdict %d to %s vni %d ifindex %d", r.verdict, vtep, vni, ifx)
		}
		if !bytes.Equal(r.out[0:6], vm1MAC) || !bytes.Equal(r.out[6:12], gwMAC) || !bytes.Equal(r.out[14:14+len(ip)], ip) {
			t.Errorf("frame %x", r.out[:14+len(ip)])
		}
	})
	t.Run("the gateway's own traffic passes", func(t *testing.T) {
		r := run(t, d.objs.GwUplinkIngress, up, append(ethHdr(linkMAC(t, up), mac("02:bb:00:00:00:01"), 0x0800),
			ipPacket(client, ip4("198.51.100.1"), protoUDP, udpSeg(1, 2, "x"), 0)...))
		if r.verdict != actOK {
			t.Errorf("verdict %d, want TC_ACT_OK", r.verdict)
		}
	})
	t.Run("outbound, from the port's host, up the uplink", func(t *testing.T) {
		resetSent(d)
		r := runTunnel(t, d, peerA, 5001, append(ethHdr(gwMAC, vm1MAC, 0x0800), ipPacket(eip1, client, protoUDP, udpSeg(1, 2, "x"), 0)...))
		if _, _, ifx, _ := sent(t, d); r.verdict != actRedirect || ifx != up {
			t.Errorf("verdict %d to ifindex %d, want the uplink %d", r.verdict, ifx, up)
		}
	})
	t.Run("outbound from another host is refused", func(t *testing.T) {
		expectDrop(t, d, "gw_spoof", func() runResult {
			return runTunnel(t, d, peerB, 5001, append(ethHdr(gwMAC, vm1MAC, 0x0800), ipPacket(eip1, client, protoUDP, udpSeg(1, 2, "x"), 0)...))
		})
	})
	t.Run("outbound not sent to the gateway's VTEP is no tunnel traffic of its", func(t *testing.T) {
		if err := d.objs.TunnelIn.Put(uint32(0), dvrTunnelRec{Vtep: host32(peerA), Vni: 5001, Local: host32(ip4("224.0.0.1"))}); err != nil {
			t.Fatal(err)
		}
		expectDrop(t, d, "unknown_vtep", func() runResult {
			return run(t, d.objs.TunnelIngress, d.vxlan, append(ethHdr(gwMAC, vm1MAC, 0x0800), ipPacket(eip1, client, protoUDP, udpSeg(1, 2, "x"), 0)...))
		})
	})
}

// Gateways answer hosts' probes in the kernel, as hubs do, and a host
// passes over a gateway silent past the threshold.
func TestGatewayProbes(t *testing.T) {
	t.Run("a gateway answers a probe, in a VNI it does not serve", func(t *testing.T) {
		f := newFixture(t, false)
		f.state.Gateway = &Gateway{Uplink: veth(t, "up0")}
		if _, err := f.d.Apply(f.state); err != nil {
			t.Fatal(err)
		}
		resetSent(f.d)
		r := runTunnel(t, f.d, peerA, 7777, LearnMsg{Op: OpProbe, VNI: 7777, VTEP: peerA}.Marshal())
		vtep, vni, _, _ := sent(t, f.d)
		m, err := ParseLearnMsg(r.out)
		if r.verdict != actRedirect || vtep != peerA || vni != 7777 || err != nil || m.Op != OpProbeReply || m.VTEP != local {
			t.Errorf("verdict %d to %s vni %d reply %+v %v", r.verdict, vtep, vni, m, err)
		}
	})
	f := eipFixture(t, gwVTEP, gwVTEP2)
	d := f.d
	if err := d.ProbeHubs([]netip.Addr{gwVTEP, gwVTEP2}); err != nil {
		t.Fatal(err)
	}
	spread := func() map[netip.Addr]int {
		out := map[netip.Addr]int{}
		for port := uint16(1000); port < 1032; port++ {
			resetSent(d)
			run(t, d.objs.PortIngress, f.p1, append(ethHdr(gwMAC, vm1MAC, 0x0800), ipPacket(ip4("10.0.1.5"), client, protoUDP, udpSeg(port, 53, "q"), 0)...))
			vtep, _, _, _ := sent(t, d)
			out[vtep]++
		}
		return out
	}
	t.Run("a reply from a host that is neither hub nor gateway is refused", func(t *testing.T) {
		expectDrop(t, d, "learn_rejected", func() runResult {
			return runTunnel(t, d, peerA, 5001, LearnMsg{Op: OpProbeReply, VNI: 5001, VTEP: peerA}.Marshal())
		})
	})
	t.Run("a gateway silent past the threshold is passed over", func(t *testing.T) {
		time.Sleep(DefaultHubDownAfter + 50*time.Millisecond)
		runTunnel(t, d, gwVTEP2, 5001, LearnMsg{Op: OpProbeReply, VNI: 5001, VTEP: gwVTEP2}.Marshal())
		if s := spread(); s[gwVTEP] != 0 || s[gwVTEP2] != 32 {
			t.Errorf("flows went to %v, want all to %s", s, gwVTEP2)
		}
	})
}

// TestEIPPathCost logs what the EIP paths cost per packet next to the
// paths they sit beside, by the kernel's own timing of single
// BPF_PROG_RUN runs (median of 5,000). A measurement, not a check: it
// runs only when asked, COURIER_MEASURE=1 go test ./dataplane -run
// TestEIPPathCost -v.
func TestEIPPathCost(t *testing.T) {
	if os.Getenv("COURIER_MEASURE") == "" {
		t.Skip("a measurement: set COURIER_MEASURE=1")
	}
	f := eipFixture(t, gwVTEP, gwVTEP2)
	d := f.d
	tcp := func(src, dst netip.Addr, dmac, smac []byte) []byte {
		return append(ethHdr(dmac, smac, 0x0800), ipPacket(src, dst, protoTCP, tcpSeg(40000, 80, "0123456789"), 0)...)
	}
	cases := []struct {
		name, prog string
		ifindex    int
		pkt        []byte
	}{
		{"port: routed to a local port", "port_ingress", f.p1, tcp(ip4("10.0.1.5"), ip4("10.0.2.5"), gwMAC, vm1MAC)},
		{"port: routed to a hub (tunnel)", "port_ingress", f.p1, tcp(ip4("10.0.1.5"), ip4("10.0.2.7"), gwMAC, vm1MAC)},
		{"port: out through the EIP", "port_ingress", f.p1, tcp(ip4("10.0.1.5"), client, gwMAC, vm1MAC)},
		{"tunnel: to a local port", "tunnel_ingress", d.vxlan, tcp(ip4("10.0.1.7"), ip4("10.0.1.5"), vm1MAC, remMAC1)},
		{"tunnel: in through the EIP", "tunnel_ingress", d.vxlan, tcp(client, eip1, vm1MAC, gwMAC)},
	}
	for _, c := range cases {
		src := peerA
		if strings.Contains(c.name, "EIP") {
			src = gwVTEP
		}
		d.objs.TunnelIn.Put(uint32(0), dvrTunnelRec{Vtep: host32(src), Vni: 5001})
		var cost time.Duration
		var verdict uint32
		var err error
		within(func() { cost, verdict, err = d.ProgramCost(c.prog, c.ifindex, c.pkt, 5000) })
		if err != nil || verdict != actRedirect {
			t.Fatalf("%s: verdict %d, %v", c.name, verdict, err)
		}
		t.Logf("%-32s %4d ns", c.name, cost.Nanoseconds())
	}
}
