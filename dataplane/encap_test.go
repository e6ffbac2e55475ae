package dataplane_test

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/courier-sdn/courier/dataplane"
	"github.com/courier-sdn/courier/internal/lab"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// TestProgramsEncapsulate: h1's programs put the VXLAN headers on
// themselves (encap.h) and h2 leaves it to its VXLAN device
// (KernelEncap). h1 reaches h2 through a router (rt): the outer
// destination is the remote host, the link layer the router's. Pings
// and TCP (GSO packets, both ways) cross; what h1 sends looks on the
// wire as what h2's device sends, field by field, for a CE-marked echo;
// h1 counts next to nothing in encap_device and h2 counts everything it
// sent there.
func TestProgramsEncapsulate(t *testing.T) {
	w := newWorld(t, "h1", "h2", "rt")
	w.kernelEncap = map[string]bool{"h2": true}
	h1, h2, rt := w.lab.Hosts["h1"], w.lab.Hosts["h2"], w.lab.Hosts["rt"]
	routeVia(t, h1.NS, h2.VTEP.String()+"/32", rt.VTEP.String())
	if err := exec.Command("ip", "netns", "exec", rt.NS, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv4.conf.all.send_redirects=0",
		"net.ipv4.conf.eth0.send_redirects=0").Run(); err != nil {
		t.Fatal(err)
	}
	w.loadKnowingAll(t, "h1", "h2")
	w.mustPing(t, "a1", "10.0.1.12")
	w.mustPing(t, "a1", "10.0.2.12")

	// One echo each way of a ping from a1 to a3, caught on the receiving
	// host's underlay: the request as h1's programs wrote it, the reply
	// as h2's device did.
	icmp := " and udp[28:2] = 0x0800 and udp[39] = 1" // inner IPv4, ICMP
	req := capture(t, h2.NS, "udp dst port 4789 and src host "+h1.VTEP.String()+icmp)
	rep := capture(t, h1.NS, "udp dst port 4789 and src host "+h2.VTEP.String()+icmp)
	time.Sleep(500 * time.Millisecond)
	if out, err := lab.Exec(w.lab.VMs["a1"].NS, "ping", "-n", "-c", "1", "-W", "2", "-Q", "3", "10.0.1.12"); err != nil {
		t.Fatalf("a1 -> a3, CE: %v\n%s", err, out)
	}
	r := req()
	sameOuter(t, r, rep())
	if string(r[6:12]) != string(macOf(t, rt.NS, "eth0")) {
		t.Errorf("h1's frame for h2 came from % x, not the router's eth0", r[6:12])
	}

	w.tcp(t, "a1", "a3", "10.0.1.12")
	w.tcp(t, "a4", "a1", "10.0.1.11")
	c1, c2 := w.counters(t, "h1"), w.counters(t, "h2")
	t.Logf("h1: remote_tx %d, encap_device %d; h2: remote_tx %d, encap_device %d", c1["remote_tx"], c1["encap_device"], c2["remote_tx"], c2["encap_device"])
	if c1["remote_tx"] < 1000 || c1["encap_device"] > 5 {
		t.Errorf("h1 sent %d to other hosts, %d of them through its VXLAN device: want the programs to send all but the first few",
			c1["remote_tx"], c1["encap_device"])
	}
	if c2["remote_tx"] < 1000 || c2["encap_device"] < c2["remote_tx"] {
		t.Errorf("h2 (KernelEncap) sent %d to other hosts, %d through its VXLAN device: want all", c2["remote_tx"], c2["encap_device"])
	}
}

// routeVia adds a route in ns: ip route add DST via GW.
func routeVia(t *testing.T, ns, dst, gw string) {
	t.Helper()
	if out, err := exec.Command("ip", "-n", ns, "route", "add", dst, "via", gw).CombinedOutput(); err != nil {
		t.Fatalf("ip route add %s via %s: %v: %s", dst, gw, err, out)
	}
}

