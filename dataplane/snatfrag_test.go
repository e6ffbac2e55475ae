package dataplane

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
)

// Fragments of datagrams translated by SNAT (bpf/frag.h): the later
// fragments, which carry no ports, follow their first fragment, on the
// port's host both ways and on a gateway both ways.

// fragments splits a UDP datagram from src to dst (its checksum computed
// whole) into a first fragment of 24 bytes of L4 and a later one with
// the rest, both with IPv4 identification id.
func fragments(src, dst netip.Addr, sport, dport uint16, id uint16) (first, later, datagram []byte) {
	datagram = udpSeg(sport, dport, "a datagram that needs two fragments")
	binary.BigEndian.PutUint16(datagram[6:], l4sum(src, dst, protoUDP, datagram))
	first = withID(ipPacket(src, dst, protoUDP, datagram[:24], 0x2000), id)
	later = withID(ipPacket(src, dst, protoUDP, datagram[24:], 3), id)
	return first, later, datagram
}

// withID sets an IPv4 packet's identification, and its checksum again.
func withID(ip []byte, id uint16) []byte {
	binary.BigEndian.PutUint16(ip[4:], id)
	binary.BigEndian.PutUint16(ip[10:], 0)
	binary.BigEndian.PutUint16(ip[10:], csum(ip[:20]))
	return ip
}

func TestSNATFragments(t *testing.T) {
	f := snatFixture(t, 1)
	first, later, datagram := fragments(vm3Addr, server, 5353, 53, 0x4321)
	a := snatOut(t, f, first)
	eport := port16(a.l4, 0)
	b := snatOut(t, f, later)
	whole := append(bytes.Clone(a.l4), b.l4...)
	if a.src != snatAddr || b.src != snatAddr || !a.ipOK || !b.ipOK || !l4ok(snatAddr, server, protoUDP, whole) {
		t.Fatalf("fragments from %s and %s, IPv4 ok %v %v, UDP of the whole datagram ok %v", a.src, b.src, a.ipOK, b.ipOK,
			l4ok(snatAddr, server, protoUDP, whole))
	}
	if !bytes.Equal(b.l4, datagram[24:]) {
		t.Errorf("the later fragment's payload changed")
	}

	// The answer, in two fragments, goes back to the port.
	rfirst, rlater, _ := fragments(server, snatAddr, 53, eport, 0x7777)
	c := snatIn(t, f, rfirst)
	d := snatIn(t, f, rlater)
	whole = append(bytes.Clone(c.l4), d.l4...)
	if c.dst != vm3Addr || d.dst != vm3Addr || port16(c.l4, 2) != 5353 || !d.ipOK || !l4ok(server, vm3Addr, protoUDP, whole) {
		t.Errorf("answer's fragments to %s:%d and %s, IPv4 ok %v, UDP ok %v", c.dst, port16(c.l4, 2), d.dst, d.ipOK,
			l4ok(server, vm3Addr, protoUDP, whole))
	}

	send := func(ip []byte) func() runResult {
		return func() runResult {
			return run(t, f.d.objs.PortIngress, f.p3, append(ethHdr(gwMAC, vm3MAC, 0x0800), ip...))
		}
	}
	t.Run("a later fragment of another datagram is dropped", func(t *testing.T) {
		_, other, _ := fragments(vm3Addr, server, 5353, 53, 0x4322)
		expectDrop(t, f.d, "snat_untracked", send(other))
	})
}

// A gateway tunnels a SNAT datagram's later fragments where it tunnelled
// the first, both ways, and takes a host's later fragment only from the
// host its first came from.
func TestGatewaySNATFragments(t *testing.T) {
	d, up, inbound := gatewaySNATFixture(t)
	first, later, _ := fragments(server, snatAddr, 53, 1500, 0x1111)
	for i, ip := range [][]byte{first, later} {
		if r, vtep := inbound(ip); r.verdict != actRedirect || vtep != peerA {
			t.Errorf("inbound fragment %d: verdict %d to %s, want the block's host %s", i, r.verdict, vtep, peerA)
		}
	}
	_, stray, _ := fragments(server, snatAddr, 53, 1500, 0x1112)
	expectDrop(t, d, "gw_no_block", func() runResult { r, _ := inbound(stray); return r })

	outbound := func(from netip.Addr, ip []byte) runResult {
		resetSent(d)
		return runTunnel(t, d, from, 5001, append(ethHdr(gwMAC, vm3MAC, 0x0800), ip...))
	}
	first, later, _ = fragments(snatAddr, server, 1500, 53, 0x2222)
	for i, ip := range [][]byte{first, later} {
		if r := outbound(peerA, ip); r.verdict != actRedirect {
			t.Errorf("outbound fragment %d from the block's host: verdict %d, want the uplink", i, r.verdict)
		} else if _, _, ifx, _ := sent(t, d); ifx != up {
			t.Errorf("outbound fragment %d went to ifindex %d, want the uplink %d", i, ifx, up)
		}
	}
	expectDrop(t, d, "gw_spoof", func() runResult { return outbound(peerB, later) })
}
