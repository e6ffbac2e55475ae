package dataplane

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/courier-sdn/courier/pipeline"
)

// What a VM is told when its packet goes no further (#13): ICMP errors
// from its vxnet's gateway, built in the kernel, checked byte by byte.

// vmFacingFixture turns on what VMs are told: ICMP errors, DHCP, MSS
// clamping, the gateway's ping answers.
func vmFacingFixture(t *testing.T, cfg Config) *fixture {
	f := newFixtureWith(t, false, cfg)
	for i := range f.state.Vxnets {
		f.state.Vxnets[i].Flags |= vmFacing
	}
	if _, err := f.d.Apply(f.state); err != nil {
		t.Fatal(err)
	}
	return f
}

// icmpError checks an ICMP error sent back to vm1 and returns its type,
// code, the 4 bytes after the checksum, and what it quotes.
func icmpError(t *testing.T, out []byte) (typ, code byte, rest uint32, quoted []byte) {
	t.Helper()
	if !bytes.Equal(out[0:6], vm1MAC) || !bytes.Equal(out[6:12], gwMAC) || binary.BigEndian.Uint16(out[12:]) != 0x0800 {
		t.Fatalf("Ethernet %x", out[:14])
	}
	ip := out[14:34]
	tot := int(binary.BigEndian.Uint16(ip[2:]))
	if ip[0] != 0x45 || ip[9] != 1 || ip[8] != 64 || csum(ip) != 0 {
		t.Errorf("IPv4 header %x (checksum %#x)", ip, csum(ip))
	}
	if src, dst := netip.AddrFrom4([4]byte(ip[12:16])), netip.AddrFrom4([4]byte(ip[16:20])); src != ip4("10.0.1.1") || dst != ip4("10.0.1.5") {
		t.Errorf("from %s to %s, want the gateway 10.0.1.1 to the VM 10.0.1.5", src, dst)
	}
	icmp := out[34 : 14+tot]
	if csum(icmp) != 0 {
		t.Errorf("ICMP checksum wrong over %d bytes", len(icmp))
	}
	return icmp[0], icmp[1], binary.BigEndian.Uint32(icmp[4:8]), icmp[8:]
}

func TestICMPErrors(t *testing.T) {
	f := vmFacingFixture(t, Config{ICMPBudget: Budget{Rate: 1, Burst: 3}})
	d := f.d
	prog := d.objs.PortIngress
	reply := func(pkt []byte) runResult {
		t.Helper()
		resetSent(d)
		r := run(t, prog, f.p1, pkt)
		if _, _, ifx, peer := sent(t, d); r.verdict != actRedirect || ifx != f.p1 || !peer {
			t.Fatalf("verdict %d to %d (peer %v): want the error back to the VM", r.verdict, ifx, peer)
		}
		return r
	}
	t.Run("time exceeded, quoting the header as received and 8 bytes", func(t *testing.T) {
		pkt := udpPkt(gwMAC, vm1MAC, ip4("10.0.1.5"), ip4("10.0.2.7"), 1, 100)
		before := drops(t, d)["ttl_exceeded"]
		r := reply(pkt)
		typ, code, _, q := icmpError(t, r.out)
		if typ != 11 || code != 0 {
			t.Errorf("type %d code %d, want 11/0", typ, code)
		}
		if !bytes.Equal(q[:28], pkt[14:42]) || len(q) < 28 {
			t.Errorf("quoted %x, want %x", q, pkt[14:42])
		}
		if tot := binary.BigEndian.Uint16(r.out[16:]); tot != 20+8+28 {
			t.Errorf("total length %d, want 56", tot)
		}
		if n := drops(t, d)["ttl_exceeded"] - before; n != 1 {
			t.Errorf("ttl_exceeded counted %d times", n)
		}
	})
	t.Run("destination unreachable when the VPC has no route", func(t *testing.T) {
		r := reply(udpPkt(gwMAC, vm1MAC, ip4("10.0.1.5"), ip4("8.8.8.8"), 64, 10))
		if typ, code, _, _ := icmpError(t, r.out); typ != 3 || code != 0 {
			t.Errorf("type %d code %d, want 3/0", typ, code)
		}
	})
	t.Run("fragmentation needed, with the port's MTU", func(t *testing.T) {
		big := udpPkt(vm3MAC, vm1MAC, ip4("10.0.1.5"), ip4("10.0.1.6"), 64, 1472)
		big[14+6] = 0x40 // DF
		binary.BigEndian.PutUint16(big[14+10:], 0)
		binary.BigEndian.PutUint16(big[14+10:], csum(big[14:34]))
		r := reply(big)
		typ, code, rest, q := icmpError(t, r.out)
		if typ != 3 || code != 4 || rest&0xffff != 1450 {
			t.Errorf("type %d code %d next-hop MTU %d, want 3/4 1450", typ, code, rest&0xffff)
		}
		if binary.BigEndian.Uint16(q[2:]) != 1500 {
			t.Errorf("quoted total length %d, want the offending 1500", binary.BigEndian.Uint16(q[2:]))
		}
	})
	t.Run("no error about an ICMP error", func(t *testing.T) {
		pkt := udpPkt(gwMAC, vm1MAC, ip4("10.0.1.5"), ip4("10.0.2.7"), 1, 10)
		pkt[14+9] = 1 // ICMP
		pkt[34] = 3   // destination unreachable
		binary.BigEndian.PutUint16(pkt[14+10:], 0)
		binary.BigEndian.PutUint16(pkt[14+10:], csum(pkt[14:34]))
		expectDrop(t, d, "ttl_exceeded", func() runResult { return run(t, prog, f.p1, pkt) })
	})
	t.Run("at most the port's budget", func(t *testing.T) {
		// The budget of 3 at once is spent above: the next is dropped.
		before, _ := d.Counters()
		expectDrop(t, d, "ttl_exceeded", func() runResult {
			return run(t, prog, f.p1, udpPkt(gwMAC, vm1MAC, ip4("10.0.1.5"), ip4("10.0.2.7"), 1, 10))
		})
		after, _ := d.Counters()
		if after["icmp_limited"]-before["icmp_limited"] != 1 {
			t.Errorf("icmp_limited %d -> %d", before["icmp_limited"], after["icmp_limited"])
		}
	})
}

