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

// A gateway between an upstream of 1,500 bytes and an overlay of 1,450
// (bpf/mtu.h): a packet for a VM too long for the overlay is cut into
// fragments if it may be, and answered with fragmentation needed if DF is
// set; either way nothing longer than the overlay's MTU is tunnelled.

const (
	overlayMTU = 1450
	fragMark   = 0xc0de0f4a // FRAG_REST_MARK: a datagram's rest, come around
	ipDF       = 0x4000
	ipMF       = 0x2000
)

var gwAddr = ip4("198.51.100.2")

// gatewayMTUFixture is a gateway whose overlay MTU is 1,450, serving eip1
// (a port on peerA) and a SNAT block (203.0.113.50:1024-2047, on peerA).
// in runs what the uplink receives with mark.
func gatewayMTUFixture(t *testing.T, cfg Config) (d *Datapath, up int, in func(ip []byte, mark uint32) runResult) {
	f := newFixtureWith(t, false, cfg)
	up = veth(t, "up0")
	f.state.Gateway = &Gateway{Uplink: up, MTU: overlayMTU, Addr: gwAddr,
		EIPs: []GatewayEIP{{EIP: eip1, VTEP: peerA, VNI: 5001, MAC: vm1MAC, GwMAC: gwMAC}},
		SNAT: []GatewaySNAT{{Addr: snatAddr, Lo: 1024, BlockSize: 1024, VTEP: peerA, VNI: 5001, MAC: vm3MAC, GwMAC: gwMAC}}}
	if _, err := f.d.Apply(f.state); err != nil {
		t.Fatal(err)
	}
	in = func(ip []byte, mark uint32) runResult {
		resetSent(f.d)
		frame := append(ethHdr(linkMAC(t, up), upstreamMAC, 0x0800), ip...)
		return runCtx(t, f.d.objs.GwUplinkIngress, skbCtx{Ifindex: uint32(up), Mark: mark}, frame)
	}
	return f.d, up, in
}

var upstreamMAC = mac("02:bb:00:00:00:01")

// bigUDP is a UDP datagram of tot bytes (IPv4 header included) from src
// to dst with fragment field frag.
func bigUDP(src, dst netip.Addr, dport uint16, tot int, frag uint16) []byte {
	return ipPacket(src, dst, protoUDP, udpSeg(40000, dport, strings.Repeat("x", tot-28)), frag)
}

// fragOf reads the tunnelled frame's IPv4 length and fragment field, and
// whether its header checksum holds.
func fragOf(out []byte) (tot int, frag uint16, ok bool) {
	ip := out[14:34]
	return int(binary.BigEndian.Uint16(ip[2:])), binary.BigEndian.Uint16(ip[6:]), csum(ip) == 0
}

func TestGatewayFragmentsWhatTheOverlayCannotCarry(t *testing.T) {
	d, _, in := gatewayMTUFixture(t, Config{})
	for _, c := range []struct {
		name string
		dst  netip.Addr
		port uint16
	}{{"an EIP", eip1, 53}, {"a SNAT block", snatAddr, 1500}} {
		t.Run(c.name, func(t *testing.T) {
			ip := bigUDP(client, c.dst, c.port, 1500, 0)
			before := counter(t, d, "fragmented")
			r := in(ip, 0)
			vtep, _, _, _ := sent(t, d)
			tot, frag, ok := fragOf(r.out)
			if r.verdict != actRedirect || vtep != peerA || tot != 1444 || frag != ipMF || !ok ||
				!bytes.Equal(r.out[14+20:14+1444], ip[20:1444]) {
				t.Errorf("first fragment: verdict %d to %s, length %d, fragment field %#x, checksum ok %v", r.verdict, vtep, tot, frag, ok)
			}
			if n := counter(t, d, "fragmented") - before; n != 1 {
				t.Errorf("fragmented moved by %d, want 1", n)
			}
			// The rest, as it comes around: the second fragment, found
			// by the first's entry for a SNAT block.
			r = in(ip, fragMark)
			vtep, _, _, _ = sent(t, d)
			tot, frag, ok = fragOf(r.out)
			if r.verdict != actRedirect || vtep != peerA || tot != 20+56 || frag != 1424/8 || !ok ||
				!bytes.Equal(r.out[14+20:14+76], ip[1444:]) {
				t.Errorf("second fragment: verdict %d to %s, length %d, fragment field %#x, checksum ok %v", r.verdict, vtep, tot, frag, ok)
			}
		})
	}
	t.Run("a fragment from upstream keeps its offset and its more-fragments bit", func(t *testing.T) {
		ip := bigUDP(client, eip1, 53, 1500, ipMF|100)
		r := in(ip, 0)
		if tot, frag, ok := fragOf(r.out); tot != 1444 || frag != ipMF|100 || !ok {
			t.Errorf("front: length %d, fragment field %#x, checksum ok %v", tot, frag, ok)
		}
		r = in(ip, fragMark)
		if tot, frag, ok := fragOf(r.out); tot != 76 || frag != ipMF|(100+178) || !ok {
			t.Errorf("rest: length %d, fragment field %#x, checksum ok %v", tot, frag, ok)
		}
	})
	t.Run("a rest still too long is cut again", func(t *testing.T) {
		ip := bigUDP(client, eip1, 53, 3000, 0) // BPF_PROG_RUN takes up to a page
		r := in(ip, fragMark)
		if tot, frag, ok := fragOf(r.out); r.verdict != actRedirect || tot != 1444 || frag != ipMF|178 || !ok {
			t.Errorf("second of three fragments: verdict %d, length %d, fragment field %#x, checksum ok %v", r.verdict, tot, frag, ok)
		}
	})
	t.Run("what fits passes whole", func(t *testing.T) {
		ip := bigUDP(client, eip1, 53, 1450, ipDF)
		if r := in(ip, 0); r.verdict != actRedirect || !bytes.Equal(r.out[14:14+1450], ip) {
			t.Errorf("a 1,450-byte packet: verdict %d", r.verdict)
		}
	})
	t.Run("a length the frame does not hold: the rest is dropped", func(t *testing.T) {
		ip := bigUDP(client, eip1, 53, 1500, 0)
		binary.BigEndian.PutUint16(ip[2:], 3000) // says 3,000, carries 1,500
		binary.BigEndian.PutUint16(ip[10:], 0)
		binary.BigEndian.PutUint16(ip[10:], csum(ip[:20]))
		expectDrop(t, d, "mtu_exceeded", func() runResult { return in(ip, fragMark) })
		binary.BigEndian.PutUint16(ip[2:], 1000) // says 1,000: nothing to cut
		binary.BigEndian.PutUint16(ip[10:], 0)
		binary.BigEndian.PutUint16(ip[10:], csum(ip[:20]))
		expectDrop(t, d, "mtu_exceeded", func() runResult { return in(ip, 0) })
	})
	t.Run("IP options are not cut", func(t *testing.T) {
		ip := withOptions(bigUDP(client, eip1, 53, 1496, 0))
		expectDrop(t, d, "mtu_exceeded", func() runResult { return in(ip, 0) })
	})
}

