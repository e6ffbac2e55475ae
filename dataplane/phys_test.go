package dataplane

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/courier-sdn/courier/internal/testenv"

	"github.com/courier-sdn/courier/pipeline"
)

// Physical-network EIPs (#15 item 4): the underlay NIC's program answers
// ARP and translates, the port's EIP leaves from the NIC; checksums are
// recomputed here.

var (
	physEIP    = ip4("100.64.0.5") // not under the fixture's route to 192.168.0.0/16
	physServer = ip4("100.64.0.10")
	serverMAC  = mac("02:00:00:00:c8:0a")
)

// physFixture: vm1 (10.0.1.5) has physical EIP 100.64.0.5; the
// underlay NIC is ul0.
func physFixture(t *testing.T) (*fixture, int, net.HardwareAddr) {
	f := newFixture(t, false)
	var ul netlink.Link
	within(func() { ul, _ = netlink.LinkByName("ul0") })
	if ul == nil {
		t.Fatal("no underlay NIC")
	}
	f.state.Underlay = ul.Attrs().Index
	f.state.PhysEIPs = []PhysEIP{{Ifindex: f.p1, VPC: 1, EIP: physEIP, Addr: ip4("10.0.1.5")}}
	if _, err := f.d.Apply(f.state); err != nil {
		t.Fatal(err)
	}
	return f, ul.Attrs().Index, ul.Attrs().HardwareAddr
}

// arpRequest is who-has target, tell sender, broadcast.
func arpRequest(sha net.HardwareAddr, spa, tpa netip.Addr) []byte {
	f := ethHdr(mac("ff:ff:ff:ff:ff:ff"), sha, 0x0806)
	f = append(f, 0, 1, 8, 0, 6, 4, 0, 1)
	s, d := spa.As4(), tpa.As4()
	f = append(f, sha...)
	f = append(f, s[:]...)
	f = append(f, 0, 0, 0, 0, 0, 0)
	return append(f, d[:]...)
}

func TestPhysARP(t *testing.T) {
	f, ul, ulMAC := physFixture(t)
	t.Run("a request for the EIP is answered with the NIC's MAC, out of the NIC", func(t *testing.T) {
		resetSent(f.d)
		r := run(t, f.d.objs.PhysIngress, ul, arpRequest(serverMAC, physServer, physEIP))
		_, _, ifx, _ := sent(t, f.d)
		if r.verdict != actRedirect || ifx != ul {
			t.Fatalf("verdict %d to ifindex %d, want the reply out of ul0 (%d)", r.verdict, ifx, ul)
		}
		a := r.out[14:42]
		if !bytes.Equal(r.out[0:6], serverMAC) || !bytes.Equal(r.out[6:12], ulMAC) || binary.BigEndian.Uint16(a[6:]) != 2 ||
			!bytes.Equal(a[8:14], ulMAC) || netip.AddrFrom4([4]byte(a[14:18])) != physEIP ||
			!bytes.Equal(a[18:24], serverMAC) || netip.AddrFrom4([4]byte(a[24:28])) != physServer {
			t.Errorf("reply % x", r.out[:42])
		}
	})
	t.Run("another address, and an announcement of the EIP, are the host's", func(t *testing.T) {
		for _, req := range [][]byte{arpRequest(serverMAC, physServer, ip4("100.64.0.6")),
			arpRequest(serverMAC, physEIP, physEIP)} {
			if r := run(t, f.d.objs.PhysIngress, ul, req); r.verdict != actOK || !bytes.Equal(r.out[:len(req)], req) {
				t.Errorf("verdict %d, frame changed %v", r.verdict, !bytes.Equal(r.out[:len(req)], req))
			}
		}
	})
	t.Run("an interface moved to another namespace (a live migration) is silenced at once", func(t *testing.T) {
		f.state.PhysEIPs = append(f.state.PhysEIPs, PhysEIP{Ifindex: f.p3, VPC: 1, EIP: ip4("100.64.0.6"), Addr: ip4("10.0.1.6")})
		var err error
		within(func() { _, err = f.d.Apply(f.state) }) // the device map takes ifindexes of the caller's namespace
		if err != nil {
			t.Fatal(err)
		}
		if r := run(t, f.d.objs.PhysIngress, ul, arpRequest(serverMAC, physServer, ip4("100.64.0.6"))); r.verdict != actRedirect {
			t.Fatalf("verdict %d for vm3's EIP before its move", r.verdict)
		}
		name := "cdp-moved-" + testenv.ID()
		within(func() {
			other, err := netns.NewNamed(name) // the thread is in it now
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			netns.Set(testNS)
			l, _ := netlink.LinkByIndex(f.p3)
			if err := netlink.LinkSetNsFd(l, int(other)); err != nil {
				t.Fatal(err)
			}
		})
		defer netns.DeleteNamed(name)
		if r := run(t, f.d.objs.PhysIngress, ul, arpRequest(serverMAC, physServer, ip4("100.64.0.6"))); r.verdict != actOK {
			t.Errorf("verdict %d after vm3's interface left for another namespace: still answered", r.verdict)
		}
	})
	t.Run("the port's interface leaving the host silences it at once, before hostd knows", func(t *testing.T) {
		within(func() {
			l, _ := netlink.LinkByIndex(f.p1)
			if err := netlink.LinkDel(l); err != nil {
				t.Fatal(err)
			}
		})
		if r := run(t, f.d.objs.PhysIngress, ul, arpRequest(serverMAC, physServer, physEIP)); r.verdict != actOK {
			t.Errorf("verdict %d after the port's interface went: answered by a host it left", r.verdict)
		}
		if _, ok := f.d.physLiveT().lookup(uint32(f.p1)); ok {
			t.Errorf("the device map still holds the deleted interface")
		}
	})
}