// macOf is dev's MAC address in ns.
func macOf(t *testing.T, ns, dev string) []byte {
	t.Helper()
	out, err := exec.Command("ip", "-n", ns, "-br", "link", "show", dev).Output()
	f := strings.Fields(string(out))
	if err != nil || len(f) < 3 {
		t.Fatalf("ip -br link show %s: %v %q", dev, err, out)
	}
	m, err := net.ParseMAC(f[2])
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (w *world) counters(t *testing.T, h string) map[string]uint64 {
	t.Helper()
	var c map[string]uint64
	err := lab.Do(w.lab.Hosts[h].NS, func() error { var err error; c, err = w.dp[h].Counters(); return err })
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// capture starts tcpdump in ns for one packet matching filter, on eth0
// (the lab's underlay), and returns a function that waits for it: the
// frame's bytes.
func capture(t *testing.T, ns, filter string) func() []byte {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, "tcpdump", "-i", "eth0", "-c", "1", "-nn", "-xx", "-U", filter)
	var out strings.Builder
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	return func() []byte {
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("tcpdump in %s caught nothing for %q", ns, filter)
		}
		return hexDump(t, out.String())
	}
}

// hexDump reads tcpdump -xx's lines ("\t0x0010:  4500 0054 ...").
func hexDump(t *testing.T, s string) []byte {
	var b []byte
	for _, line := range strings.Split(s, "\n") {
		_, rest, ok := strings.Cut(strings.TrimSpace(line), ":  ")
		if !ok || !strings.HasPrefix(strings.TrimSpace(line), "0x") {
			continue
		}
		h, err := hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(rest), " ", ""))
		if err != nil {
			t.Fatalf("tcpdump line %q: %v", line, err)
		}
		b = append(b, h...)
	}
	return b
}

// sameOuter compares the outer headers of two VXLAN frames that carry an
// echo request and its reply: equal but for what must differ (addresses
// swapped, the UDP source port, which comes from the inner flow, the IP
// ID and so the checksum).
func sameOuter(t *testing.T, prog, kern []byte) {
	t.Helper()
	if len(prog) < 64 || len(kern) < 64 {
		t.Fatalf("short frames: %d and %d bytes", len(prog), len(kern))
	}
	field := func(name string, off, n int) {
		if a, b := prog[off:off+n], kern[off:off+n]; string(a) != string(b) {
			t.Errorf("%s: the programs wrote % x, the device % x", name, a, b)
		}
	}
	field("ethertype", 12, 2)
	field("IP version, header length, TOS (CE inside: ECT(0)), total length", 14, 4)
	field("IP flags and fragment offset", 20, 2)
	field("protocol", 23, 1)
	if prog[22] != 63 || kern[22] != 64 { // 64, less the router's hop
		t.Errorf("TTL: the programs' %d after a router, the device's %d; want 63 and 64", prog[22], kern[22])
	}
	field("UDP destination port, length and checksum", 36, 6)
	field("VXLAN header", 42, 8)
	// An echo and its reply hash alike (the flow hash orders the
	// addresses and ICMP has no ports): the same source port, by the
	// same formula.
	field("UDP source port", 34, 2)
	if string(prog[26:30]) != string(kern[30:34]) || string(prog[30:34]) != string(kern[26:30]) {
		t.Errorf("addresses: % x -> % x, reply % x -> % x", prog[26:30], prog[30:34], kern[26:30], kern[30:34])
	}
	if sum := csum16(prog[14:34]); sum != 0 {
		t.Errorf("outer IP checksum does not add up: %#x", sum)
	}
	t.Logf("programs: %s\ndevice:   %s", fmt.Sprintf("% x", prog[:64]), fmt.Sprintf("% x", kern[:64]))
}

// TestOversizedGSOGoesThroughTheDevice: a hostile guest hands its
// interface a GSO packet whose segments (3,000 bytes of TCP each, IP
// options so that port_sec's quick check passes it) exceed the
// underlay's MTU, through an AF_PACKET socket with a virtio header, as a
// tap guest can. The programs must not send such segments to the NIC:
// the packet goes through the VXLAN device (encap_device), whose IP
// output segments and fragments it. A packet with segments that fit is
// the programs' own.
func TestOversizedGSOGoesThroughTheDevice(t *testing.T) {
	w := newWorld(t, "h1", "h2")
	w.loadKnowingAll(t, "h1", "h2")
	w.mustPing(t, "a1", "10.0.1.12")
	send := func(segment int) (remote, device uint64) {
		before := w.counters(t, "h1")
		a3, _ := net.ParseMAC("02:00:00:01:01:12")
		a1, _ := net.ParseMAC("02:00:00:01:01:11")
		err := lab.Do(w.lab.VMs["a1"].NS, func() error { return sendGSO(a3, a1, segment) })
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
		after := w.counters(t, "h1")
		return after["remote_tx"] - before["remote_tx"], after["encap_device"] - before["encap_device"]
	}
	if remote, device := send(1000); remote == 0 || device != 0 {
		t.Errorf("segments of 1,000 bytes: %d sent, %d by the device; want it sent by the programs", remote, device)
	}
	if remote, device := send(3000); remote == 0 || device == 0 {
		t.Errorf("segments of 3,000 bytes: %d sent, %d by the device; want it sent by the device", remote, device)
	}
}