// withOptions inserts a 4-byte IPv4 option (end of list) into ip.
func withOptions(ip []byte) []byte {
	out := append(append(bytes.Clone(ip[:20]), 0, 0, 0, 0), ip[20:]...)
	out[0] = 0x46
	binary.BigEndian.PutUint16(out[2:], uint16(len(out)))
	binary.BigEndian.PutUint16(out[10:], 0)
	binary.BigEndian.PutUint16(out[10:], csum(out[:24]))
	return out
}

func TestGatewayAnswersDFWithFragmentationNeeded(t *testing.T) {
	d, up, in := gatewayMTUFixture(t, Config{ICMPBudget: Budget{Rate: 1, Burst: 3}})
	for _, dst := range []netip.Addr{eip1, snatAddr} {
		ip := bigUDP(client, dst, 1500, 1500, ipDF)
		icmpBefore, dropsBefore := counter(t, d, "icmp_error"), drops(t, d)["mtu_exceeded"]
		r := in(ip, 0)
		if n := drops(t, d)["mtu_exceeded"] - dropsBefore; n != 1 {
			t.Errorf("to %s: mtu_exceeded moved by %d, want 1 (the packet itself)", dst, n)
		}
		_, _, ifx, _ := sent(t, d)
		out := r.out[:14+56]
		oip, icmp := out[14:34], out[34:]
		if r.verdict != actRedirect || ifx != up {
			t.Fatalf("to %s: verdict %d to ifindex %d, want back out of the uplink %d", dst, r.verdict, ifx, up)
		}
		if !bytes.Equal(out[0:6], upstreamMAC) || !bytes.Equal(out[6:12], linkMAC(t, up)) || csum(oip) != 0 ||
			netip.AddrFrom4([4]byte(oip[12:16])) != gwAddr || netip.AddrFrom4([4]byte(oip[16:20])) != client {
			t.Errorf("to %s: frame %x", dst, out[:34])
		}
		if icmp[0] != 3 || icmp[1] != 4 || binary.BigEndian.Uint16(icmp[6:]) != overlayMTU || csum(icmp) != 0 ||
			!bytes.Equal(icmp[8:36], ip[:28]) {
			t.Errorf("to %s: ICMP %x, want fragmentation needed, MTU %d, quoting the header and 8 bytes", dst, icmp, overlayMTU)
		}
		if n := counter(t, d, "icmp_error") - icmpBefore; n != 1 {
			t.Errorf("icmp_error moved by %d", n)
		}
	}
	t.Run("no error about an ICMP error", func(t *testing.T) {
		quoted := ipPacket(eip1, client, protoUDP, udpSeg(1, 2, "x"), 0)
		body := append([]byte{3, 3, 0, 0, 0, 0, 0, 0}, quoted...)
		body = append(body, make([]byte, 1500-20-len(body))...)
		expectDrop(t, d, "mtu_exceeded", func() runResult { return in(ipPacket(client, eip1, protoICM, body, ipDF), 0) })
	})
	t.Run("at most the uplink's ICMP budget", func(t *testing.T) {
		// A budget of 3 at once: two spent above, one left.
		ip := bigUDP(client, eip1, 53, 1500, ipDF)
		if r := in(ip, 0); r.verdict != actRedirect {
			t.Fatalf("the third error: verdict %d", r.verdict)
		}
		before := counter(t, d, "icmp_limited")
		expectDrop(t, d, "mtu_exceeded", func() runResult { return in(ip, 0) })
		if n := counter(t, d, "icmp_limited") - before; n != 1 {
			t.Errorf("icmp_limited moved by %d, want 1", n)
		}
	})
}

