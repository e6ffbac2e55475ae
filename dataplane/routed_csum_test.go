package dataplane

import (
	"encoding/binary"
	"testing"
)

// TestRoutedChecksumEveryTTL: routed_hop updates the IPv4 checksum in
// place, incrementally (RFC 1624), since #21 dropped the helper call.
// Every TTL a routed packet can have, with identifications that take
// the sum through its carries and its 0x0000/0xffff ends, must leave a
// valid header.
func TestRoutedChecksumEveryTTL(t *testing.T) {
	f := newFixture(t, false)
	f.learn(t, ip4("10.0.2.7"), peerB, 5002, remMAC2)
	for _, id := range []uint16{0, 1, 0x7fff, 0xfffe, 0xffff} {
		for ttl := 2; ttl <= 255; ttl++ {
			pkt := udpPkt(gwMAC, vm1MAC, ip4("10.0.1.5"), ip4("10.0.2.7"), uint8(ttl), 20)
			ip := pkt[14:34]
			binary.BigEndian.PutUint16(ip[4:], id)
			binary.BigEndian.PutUint16(ip[10:], 0)
			binary.BigEndian.PutUint16(ip[10:], csum(ip))
			r := run(t, f.d.objs.PortIngress, f.p1, pkt)
			out := r.out[14:34]
			if r.verdict != actRedirect || int(out[8]) != ttl-1 || csum(out) != 0 {
				t.Fatalf("id %#x ttl %d: verdict %d, ttl %d, checksum %#04x over the header (want 0)", id, ttl, r.verdict, out[8], csum(out))
			}
		}
	}
}
