package dataplane

import (
	"testing"
)

// Hairpin (#15 item 5): a VM reaching another VM's EIP of its VPC is
// translated on its host and goes as VM to VM, never to a gateway. A
// sender without an EIP: hairpin_private_test.go.

var (
	eip3      = ip4("203.0.113.20") // vm3's, local
	eipRemote = ip4("203.0.113.30") // 10.0.1.7's, on peerA
)

// hairpinFixture: eipFixture, vm3 with EIP 203.0.113.20, and the VPC's
// EIPs: vm1's, vm3's and 203.0.113.30 of 10.0.1.7 on peerA (learned).
func hairpinFixture(t *testing.T) *fixture {
	f := eipFixture(t, gwVTEP)
	f.state.EIPs = append(f.state.EIPs, EIP{Ifindex: f.p3, VPC: 1, EIP: eip3, Addr: ip4("10.0.1.6"), Network: 1})
	f.state.VPCEIPs = []VPCEIP{{VPC: 1, EIP: eip1, Addr: ip4("10.0.1.5")}, {VPC: 1, EIP: eip3, Addr: ip4("10.0.1.6")},
		{VPC: 1, EIP: eipRemote, Addr: ip4("10.0.1.7")}}
	if _, err := f.d.Apply(f.state); err != nil {
		t.Fatal(err)
	}
	f.learn(t, ip4("10.0.1.7"), peerA, 5001, remMAC1)
	return f
}

func TestHairpin(t *testing.T) {
	f := hairpinFixture(t)
	vm1, vm3 := ip4("10.0.1.5"), ip4("10.0.1.6")
	t.Run("to a local VM's EIP: delivered from the sender's EIP, to the VM's address", func(t *testing.T) {
		resetSent(f.d)
		r := run(t, f.d.objs.PortIngress, f.p1, append(ethHdr(gwMAC, vm1MAC, 0x0800), ipPacket(vm1, eip3, protoTCP, tcpSeg(40000, 8080, "hi"), 0)...))
		if _, _, ifx, peer := sent(t, f.d); r.verdict != actRedirect || ifx != f.p3 || !peer {
			t.Fatalf("verdict %d to %d (peer %v), want vm3's port %d", r.verdict, ifx, peer, f.p3)
		}
		p := parse(t, r.out)
		if p.src != eip1 || p.dst != vm3 || p.ttl != 63 || !p.ipOK || !l4ok(eip1, vm3, protoTCP, p.l4) {
			t.Errorf("%s -> %s ttl %d, IPv4 ok %v, TCP ok %v", p.src, p.dst, p.ttl, p.ipOK, l4ok(eip1, vm3, protoTCP, p.l4))
		}
	})
	t.Run("the reply, to the caller's EIP, reaches it from the EIP it called", func(t *testing.T) {
		resetSent(f.d)
		r := run(t, f.d.objs.PortIngress, f.p3, append(ethHdr(gwMAC, vm3MAC, 0x0800), ipPacket(vm3, eip1, protoTCP, tcpSeg(8080, 40000, "ho"), 0)...))
		if _, _, ifx, _ := sent(t, f.d); r.verdict != actRedirect || ifx != f.p1 {
			t.Fatalf("verdict %d to %d, want vm1's port %d", r.verdict, ifx, f.p1)
		}
		if p := parse(t, r.out); p.src != eip3 || p.dst != vm1 || !l4ok(eip3, vm1, protoTCP, p.l4) {
			t.Errorf("%s -> %s, TCP ok %v", p.src, p.dst, l4ok(eip3, vm1, protoTCP, p.l4))
		}
	})
	t.Run("to a remote VM's EIP: straight to its host, not to a gateway, with no identity", func(t *testing.T) {
		resetSent(f.d)
		r := run(t, f.d.objs.PortIngress, f.p1, append(ethHdr(gwMAC, vm1MAC, 0x0800), ipPacket(vm1, eipRemote, protoUDP, udpSeg(5000, 53, "q"), 0)...))
		vtep, vni, _, _ := sent(t, f.d)
		if r.verdict != actRedirect || vtep != peerA || vni != 5001 {
			t.Fatalf("verdict %d to %s vni %d, want 10.0.1.7's host %s", r.verdict, vtep, vni, peerA)
		}
		var tr dvrTunnelRec
		f.d.objs.TunnelOut.Lookup(uint32(0), &tr)
		p := parse(t, r.out)
		if p.src != eip1 || p.dst != ip4("10.0.1.7") || !p.ipOK || !l4ok(eip1, p.dst, protoUDP, p.l4) || tr.Gbp != 0 {
			t.Errorf("%s -> %s, IPv4 ok %v, UDP ok %v, GBP %#x (want 0)", p.src, p.dst, p.ipOK, l4ok(eip1, p.dst, protoUDP, p.l4), tr.Gbp)
		}
	})
	t.Run("an EIP of no port of the VPC goes to a gateway as before", func(t *testing.T) {
		resetSent(f.d)
		r := run(t, f.d.objs.PortIngress, f.p1, append(ethHdr(gwMAC, vm1MAC, 0x0800), ipPacket(vm1, ip4("203.0.113.99"), protoUDP, udpSeg(1, 2, "x"), 0)...))
		if vtep, _, _, _ := sent(t, f.d); r.verdict != actRedirect || vtep != gwVTEP {
			t.Errorf("verdict %d to %s, want the gateway %s", r.verdict, vtep, gwVTEP)
		}
	})
}

// A list of EIPs under the key of the last successful Apply is taken as
// unchanged (hostd names its lists; thousands of EIPs are not compiled
// and compared on every change of something else); a new key, or none,
// writes the list.
func TestVPCEIPsKeySkipsAnUnchangedList(t *testing.T) {
	f := hairpinFixture(t)
	has := func(e VPCEIP) bool {
		var v uint32
		return f.d.objs.VpcEipsV1.Lookup(dvrVpcEipKey{Vpc: e.VPC, Eip: be32(e.EIP)}, &v) == nil
	}
	extra := VPCEIP{VPC: 1, EIP: ip4("203.0.113.40"), Addr: ip4("10.0.1.8")}
	apply := func(key string, eips []VPCEIP) {
		t.Helper()
		f.state.VPCEIPs, f.state.VPCEIPsKey = eips, key
		if _, err := f.d.Apply(f.state); err != nil {
			t.Fatal(err)
		}
	}
	base := f.state.VPCEIPs
	apply("1:1", base)
	// The same key with another list breaks the contract: which shows
	// that the list was not read.
	apply("1:1", append(base[:len(base):len(base)], extra))
	if has(extra) {
		t.Fatalf("a list under an unchanged key was written")
	}
	apply("1:2", append(base[:len(base):len(base)], extra))
	if !has(extra) {
		t.Fatalf("a list under a new key was not written")
	}
	apply("", base)
	if has(extra) {
		t.Fatalf("a list without a key was not compared")
	}
}