// sendGSO writes one TCP GSO packet of 6,000 bytes, in segments of
// segment bytes, from src to dst out of eth0, with a virtio_net_hdr
// (PACKET_VNET_HDR), as a guest's virtio driver would hand it to a tap.
func sendGSO(dst, src net.HardwareAddr, segment int) error {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
		return err
	}
	l, err := net.InterfaceByName("eth0")
	if err != nil {
		return err
	}
	const ipLen, tcpLen, payload = 24, 20, 6000 // IPv4 with a 4-byte option
	f := append([]byte{}, dst...)
	f = append(f, src...)
	f = append(f, 0x08, 0x00)
	iph := []byte{0x46, 0, 0, 0, 0, 1, 0x40, 0, 64, 6, 0, 0, 10, 0, 1, 11, 10, 0, 1, 12, 1, 1, 1, 0}
	binary.BigEndian.PutUint16(iph[2:], ipLen+tcpLen+payload)
	binary.BigEndian.PutUint16(iph[10:], csum16(iph))
	f = append(f, iph...)
	tcp := make([]byte, tcpLen)
	binary.BigEndian.PutUint16(tcp[0:], 40000)
	binary.BigEndian.PutUint16(tcp[2:], 9)
	tcp[12], tcp[13] = 5<<4, 0x18 // header length, ACK|PSH
	f = append(f, tcp...)
	f = append(f, make([]byte, payload)...)
	// struct virtio_net_hdr: flags, gso_type, hdr_len, gso_size,
	// csum_start, csum_offset (little endian).
	vh := make([]byte, 10)
	vh[0], vh[1] = 1, 1 // NEEDS_CSUM, GSO_TCPV4
	binary.LittleEndian.PutUint16(vh[2:], 14+ipLen+tcpLen)
	binary.LittleEndian.PutUint16(vh[4:], uint16(segment))
	binary.LittleEndian.PutUint16(vh[6:], 14+ipLen)
	binary.LittleEndian.PutUint16(vh[8:], 16)
	sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IP), Ifindex: l.Index}
	return unix.Sendto(fd, append(vh, f...), 0, sa)
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// A VM may address an IPv4 packet for a unicast neighbour to a multicast
// or broadcast MAC (a static neighbour entry; a hostile guest): the
// programs route it by its IP as any other, and the outer frame must not
// keep that address, which bpf_redirect_neigh refuses silently
// (is_multicast_ether_addr in __bpf_redirect_neigh).
func TestMulticastInnerMACIsEncapsulated(t *testing.T) {
	w := newWorld(t, "h1", "h2")
	w.loadKnowingAll(t, "h1", "h2")
	w.mustPing(t, "a1", "10.0.1.12")
	a1 := w.lab.VMs["a1"].NS
	for _, mac := range []string{"01:00:5e:01:02:03", "ff:ff:ff:ff:ff:ff"} {
		if out, err := lab.Exec(a1, "ip", "neigh", "replace", "10.0.1.12", "lladdr", mac, "dev", "eth0", "nud", "permanent"); err != nil {
			t.Fatalf("%v %s", err, out)
		}
		before := w.counters(t, "h1")
		n, out := w.lab.Ping("a1", ip("10.0.1.12"), 3, "0.2")
		after := w.counters(t, "h1")
		sent, device := after["remote_tx"]-before["remote_tx"], after["encap_device"]-before["encap_device"]
		if n != 3 || sent < 3 || device != 0 {
			t.Errorf("a1 -> a3 through %s: %d/3 answered, h1 sent %d, %d of them through the device; want 3, by the programs\n%s",
				mac, n, sent, device, out)
		}
	}
}