func TestPhysInbound(t *testing.T) {
	f, ul, ulMAC := physFixture(t)
	vm := ip4("10.0.1.5")
	in := func(t *testing.T, dst net.HardwareAddr, ip []byte) runResult {
		t.Helper()
		resetSent(f.d)
		return run(t, f.d.objs.PhysIngress, ul, append(ethHdr(dst, serverMAC, 0x0800), ip...))
	}
	deliver := func(t *testing.T, ip []byte) parsed {
		t.Helper()
		r := in(t, ulMAC, ip)
		if _, _, ifx, peer := sent(t, f.d); r.verdict != actRedirect || ifx != f.p1 || !peer {
			t.Fatalf("verdict %d to %d (peer %v), want vm1's port %d", r.verdict, ifx, peer, f.p1)
		}
		if !bytes.Equal(r.out[0:6], vm1MAC) || !bytes.Equal(r.out[6:12], gwMAC) {
			t.Errorf("to %x from %x, want vm1's MAC from the VPC's gateway MAC", r.out[0:6], r.out[6:12])
		}
		return parse(t, r.out)
	}
	t.Run("tcp: destination and checksums, the server's own address kept", func(t *testing.T) {
		p := deliver(t, ipPacket(physServer, physEIP, protoTCP, tcpSeg(43210, 5432, "SELECT 1"), 0))
		if p.src != physServer || p.dst != vm || !p.ipOK || !l4ok(physServer, vm, protoTCP, p.l4) {
			t.Errorf("%s -> %s, IPv4 ok %v, TCP ok %v", p.src, p.dst, p.ipOK, l4ok(physServer, vm, protoTCP, p.l4))
		}
	})
	t.Run("udp and icmp echo", func(t *testing.T) {
		p := deliver(t, ipPacket(physServer, physEIP, protoUDP, udpSeg(5353, 53, "query"), 0))
		if p.dst != vm || !p.ipOK || !l4ok(physServer, vm, protoUDP, p.l4) {
			t.Errorf("udp to %s, IPv4 ok %v, UDP ok %v", p.dst, p.ipOK, l4ok(physServer, vm, protoUDP, p.l4))
		}
		p = deliver(t, ipPacket(physServer, physEIP, protoICM, []byte{8, 0, 0, 0, 0x12, 0x34, 0, 1, 'p'}, 0))
		if p.dst != vm || !p.ipOK || csum(p.l4) != 0 {
			t.Errorf("echo to %s, IPv4 ok %v, ICMP ok %v", p.dst, p.ipOK, csum(p.l4) == 0)
		}
	})
	t.Run("a frame for another MAC, another address, VXLAN: the host's, untouched", func(t *testing.T) {
		for name, r := range map[string]runResult{
			"other MAC":     in(t, mac("02:00:00:00:99:99"), ipPacket(physServer, physEIP, protoUDP, udpSeg(1, 2, "x"), 0)),
			"other address": in(t, ulMAC, ipPacket(physServer, ip4("100.64.0.6"), protoUDP, udpSeg(1, 2, "x"), 0)),
			"vxlan":         in(t, ulMAC, ipPacket(peerA, local, protoUDP, udpSeg(40000, 4789, "vxlan"), 0)),
		} {
			if r.verdict != actOK {
				t.Errorf("%s: verdict %d, want the host's (0)", name, r.verdict)
			}
		}
	})
	t.Run("the port's ingress groups apply", func(t *testing.T) {
		st := *f.state
		for i := range st.VPCs {
			st.VPCs[i].Flags |= pipeline.VPCSGIngress
		}
		for i := range st.Ports {
			st.Ports[i].Identity = 1
		}
		st.SG = []SGVPC{{VPC: 1}}
		if _, err := f.d.Apply(&st); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if _, err := f.d.Apply(f.state); err != nil {
				t.Fatal(err)
			}
		}()
		if r := in(t, ulMAC, ipPacket(physServer, physEIP, protoTCP, tcpSeg(43211, 5432, ""), 0)); r.verdict != actShot || drops(t, f.d)["sg_ingress"] == 0 {
			t.Errorf("verdict %d, drops %v: want refused by the port's groups", r.verdict, drops(t, f.d))
		}
	})
}

