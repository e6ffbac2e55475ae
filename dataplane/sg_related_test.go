package dataplane

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
)

// icmpErr is an ICMP error of type and code from sip to dip quoting the
// first 28 bytes (IPv4 header and 8 more) of about, an Ethernet frame.
func icmpErr(dst, src net.HardwareAddr, sip, dip netip.Addr, typ, code byte, about []byte) []byte {
	icmp := append([]byte{typ, code, 0, 0, 0, 0, 0, 0}, about[14:14+28]...)
	ip := make([]byte, 20)
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(icmp)))
	ip[8] = 64
	ip[9] = 1
	s, d := sip.As4(), dip.As4()
	copy(ip[12:16], s[:])
	copy(ip[16:20], d[:])
	binary.BigEndian.PutUint16(ip[10:], csum(ip))
	return append(append(ethHdr(dst, src, 0x0800), ip...), icmp...)
}

// An ICMP error about a connection tracked at a port passes its groups
// without a rule of its own, both ways (as the kernel's conntrack calls
// it related); one about a connection never tracked there needs a rule
// like any ICMP packet.
func TestICMPErrorsAboutTrackedConnections(t *testing.T) {
	f := sgFixture(t)
	d := f.d
	closePickUp(t, d)
	remote := ip4("10.0.1.7")
	f.learn(t, remote, peerA, 5001, remMAC1)
	prog := d.objs.PortIngress
	vm1, vm2 := ip4("10.0.1.5"), ip4("10.0.2.5")
	before := counter(t, d, "ct_related")

	// vm1 (web, egress anything) sends UDP to a remote VM, whose stack
	// answers port unreachable; web takes ICMP only from db, and the
	// answer carries no identity.
	probe := l4Pkt(remMAC1, vm1MAC, vm1, remote, 17, 5353, 9999)
	if r := run(t, prog, f.p1, probe); r.verdict != actRedirect {
		t.Fatalf("udp out: verdict %d, drops %v", r.verdict, drops(t, d))
	}
	resetSent(d)
	unreach := icmpErr(vm1MAC, remMAC1, remote, vm1, 3, 3, probe)
	if r := runTunnelGBP(t, d, peerA, 5001, 0, unreach); r.verdict != actRedirect {
		t.Errorf("port unreachable about a tracked udp flow: verdict %d, drops %v", r.verdict, drops(t, d))
	}
	never := l4Pkt(remMAC1, vm1MAC, vm1, remote, 17, 5353, 9998)
	expectDrop(t, d, "sg_ingress", func() runResult {
		return runTunnelGBP(t, d, peerA, 5001, 0, icmpErr(vm1MAC, remMAC1, remote, vm1, 3, 3, never))
	})

	// vm2 (ops: egress tcp 443 to web only) holds a connection to vm1's
	// 443; an ICMP error vm2 sends about it passes vm2's egress and
	// vm1's ingress, which neither rule set would allow alone.
	open := l4Pkt(gwMAC, vm2MAC, vm2, vm1, 6, 40100, 443)
	resetSent(d)
	if r := run(t, prog, f.p2, open); r.verdict != actRedirect {
		t.Fatalf("tcp 443 from ops to web: verdict %d, drops %v", r.verdict, drops(t, d))
	}
	reply := l4Pkt(vm2MAC, vm1MAC, vm1, vm2, 6, 443, 40100)
	resetSent(d)
	r := run(t, prog, f.p2, icmpErr(gwMAC, vm2MAC, vm2, vm1, 3, 3, reply))
	if _, _, ifx, _ := sent(t, d); r.verdict != actRedirect || ifx != f.p1 {
		t.Errorf("an error about the connection from ops to web: verdict %d to ifindex %d; drops %v", r.verdict, ifx, drops(t, d))
	}
	stranger := l4Pkt(vm2MAC, vm1MAC, vm1, vm2, 6, 443, 40101)
	expectDrop(t, d, "sg_egress", func() runResult { return run(t, prog, f.p2, icmpErr(gwMAC, vm2MAC, vm2, vm1, 3, 3, stranger)) })

	// one at vm1's ingress, two for the local error (vm2's egress,
	// vm1's ingress)
	if n := counter(t, d, "ct_related") - before; n != 3 {
		t.Errorf("ct_related counted %d, want 3", n)
	}
}