// tcpSYN is a TCP SYN with an MSS option first, checksums valid.
func tcpSYN(dst, src net.HardwareAddr, sip, dip netip.Addr, mss uint16) []byte {
	b := ethHdr(dst, src, 0x0800)
	ip := make([]byte, 20)
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], 20+24)
	ip[8], ip[9] = 64, 6
	s, d := sip.As4(), dip.As4()
	copy(ip[12:16], s[:])
	copy(ip[16:20], d[:])
	binary.BigEndian.PutUint16(ip[10:], csum(ip))
	tcp := make([]byte, 24)
	binary.BigEndian.PutUint16(tcp[0:], 40000)
	binary.BigEndian.PutUint16(tcp[2:], 80)
	tcp[12] = 6 << 4
	tcp[13] = 0x02
	binary.BigEndian.PutUint16(tcp[14:], 64240)
	tcp[20], tcp[21] = 2, 4
	binary.BigEndian.PutUint16(tcp[22:], mss)
	binary.BigEndian.PutUint16(tcp[16:], tcpCsum(ip, tcp))
	return append(append(b, ip...), tcp...)
}

func tcpCsum(ip, tcp []byte) uint16 {
	pseudo := append(append(append([]byte{}, ip[12:20]...), 0, 6), byte(len(tcp)>>8), byte(len(tcp)))
	return csum(append(pseudo, tcp...))
}

func TestMSSClampAndPingParsing(t *testing.T) {
	f := vmFacingFixture(t, Config{})
	d := f.d
	prog := d.objs.PortIngress
	t.Run("a SYN's MSS is lowered to what the overlay carries", func(t *testing.T) {
		r := run(t, prog, f.p1, tcpSYN(vm3MAC, vm1MAC, ip4("10.0.1.5"), ip4("10.0.1.6"), 1460))
		out := r.out[:14+44]
		if r.verdict != actRedirect || binary.BigEndian.Uint16(out[34+22:]) != 1410 {
			t.Errorf("verdict %d MSS %d, want 1410", r.verdict, binary.BigEndian.Uint16(out[34+22:]))
		}
		if tcpCsum(out[14:34], out[34:]) != 0 {
			t.Error("TCP checksum wrong after the clamp")
		}
		c, _ := d.Counters()
		if c["mss_clamped"] != 1 {
			t.Errorf("mss_clamped %d", c["mss_clamped"])
		}
	})
	t.Run("a small MSS is left alone", func(t *testing.T) {
		r := run(t, prog, f.p1, tcpSYN(vm3MAC, vm1MAC, ip4("10.0.1.5"), ip4("10.0.1.6"), 1200))
		if binary.BigEndian.Uint16(r.out[14+20+22:]) != 1200 {
			t.Error("changed")
		}
	})
	echo := func(frag uint16) []byte {
		p := udpPkt(gwMAC, vm1MAC, ip4("10.0.1.5"), ip4("10.0.1.1"), 64, 20)
		p[14+9] = 1
		p[34] = 8
		binary.BigEndian.PutUint16(p[14+6:], frag)
		binary.BigEndian.PutUint16(p[14+10:], 0)
		binary.BigEndian.PutUint16(p[14+10:], csum(p[14:34]))
		return p
	}
	t.Run("the gateway answers a whole ping", func(t *testing.T) {
		r := run(t, prog, f.p1, echo(0x4000))
		if r.verdict != actRedirect || r.out[34] != 0 {
			t.Errorf("verdict %d ICMP type %d, want an echo reply", r.verdict, r.out[34])
		}
	})
	for name, frag := range map[string]uint16{"a first fragment": 0x2000, "a later fragment": 0x0010} {
		t.Run("the gateway does not answer "+name+" as a ping", func(t *testing.T) {
			r := run(t, prog, f.p1, echo(frag))
			if r.verdict == actRedirect && r.out[34] == 0 && bytes.Equal(r.out[0:6], vm1MAC) {
				t.Error("answered as if whole")
			}
		})
	}
	t.Run("an IHL past the frame is malformed", func(t *testing.T) {
		p := udpPkt(vm3MAC, vm1MAC, ip4("10.0.1.5"), ip4("10.0.1.6"), 64, 0)[:34]
		p[14] = 0x4f // 60-byte header in a 20-byte one
		expectDrop(t, d, "malformed", func() runResult { return run(t, prog, f.p1, p) })
	})
	_ = pipeline.Stages
}