func TestPhysOutbound(t *testing.T) {
	f, ul, _ := physFixture(t)
	vm := ip4("10.0.1.5")
	out := func(t *testing.T, ip []byte) parsed {
		t.Helper()
		resetSent(f.d)
		r := run(t, f.d.objs.PortIngress, f.p1, append(ethHdr(gwMAC, vm1MAC, 0x0800), ip...))
		if _, _, ifx, _ := sent(t, f.d); r.verdict != actRedirect || ifx != ul {
			t.Fatalf("verdict %d to ifindex %d, want out of the underlay NIC %d", r.verdict, ifx, ul)
		}
		return parse(t, r.out)
	}
	t.Run("tcp: the EIP as source, TTL and checksums", func(t *testing.T) {
		p := out(t, ipPacket(vm, physServer, protoTCP, tcpSeg(40000, 5432, "hello"), 0))
		if p.src != physEIP || p.dst != physServer || p.ttl != 63 || !p.ipOK || !l4ok(physEIP, physServer, protoTCP, p.l4) {
			t.Errorf("%s -> %s ttl %d, IPv4 ok %v, TCP ok %v", p.src, p.dst, p.ttl, p.ipOK, l4ok(physEIP, physServer, protoTCP, p.l4))
		}
	})
	t.Run("icmp error about what the server sent to the EIP", func(t *testing.T) {
		quoted := ipPacket(physServer, vm, protoUDP, udpSeg(5353, 9, "knock"), 0)
		p := out(t, ipPacket(vm, physServer, protoICM, append([]byte{3, 3, 0, 0, 0, 0, 0, 0}, quoted...), 0))
		inner := p.l4[8:]
		if idst := netip.AddrFrom4([4]byte(inner[16:20])); p.src != physEIP || csum(p.l4) != 0 || idst != physEIP ||
			csum(inner[:20]) != 0 || !l4ok(physServer, physEIP, protoUDP, inner[20:]) {
			t.Errorf("from %s, ICMP ok %v, quoted destination %s", p.src, csum(p.l4) == 0, idst)
		}
	})
	// What the port sends to a host does not leave: a VXLAN packet to a
	// host's VTEP could carry any VNI and group.
	notOut := func(t *testing.T, dst netip.Addr) {
		t.Helper()
		resetSent(f.d)
		before := drops(t, f.d)["phys_underlay"]
		r := run(t, f.d.objs.PortIngress, f.p1, append(ethHdr(gwMAC, vm1MAC, 0x0800), ipPacket(vm, dst, protoUDP, udpSeg(40000, 4789, "vxlan"), 0)...))
		if _, _, ifx, _ := sent(t, f.d); r.verdict == actRedirect && ifx == ul {
			t.Errorf("to %s: sent out of the underlay NIC", dst)
		}
		if n := drops(t, f.d)["phys_underlay"] - before; n != 1 {
			t.Errorf("to %s: phys_underlay counted %d times, want 1", dst, n)
		}
	}
	t.Run("never to a host", func(t *testing.T) {
		// The fixture's VPC routes 192.168.0.0/16, where its VTEP is:
		// the NIC gets an address the VPC does not route, and another
		// host a VTEP there.
		within(func() {
			l, _ := netlink.LinkByIndex(ul)
			if err := netlink.AddrAdd(l, &netlink.Addr{IPNet: &net.IPNet{IP: net.IP{172, 31, 0, 1}, Mask: net.CIDRMask(24, 32)}}); err != nil {
				t.Fatal(err)
			}
		})
		f.state.VTEPs = []netip.Addr{local, ip4("172.31.0.9")}
		defer func() { f.state.VTEPs = nil }()
		var err error
		within(func() { _, err = f.d.Apply(f.state) }) // a subtest's goroutine is not in the namespace
		if err != nil {
			t.Fatal(err)
		}
		notOut(t, ip4("172.31.0.1")) // this host's own address there
		notOut(t, ip4("172.31.0.9")) // another host's VTEP
		// every host at once: each host's VXLAN socket takes them
		notOut(t, ip4("172.31.0.255"))
		notOut(t, ip4("255.255.255.255"))
		notOut(t, ip4("224.0.0.1"))
		notOut(t, ip4("239.1.2.3"))
		out(t, ipPacket(vm, ip4("172.31.0.7"), protoUDP, udpSeg(1, 2, "x"), 0)) // a server on the segment
		out(t, ipPacket(vm, ip4("8.8.8.8"), protoUDP, udpSeg(1, 2, "x"), 0))
	})
	if _, err := f.d.Apply(f.state); err != nil {
		t.Fatal(err)
	}
	t.Run("the refusals go with the last physical EIP", func(t *testing.T) {
		eips := f.state.PhysEIPs
		f.state.PhysEIPs, f.state.VTEPs = nil, []netip.Addr{local}
		defer func() { f.state.PhysEIPs, f.state.VTEPs = eips, nil }()
		var err error
		within(func() { _, err = f.d.Apply(f.state) })
		if deny, derr := f.d.physDenyT().dump(); err != nil || derr != nil || len(deny) != 0 {
			t.Errorf("phys_deny holds %d entries with no physical EIP (%v %v)", len(deny), err, derr)
		}
	})
	if _, err := f.d.Apply(f.state); err != nil {
		t.Fatal(err)
	}
	t.Run("a port without a physical EIP is not sent there", func(t *testing.T) {
		resetSent(f.d)
		r := run(t, f.d.objs.PortIngress, f.p3, append(ethHdr(gwMAC, vm3MAC, 0x0800), ipPacket(ip4("10.0.1.6"), physServer, protoUDP, udpSeg(1, 2, "x"), 0)...))
		if _, _, ifx, _ := sent(t, f.d); r.verdict == actRedirect && ifx == ul {
			t.Errorf("vm3, without an EIP, was sent out of the underlay NIC")
		}
	})
}