// TestProgramsFollowAReplacedUnderlay: h1's eth0 is deleted and a new
// one plugged in with the same address (a recreated bond: a new ifindex
// and MAC). Until FollowUnderlay the programs' route leads out of an
// interface they do not know, and the device sends every packet; after
// it, the programs send them again out of the new one.
func TestProgramsFollowAReplacedUnderlay(t *testing.T) {
	w := newWorld(t, "h1", "h2")
	w.loadKnowingAll(t, "h1", "h2")
	w.mustPing(t, "a1", "10.0.1.12")
	h1 := w.lab.Hosts["h1"].NS
	follow := func() (u dataplane.Underlay) {
		t.Helper()
		if err := lab.Do(h1, func() error { var err error; u, err = w.dp["h1"].FollowUnderlay(); return err }); err != nil {
			t.Fatal(err)
		}
		return u
	}
	if u := follow(); u.From == 0 || u.From != u.To || u.MTU != 1500 {
		t.Fatalf("FollowUnderlay before any change: %+v, want the same non-zero ifindex, MTU 1500", u)
	}
	ping := func(when string) (programs, device uint64) {
		t.Helper()
		before := w.counters(t, "h1")
		n, out := w.lab.Ping("a1", ip("10.0.1.12"), 3, "0.2")
		after := w.counters(t, "h1")
		if n != 3 {
			t.Errorf("%s: a1 -> a3 %d/3 answered\n%s", when, n, out)
		}
		device = after["encap_device"] - before["encap_device"]
		return after["remote_tx"] - before["remote_tx"] - device, device
	}
	if err := w.lab.ReplaceUnderlay("h1"); err != nil {
		t.Fatal(err)
	}
	// As hostd does on the interface messages: the kept route names the
	// old eth0.
	if err := w.dp["h1"].RoutesChanged(); err != nil {
		t.Fatal(err)
	}
	if p, d := ping("eth0 replaced"); p != 0 || d < 3 {
		t.Errorf("eth0 replaced, not yet followed: the programs sent %d, the device %d; want the device all", p, d)
	}
	u := follow()
	var eth0 netlink.Link
	if err := lab.Do(h1, func() error { var err error; eth0, err = netlink.LinkByName("eth0"); return err }); err != nil {
		t.Fatal(err)
	}
	if u.To != eth0.Attrs().Index || u.From == u.To || u.MTU != eth0.Attrs().MTU {
		t.Fatalf("FollowUnderlay: %+v, want the new eth0's ifindex %d and MTU %d", u, eth0.Attrs().Index, eth0.Attrs().MTU)
	}
	if p, d := ping("followed"); p < 3 || d != 0 {
		t.Errorf("followed: the programs sent %d, the device %d; want the programs all", p, d)
	}
}

// TestVariantKeepsTheUnderlay: a variant of the programs (make bench's
// before and after builds) gets the running programs' configuration,
// the underlay's ifindex included, which hostd keeps in .bss; without it
// a variant never encapsulates, and its "encapsulate" timings are the
// device's.
func TestVariantKeepsTheUnderlay(t *testing.T) {
	w := newWorld(t, "h1")
	w.load(t, "h1", true)
	var underlay int
	err := lab.Do(w.lab.Hosts["h1"].NS, func() error {
		u, err := w.dp["h1"].FollowUnderlay()
		underlay = u.To
		return err
	})
	if err != nil || underlay == 0 {
		t.Fatalf("the running programs' underlay: %d %v", underlay, err)
	}
	coll, err := dataplane.LoadVariant(dataplane.CurrentObject(), "/sys/fs/bpf/courier-test-"+w.lab.Prefix, "h1", false)
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	var got, vtep uint32
	if err := coll.Variables["cfg_underlay_ifindex"].Get(&got); err != nil {
		t.Fatal(err)
	}
	if err := coll.Variables["cfg_local_vtep"].Get(&vtep); err != nil {
		t.Fatal(err)
	}
	if int(got) != underlay || vtep == 0 {
		t.Errorf("the variant's underlay ifindex %d (the running programs' %d), its VTEP %#x", got, underlay, vtep)
	}
}