// A host serving a physical EIP does the same for what the physical
// network sends it (an MTU of 1,500) for the VM (1,450), the error coming
// from the EIP itself, as if from the VM's own link.
func TestPhysCutsOrRefusesWhatTheVMCannotTake(t *testing.T) {
	f, ul, ulMAC := physFixture(t)
	f.state.UnderlayMTU = overlayMTU
	if _, err := f.d.Apply(f.state); err != nil {
		t.Fatal(err)
	}
	vm := ip4("10.0.1.5")
	in := func(ip []byte, mark uint32) runResult {
		resetSent(f.d)
		return runCtx(t, f.d.objs.PhysIngress, skbCtx{Ifindex: uint32(ul), Mark: mark}, append(ethHdr(ulMAC, serverMAC, 0x0800), ip...))
	}
	ip := bigUDP(physServer, physEIP, 53, 1500, 0)
	for _, c := range []struct {
		mark       uint32
		tot        int
		frag       uint16
		from, till int // what of the datagram it carries, the UDP header's checksum (translated) aside
	}{{0, 1444, ipMF, 28, 1444}, {fragMark, 76, 1424 / 8, 1444, 1500}} {
		r := in(ip, c.mark)
		_, _, ifx, _ := sent(t, f.d)
		tot, frag, ok := fragOf(r.out)
		p := parse(t, r.out)
		if r.verdict != actRedirect || ifx != f.p1 || tot != c.tot || frag != c.frag || !ok || p.dst != vm ||
			!bytes.Equal(r.out[14+tot-(c.till-c.from):14+tot], ip[c.from:c.till]) {
			t.Errorf("mark %#x: verdict %d to %d (vm1 %d), length %d, fragment field %#x, IPv4 ok %v, to %s, payload kept %v", c.mark, r.verdict, ifx, f.p1, tot, frag, ok, p.dst, bytes.Equal(r.out[14+tot-(c.till-c.from):14+tot], ip[c.from:c.till]))
		}
	}
	r := in(bigUDP(physServer, physEIP, 53, 1500, ipDF), 0)
	_, _, ifx, _ := sent(t, f.d)
	icmp := r.out[34:]
	if r.verdict != actRedirect || ifx != ul || !bytes.Equal(r.out[0:6], serverMAC) || csum(r.out[14:34]) != 0 ||
		netip.AddrFrom4([4]byte(r.out[26:30])) != physEIP || icmp[0] != 3 || icmp[1] != 4 ||
		binary.BigEndian.Uint16(icmp[6:]) != overlayMTU {
		t.Errorf("DF: verdict %d to %d, frame %x", r.verdict, ifx, r.out[:42])
	}
}

// TestGatewayPathCost logs what a gateway's inbound program costs per
// packet: one that fits the overlay, one cut in two (the clone's own
// run not included), one answered with fragmentation needed. A
// measurement, not a check: COURIER_MEASURE=1 go test ./dataplane -run
// TestGatewayPathCost -v.
func TestGatewayPathCost(t *testing.T) {
	if os.Getenv("COURIER_MEASURE") == "" {
		t.Skip("a measurement: set COURIER_MEASURE=1")
	}
	d, up, _ := gatewayMTUFixture(t, Config{})
	frame := func(ip []byte) []byte { return append(ethHdr(linkMAC(t, up), upstreamMAC, 0x0800), ip...) }
	cases := []struct {
		name string
		pkt  []byte
	}{
		{"EIP, 100 bytes", frame(bigUDP(client, eip1, 53, 100, 0))},
		{"EIP, 1,450 bytes (fits)", frame(bigUDP(client, eip1, 53, 1450, 0))},
		{"EIP, 1,500 bytes, cut", frame(bigUDP(client, eip1, 53, 1500, 0))},
		{"EIP, 1,500 bytes, DF: ICMP", frame(bigUDP(client, eip1, 53, 1500, ipDF))},
	}
	for _, c := range cases {
		var cost time.Duration
		var err error
		within(func() { cost, _, err = TimeRuns(d.objs.GwUplinkIngress, up, c.pkt, 5000) })
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		t.Logf("%-28s %5d ns", c.name, cost.Nanoseconds())
	}
}