// TestPhysPathCost times single runs (median of 5,000) of what the
// physical network and hairpins add, beside the paths they compare to.
// COURIER_MEASURE=1 go test ./dataplane -run TestPhysPathCost -v
func TestPhysPathCost(t *testing.T) {
	if os.Getenv("COURIER_MEASURE") == "" {
		t.Skip("a measurement: set COURIER_MEASURE=1")
	}
	f, ul, ulMAC := physFixture(t)
	f.state.VPCEIPs = []VPCEIP{{VPC: 1, EIP: physEIP, Addr: ip4("10.0.1.5")}, {VPC: 1, EIP: eip3, Addr: ip4("10.0.1.6")}}
	if _, err := f.d.Apply(f.state); err != nil {
		t.Fatal(err)
	}
	d := f.d
	tcp := func(src, dst netip.Addr, dmac, smac []byte) []byte {
		return append(ethHdr(dmac, smac, 0x0800), ipPacket(src, dst, protoTCP, tcpSeg(40000, 80, "0123456789"), 0)...)
	}
	vxlan := append(ethHdr(ulMAC, serverMAC, 0x0800), ipPacket(peerA, local, protoUDP, udpSeg(40000, 4789, "0123456789abcdef"), 0)...)
	// A program that returns at once: what BPF_PROG_RUN itself costs.
	noop, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.SchedCLS, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}})
	if err != nil {
		t.Fatal(err)
	}
	defer noop.Close()
	cases := []struct {
		name    string
		prog    *ebpf.Program
		ifindex int
		pkt     []byte
		verdict uint32
	}{
		{"underlay: VXLAN, a program doing nothing", noop, ul, vxlan, actOK},
		{"port: routed to a local port", d.objs.PortIngress, f.p1, tcp(ip4("10.0.1.5"), ip4("10.0.2.5"), gwMAC, vm1MAC), actRedirect},
		{"port: hairpin to a local EIP", d.objs.PortIngress, f.p1, tcp(ip4("10.0.1.5"), eip3, gwMAC, vm1MAC), actRedirect},
		{"port: hairpin to a local EIP, from a port without one", d.objs.PortIngress, f.p2, tcp(ip4("10.0.2.5"), eip3, gwMAC, vm2MAC), actRedirect},
		{"port: its reply, translated back", d.objs.PortIngress, f.p3,
			append(ethHdr(gwMAC, vm3MAC, 0x0800), ipPacket(ip4("10.0.1.6"), ip4("10.0.2.5"), protoTCP, tcpSeg(80, 40000, "0123456789"), 0)...), actRedirect},
		{"port: out through a physical EIP", d.objs.PortIngress, f.p1, tcp(ip4("10.0.1.5"), physServer, gwMAC, vm1MAC), actRedirect},
		{"underlay: VXLAN, left to the host", d.objs.PhysIngress, ul, vxlan, actOK},
		{"underlay: in through a physical EIP", d.objs.PhysIngress, ul, tcp(physServer, physEIP, ulMAC, serverMAC), actRedirect},
		{"underlay: ARP for a physical EIP", d.objs.PhysIngress, ul, arpRequest(serverMAC, physServer, physEIP), actRedirect},
	}
	for _, c := range cases {
		var cost time.Duration
		var verdict uint32
		var err error
		within(func() { cost, verdict, err = TimeRuns(c.prog, c.ifindex, c.pkt, 5000) })
		if err != nil || verdict != c.verdict {
			t.Fatalf("%s: verdict %d, %v", c.name, verdict, err)
		}
		t.Logf("%-36s %4d ns", c.name, cost.Nanoseconds())
	}
}
