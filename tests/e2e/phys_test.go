package e2e

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/courier-sdn/courier/internal/lab"
	"github.com/courier-sdn/courier/tools/sandbox"
	"github.com/courier-sdn/courier/tools/trace"
)

// Physical-network IPs (#15 item 4): the sandbox's physical server, on
// the fabric, reaches a VM by its EIP of the physical network dc, which
// the VM's host answers for and translates on its underlay NIC; no
// gateway on the path, before and after the VM moves.

// arpReplies sends count broadcast ARP requests for addr from the
// physical server and returns the MAC of every reply.
func arpReplies(t *testing.T, ns, addr string, count int) []string {
	t.Helper()
	out, _ := lab.Exec(ns, "busybox", "arping", "-b", "-c", "2", "-w", "2", "-I", "eth0", addr)
	var macs []string
	for _, m := range regexp.MustCompile(`reply from \S+ \[([0-9a-fA-F:]+)\]`).FindAllStringSubmatch(out, -1) {
		macs = append(macs, strings.ToLower(m[1]))
	}
	return macs
}

// neighMAC is the MAC the namespace's neighbour table holds for addr.
func neighMAC(ns, addr string) string {
	out, _ := lab.Exec(ns, "ip", "neigh", "show", addr)
	f := strings.Fields(out)
	for i, w := range f {
		if w == "lladdr" && i+1 < len(f) {
			return strings.ToLower(f[i+1])
		}
	}
	return ""
}

func TestPhysicalIPFromTheDataCentre(t *testing.T) {
	e := startOpts(t, sandbox.Options{Hosts: 2, Hubs: 1, Gateways: 1})
	phys := e.s.PhysNS()
	server := sandbox.PhysAddr.Addr().String()
	hostMAC := map[string]string{}
	for _, h := range e.s.State.Hosts {
		hostMAC[h.Name] = strings.ToLower(h.MAC)
	}
	e.nb("vpc-add", "blue", "--open", "--", "vxnet-add", "blue", "web", "10.0.1.0/24")
	e.nb("port-add", "web", "vm1", "02:00:00:00:01:0a", "10.0.1.10")
	e.vm("hv1", "vm1")
	e.nb("eip-add", "dc", "192.168.200.5", "--port", "vm1")
	serve(t, phys, 8082, "phys")
	gw := e.counters("gw1")

	// reach checks everything with vm1 on host (its listener lives as
	// long as the subtest)
	reach := func(t *testing.T, host string) {
		t.Helper()
		serve(t, e.s.VMNS("vm1"), 8080, "vm1")
		if n, out := pingFrom(phys, "192.168.200.5", 3); n != 3 {
			t.Fatalf("phys -> 192.168.200.5: %d/3 answered\n%s", n, out)
		}
		// The data centre's MTU (1,500) is the fabric's, the VM's the
		// overlay's (1,450): its host cuts a longer datagram into
		// fragments, or refuses it with fragmentation needed if DF is
		// set, as a router between the two would.
		big := func(size, df string) string {
			out, _ := lab.Exec(phys, "ping", "-n", "-c", "2", "-i", "0.2", "-W", "1", "-s", size, "-M", df, "192.168.200.5")
			return out
		}
		if out := big("1422", "do"); !strings.Contains(out, " 2 received") {
			t.Errorf("phys -> 192.168.200.5, 1,450 bytes with DF: not answered\n%s", out)
		}
		if out := big("1472", "dont"); !strings.Contains(out, " 2 received") {
			t.Errorf("phys -> 192.168.200.5, 1,500 bytes without DF: not answered (cut by the host)\n%s", out)
		}
		if out := big("1472", "do"); !strings.Contains(out, "mtu = 1450") {
			t.Errorf("phys -> 192.168.200.5, 1,500 bytes with DF: want fragmentation needed naming 1450\n%s", out)
		}
		lab.Exec(phys, "ip", "route", "flush", "cache")
		if out, err := dial(phys, "192.168.200.5:8080"); err != nil || !strings.HasPrefix(out, "vm1 "+server+":") {
			t.Errorf("TCP to 192.168.200.5:8080: %q %v; want vm1 seeing %s", out, err, server)
		}
		if out, err := dial(e.s.VMNS("vm1"), server+":8082"); err != nil || !strings.HasPrefix(out, "phys 192.168.200.5:") {
			t.Errorf("vm1 -> %s:8082: %q %v; want the server seeing 192.168.200.5", server, out, err)
		}
		if got := neighMAC(phys, "192.168.200.5"); got != hostMAC[host] {
			t.Errorf("phys's neighbour 192.168.200.5 is at %s, want %s's NIC %s", got, host, hostMAC[host])
		}
		if d, err := e.dp(host).Dump(); err != nil || !strings.Contains(strings.Join(d.EIPs, "\n"), "physical eip 192.168.200.5 -> 10.0.1.10 (vpc 1") {
			t.Errorf("courier-dpctl --chassis %s eips: %q %v, want vm1's physical EIP", host, d.EIPs, err)
		}
		macs := arpReplies(t, phys, "192.168.200.5", 2)
		if len(macs) == 0 {
			t.Errorf("no ARP reply for 192.168.200.5")
		}
		for _, m := range macs {
			if m != hostMAC[host] {
				t.Errorf("ARP replies for 192.168.200.5 from %v; want only %s's %s", macs, host, hostMAC[host])
				break
			}
		}
	}
	t.Run("ping and TCP both ways, addresses kept, answered by vm1's host only", func(t *testing.T) { reach(t, "hv1") })

	t.Run("after vm-move the new host announces the address and the old one is silent", func(t *testing.T) {
		cap := e.capture("arp")
		start := time.Now()
		if err := e.s.MoveVM(t.Context(), "vm1", "hv2"); err != nil {
			t.Fatal(err)
		}
		// The gratuitous ARP moves phys's entry before phys sends anything.
		for neighMAC(phys, "192.168.200.5") != hostMAC["hv2"] && time.Since(start) < 5*time.Second {
			time.Sleep(20 * time.Millisecond)
		}
		if got := neighMAC(phys, "192.168.200.5"); got != hostMAC["hv2"] {
			t.Fatalf("phys's neighbour 192.168.200.5 is at %s after the move, want hv2's %s", got, hostMAC["hv2"])
		}
		t.Logf("phys's neighbour entry moved to hv2 %v after vm-move began", time.Since(start).Round(time.Millisecond))
		reach(t, "hv2")
		lines := cap.stop()
		garp := 0
		for _, l := range lines {
			if strings.Contains(l, hostMAC["hv1"]+" >") && strings.Contains(l, "is-at") && strings.Contains(l, "192.168.200.5") {
				t.Errorf("hv1 answered for 192.168.200.5 after vm1 left it: %s", l)
			}
			if strings.Contains(l, hostMAC["hv2"]+" >") && strings.Contains(l, "who-has 192.168.200.5 tell 192.168.200.5") {
				garp++
			}
		}
		if garp < 2 { // at once, 0.5 s later (and 2 s later, which the capture may miss)
			t.Errorf("%d gratuitous ARPs from hv2 on the fabric, want at least 2:\n%s", garp, strings.Join(lines, "\n"))
		}
	})

	t.Run("back with vm-migrate, its interface moving between namespaces: hv2 silent at once", func(t *testing.T) {
		start := time.Now()
		if _, err := e.s.MigrateVM(t.Context(), "vm1", "hv1"); err != nil {
			t.Fatal(err)
		}
		for neighMAC(phys, "192.168.200.5") != hostMAC["hv1"] && time.Since(start) < 5*time.Second {
			time.Sleep(20 * time.Millisecond)
		}
		t.Logf("phys's neighbour entry moved to hv1 %v after vm-migrate began", time.Since(start).Round(time.Millisecond))
		reach(t, "hv1")
	})

	t.Run("its VM never reaches the hosts: no VXLAN of its own making", func(t *testing.T) { physTenantAttack(t, e) })

	t.Run("no gateway carried any of it", func(t *testing.T) {
		after := e.counters("gw1")
		if after["gw_up"] != gw["gw_up"] || after["gw_down"] != gw["gw_down"] {
			t.Errorf("gw1 carried %d up, %d down", after["gw_up"]-gw["gw_up"], after["gw_down"]-gw["gw_down"])
		}
	})
}

// physTenantAttack: vm1, on hv1 with a physical EIP, sends UDP to hv2's
// VTEP, port 4789: a VXLAN packet of its own making for another VPC's VM
// on hv2. Out of its host's underlay NIC, on the hosts' own segment, it
// would reach hv2's VXLAN device, which takes any VNI from anyone; so the
// host drops what a port sends to a host's VTEP (or its own underlay
// addresses). Then a server of the segment sends the same, and hv2 drops
// it: it is no chassis's VTEP.
func physTenantAttack(t *testing.T, e *env) {
	e.nb("vpc-add", "red", "--open", "--", "vxnet-add", "red", "app", "10.0.1.0/24")
	e.nb("port-add", "app", "victim", "02:00:00:00:0e:14", "10.0.1.20")
	e.vm("hv2", "victim")
	vni := 0
	rows := e.sbRows("Datapath", "name", "tunnel_key", "type")
	for _, r := range rows {
		if name, _ := r["name"].(string); r["type"] == "vxnet" && strings.HasSuffix(name, "app") {
			vni, _ = strconv.Atoi(fmt.Sprint(r["tunnel_key"]))
		}
	}
	if vni == 0 {
		t.Fatalf("no southbound datapath for vxnet app: %v", rows)
	}
	var got atomic.Int32
	var ln net.PacketConn
	if err := lab.Do(e.s.VMNS("victim"), func() (err error) { ln, err = net.ListenPacket("udp4", ":7777"); return err }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		buf := make([]byte, 2048)
		for {
			n, _, err := ln.ReadFrom(buf)
			if err != nil {
				return
			}
			if strings.Contains(string(buf[:n]), "forged") {
				got.Add(1)
			}
		}
	}()
	victimMAC, _ := net.ParseMAC("02:00:00:00:0e:14")
	frame := forgedVXLAN(uint32(vni), victimMAC, netip.MustParseAddr("10.0.1.99"), netip.MustParseAddr("10.0.1.20"), 7777, []byte("forged"))
	to := netip.AddrPortFrom(e.vtep("hv2"), 4789)
	// write sends the frame n times from namespace ns to dst.
	write := func(ns string, dst netip.AddrPort, n int) {
		t.Helper()
		if err := lab.Do(ns, func() error {
			c, err := net.Dial("udp4", dst.String())
			if err != nil {
				return err
			}
			defer c.Close()
			for range n {
				if _, err := c.Write(frame); err != nil {
					return err
				}
				time.Sleep(50 * time.Millisecond)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	// send writes the frame 5 times from namespace ns; host must count 5
	// drops of reason, and the victim get none.
	send := func(who, ns, host, reason string) {
		t.Helper()
		drops0, _ := e.dp(host).Drops()
		write(ns, to, 5)
		time.Sleep(500 * time.Millisecond)
		if n := got.Swap(0); n != 0 {
			t.Errorf("the victim, in another VPC on hv2, got %d of 5 datagrams %s wrapped in VXLAN to hv2's VTEP", n, who)
		}
		drops1, _ := e.dp(host).Drops()
		if n := drops1[reason] - drops0[reason]; n != 5 {
			t.Errorf("%s counted %d %s drops of what %s sent, want 5", host, n, reason, who)
		}
	}
	send("vm1", e.s.VMNS("vm1"), "hv1", "phys_underlay")
	// An address added to hv1's underlay NIC is refused to vm1 as soon
	// as hostd hears of it, not at its next reconcile (a minute).
	extra := netip.MustParseAddr("192.168.100.241")
	extraAddr := func(op string) error {
		out, err := lab.Exec(e.s.HostNS("hv1"), "ip", "addr", op, extra.String()+"/32", "dev", "eth0")
		if err != nil {
			return fmt.Errorf("ip addr %s %s: %v: %s", op, extra, err, out)
		}
		return nil
	}
	if err := extraAddr("add"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	refused := func() bool {
		drops0, _ := e.dp("hv1").Drops()
		write(e.s.VMNS("vm1"), netip.AddrPortFrom(extra, 4789), 1)
		drops1, _ := e.dp("hv1").Drops()
		return drops1["phys_underlay"] > drops0["phys_underlay"]
	}
	for !refused() {
		if time.Since(start) > 5*time.Second {
			extraAddr("del")
			t.Fatalf("vm1 could still send to %s, an address added to hv1's underlay NIC %v before", extra, time.Since(start).Round(time.Millisecond))
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("an address added to hv1's underlay NIC was refused to vm1 after %v", time.Since(start).Round(time.Millisecond))
	if err := extraAddr("del"); err != nil {
		t.Fatal(err)
	}
	// A server on the hosts' own subnet, no chassis, tries the same: hv2
	// takes VXLAN only from the chassis' VTEPs.
	if out, err := lab.Exec(e.s.PhysNS(), "ip", "addr", "add", "192.168.100.250/24", "dev", "eth0"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	defer lab.Exec(e.s.PhysNS(), "ip", "addr", "del", "192.168.100.250/24", "dev", "eth0")
	send("a server on the hosts' subnet", e.s.PhysNS(), "hv2", "unknown_vtep")
	// courier-trace says so, from the southbound and from hv1's programs,
	// also for a multicast group (every host's VXLAN socket takes it).
	for _, dst := range []string{to.Addr().String(), "224.0.0.1"} {
		for _, chassis := range []string{"", "hv1"} {
			tr := e.trace(chassis, `inport == "vm1" && ip4.dst == `+dst+` && udp.dst == 4789`)
			if tr.Outcome != trace.Dropped || tr.Reason != "phys_underlay" {
				t.Errorf("courier-trace (chassis %q) vm1 -> %s: %s %s %q, want dropped for phys_underlay", chassis, dst, tr.Outcome, tr.Reason, tr.Detail)
			}
		}
	}
}

// forgedVXLAN is a VXLAN packet (no group policy) carrying an IPv4 UDP
// datagram from src to dst:port, addressed to dstMAC.
func forgedVXLAN(vni uint32, dstMAC net.HardwareAddr, src, dst netip.Addr, port uint16, payload []byte) []byte {
	b := []byte{0x08, 0, 0, 0, byte(vni >> 16), byte(vni >> 8), byte(vni), 0}
	b = append(b, dstMAC...)
	b = append(b, 0x02, 0, 0, 0, 0, 0x63, 0x08, 0x00)
	ip := []byte{0x45, 0, 0, 0, 0, 1, 0, 0, 64, 17, 0, 0}
	binary.BigEndian.PutUint16(ip[2:], uint16(20+8+len(payload)))
	ip = append(append(ip, src.AsSlice()...), dst.AsSlice()...)
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
	udp := binary.BigEndian.AppendUint16(nil, 40000)
	udp = binary.BigEndian.AppendUint16(udp, port)
	udp = binary.BigEndian.AppendUint16(udp, uint16(8+len(payload)))
	udp = append(udp, 0, 0) // no checksum
	return append(append(append(b, ip...), udp...), payload...)
}

// Hairpin (#15 item 5): VMs reaching each other's EIPs, public or
// physical, in the same VPC, on one host or two: the receiver sees the
// caller's EIP, the caller the EIP it called, and no gateway carries
// anything.
func TestHairpinToAnEIPOfTheVPC(t *testing.T) {
	e := startOpts(t, sandbox.Options{Hosts: 2, Hubs: 1, Gateways: 1})
	e.nb("vpc-add", "blue", "--open", "--", "vxnet-add", "blue", "web", "10.0.1.0/24")
	e.nb("port-add", "web", "vm1", "02:00:00:00:01:0a", "10.0.1.10", "--", "port-add", "web", "vm2", "02:00:00:00:01:0b", "10.0.1.11",
		"--", "port-add", "web", "vm3", "02:00:00:00:01:0c", "10.0.1.12")
	e.vm("hv1", "vm1")
	e.vm("hv2", "vm2")
	e.vm("hv1", "vm3")
	e.nb("eip-add", "internet", "203.0.113.5", "--port", "vm1", "--", "eip-add", "dc", "192.168.200.6", "--port", "vm2",
		"--", "eip-add", "internet", "203.0.113.7", "--port", "vm3")
	for _, vm := range []string{"vm1", "vm2", "vm3"} {
		serve(t, e.s.VMNS(vm), 8080, vm)
	}
	e.hairpins(t, []hairpin{
		{"vm1", "192.168.200.6", "vm2", "203.0.113.5"}, // to a physical EIP on another host
		{"vm2", "203.0.113.5", "vm1", "192.168.200.6"}, // to a public EIP on another host, from a physical one
		{"vm1", "203.0.113.7", "vm3", "203.0.113.5"},   // on the same host
	})
	traceHairpins(t, e)
}

// The logical trace (courier-trace without --chassis) tells the same:
// hairpins delivered on one hop, translated after sg_egress, and a
// physical EIP's traffic leaving from its host with no gateway.
func traceHairpins(t *testing.T, e *env) {
	for _, c := range []struct{ from, to, port, path string }{
		{"vm1", "192.168.200.6", "vm2", "hv1>hv2"},
		{"vm2", "203.0.113.5", "vm1", "hv2>hv1"},
		{"vm1", "203.0.113.7", "vm3", "hv1"},
	} {
		tr := e.trace("", `inport == "`+c.from+`" && ip4.dst == `+c.to+` && tcp.dst == 8080`)
		eip := stepOf(tr.Hops[0], "eip_out")
		if tr.Outcome != trace.Delivered || tr.Port != c.port || route(tr) != c.path || !strings.Contains(eip.Detail, "a hairpin") {
			var b strings.Builder
			tr.Write(&b, trace.Detailed, "text")
			t.Errorf("logical trace %s -> %s: %s via %s, want a hairpin to %s via %s\n%s", c.from, c.to, tr.Detail, route(tr), c.port, c.path, b.String())
		}
	}
	tr := e.trace("", `inport == "vm2" && ip4.dst == `+sandbox.PhysAddr.Addr().String())
	if tr.Outcome != trace.Left || tr.Chassis != "hv2" || !strings.Contains(tr.Detail, "underlay NIC") {
		t.Errorf("logical trace vm2 -> the physical server: %s %q on %s, want it to leave hv2 by its underlay NIC", tr.Outcome, tr.Detail, tr.Chassis)
	}
	tr = e.trace("", `inport == "vm1" && ip4.dst == 198.51.100.1`)
	if tr.Outcome != trace.Left || !strings.Contains(tr.Detail, "to a gateway of internet") {
		t.Errorf("logical trace vm1 -> the internet: %s %q, want it to leave through a gateway", tr.Outcome, tr.Detail)
	}
}

// udpRefused sends a datagram to addr from a connected UDP socket in ns
// and returns what reading the answer gives: ECONNREFUSED once an ICMP
// port unreachable about it came back and the kernel matched its quote
// to the socket.
func udpRefused(ns, addr string) error {
	var rerr error
	err := lab.Do(ns, func() error {
		c, err := net.Dial("udp4", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		for i := 0; i < 3 && rerr == nil; i++ {
			c.Write([]byte("x"))
			_, rerr = c.Read(make([]byte, 16))
		}
		return nil
	})
	if err != nil {
		return err
	}
	return rerr
}

// stepOf is a hop's step of a stage.
func stepOf(h trace.Hop, stage string) trace.Step {
	for _, s := range h.Steps {
		if s.Stage == stage {
			return s
		}
	}
	return trace.Step{}
}

// A hairpin from VMs without an EIP (#15 item 5): vm3 and vm4 of blue,
// whose VPC has SNAT, reach vm1's public EIP and vm2's physical one on
// their own host and across, in one hop: the receiver sees the caller's
// private address, the caller the EIP it called, and the gateway
// carries nothing. red's vm5, of the same CIDR and vm3's address, goes
// the public way to the same EIP (through its SNAT and the gateway) and
// gets no hairpin.
func TestHairpinWithoutAnEIP(t *testing.T) {
	e := startOpts(t, sandbox.Options{Hosts: 2, Hubs: 1, Gateways: 1})
	e.nb("vpc-add", "blue", "--open", "--", "vxnet-add", "blue", "web", "10.0.1.0/24")
	e.nb("port-add", "web", "vm1", "02:00:00:00:01:0a", "10.0.1.10", "--", "port-add", "web", "vm2", "02:00:00:00:01:0b", "10.0.1.11",
		"--", "port-add", "web", "vm3", "02:00:00:00:01:0c", "10.0.1.12", "--", "port-add", "web", "vm4", "02:00:00:00:01:0d", "10.0.1.13")
	e.nb("vpc-add", "red", "--open", "--", "vxnet-add", "red", "web-red", "10.0.1.0/24",
		"--", "port-add", "web-red", "vm5", "02:00:00:00:02:0c", "10.0.1.12")
	e.vm("hv1", "vm1")
	e.vm("hv2", "vm2")
	e.vm("hv1", "vm3")
	e.vm("hv2", "vm4")
	e.vm("hv1", "vm5")
	e.nb("eip-add", "internet", "203.0.113.5", "--port", "vm1", "--", "eip-add", "dc", "192.168.200.6", "--port", "vm2")
	e.nb("snat-set", "blue", "internet", "203.0.113.100", "--block", "1024")
	e.nb("snat-set", "red", "internet", "203.0.113.101", "--block", "1024")
	for _, vm := range []string{"vm1", "vm2"} {
		serve(t, e.s.VMNS(vm), 8080, vm)
	}
	back1, back2 := e.counters("hv1")["hairpin_back"], e.counters("hv2")["hairpin_back"]
	e.hairpins(t, []hairpin{
		{"vm3", "203.0.113.5", "vm1", "10.0.1.12"},   // a public EIP on the same host
		{"vm3", "192.168.200.6", "vm2", "10.0.1.12"}, // a physical EIP on another host
		{"vm4", "203.0.113.5", "vm1", "10.0.1.13"},   // a public EIP on another host
		{"vm4", "192.168.200.6", "vm2", "10.0.1.13"}, // a physical EIP on the same host
	})
	if n1, n2 := e.counters("hv1")["hairpin_back"]-back1, e.counters("hv2")["hairpin_back"]-back2; n1 == 0 || n2 == 0 {
		t.Errorf("hairpin_back: hv1 %d, hv2 %d; want replies translated back on both senders' hosts", n1, n2)
	}
	// The receiver's port unreachable, about the connection, reaches the
	// sender's socket: its quote names the EIP the sender called.
	for _, to := range []string{"203.0.113.5:9", "192.168.200.6:9"} {
		if err := udpRefused(e.s.VMNS("vm4"), to); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("vm4 -> udp %s: %v, want connection refused (the ICMP error matched to the socket)", to, err)
		}
	}

	t.Run("another VPC of the same CIDR goes the public way", func(t *testing.T) {
		// The public way from one of the network's addresses to another:
		// the gateway sends it to the network's next hop (the internet
		// namespace, a router), which routes it back to the gateways.
		gw := e.counters("gw1")
		if out, err := dial(e.s.VMNS("vm5"), "203.0.113.5:8080"); err != nil || !strings.HasPrefix(out, "vm1 203.0.113.101:") {
			t.Errorf("vm5 (red) -> 203.0.113.5:8080: %q %v; want vm1 seeing red's SNAT address 203.0.113.101", out, err)
		}
		if after := e.counters("gw1"); after["gw_up"] == gw["gw_up"] || after["gw_down"] == gw["gw_down"] {
			t.Errorf("gw1 carried %d up, %d down: red's connection did not go through it", after["gw_up"]-gw["gw_up"], after["gw_down"]-gw["gw_down"])
		}
		tr := e.trace("", `inport == "vm5" && ip4.dst == 203.0.113.5 && tcp.dst == 8080`)
		if tr.Outcome != trace.Left || strings.Contains(stepOf(tr.Hops[0], "eip_out").Detail, "hairpin") {
			t.Errorf("logical trace vm5 -> 203.0.113.5: %s %q, want it to leave by SNAT", tr.Outcome, tr.Detail)
		}
	})
	t.Run("the kernel's trace delivers in one hop", func(t *testing.T) {
		for _, c := range []struct{ chassis, from, to, detail, path string }{
			{"hv1", "vm3", "203.0.113.5", "delivered to vm1 on hv1", "hv1"},
			{"hv1", "vm3", "192.168.200.6", "delivered to vm2 on hv2", "hv1>hv2"},
		} {
			tr := e.trace(c.chassis, `inport == "`+c.from+`" && ip4.dst == `+c.to+` && tcp.dst == 8080`)
			if tr.Outcome != trace.Delivered || !strings.Contains(tr.Detail, c.detail) || route(tr) != c.path {
				t.Errorf("courier-trace --chassis %s %s -> %s: %s %q via %s, want %q via %s", c.chassis, c.from, c.to, tr.Outcome, tr.Detail,
					route(tr), c.detail, c.path)
			}
		}
	})
	t.Run("the logical trace shows the hairpins", func(t *testing.T) {
		for _, c := range []struct{ from, to, port, path string }{
			{"vm3", "203.0.113.5", "vm1", "hv1"},
			{"vm3", "192.168.200.6", "vm2", "hv1>hv2"},
			{"vm4", "203.0.113.5", "vm1", "hv2>hv1"},
		} {
			tr := e.trace("", `inport == "`+c.from+`" && ip4.dst == `+c.to+` && tcp.dst == 8080`)
			eip := stepOf(tr.Hops[0], "eip_out")
			if tr.Outcome != trace.Delivered || tr.Port != c.port || route(tr) != c.path || !strings.Contains(eip.Detail, "a hairpin") {
				var b strings.Builder
				tr.Write(&b, trace.Detailed, "text")
				t.Errorf("logical trace %s -> %s: %s via %s, want a hairpin to %s via %s\n%s", c.from, c.to, tr.Detail, route(tr), c.port, c.path, b.String())
			}
		}
	})
}

// hairpin is a VM (from) reaching an EIP of its VPC (to), served by the
// VM tag, which sees it come from sees.
type hairpin struct{ from, to, tag, sees string }

// hairpins pings and connects each hairpin, and checks that none of it
// went through the gateway gw1.
func (e *env) hairpins(t *testing.T, cases []hairpin) {
	t.Helper()
	gw := e.counters("gw1")
	for _, c := range cases {
		if n, out := e.s.Ping(c.from, ip(c.to), 3, "0.2"); n != 3 {
			t.Errorf("%s -> %s: %d/3 answered\n%s", c.from, c.to, n, out)
		}
		if out, err := dial(e.s.VMNS(c.from), c.to+":8080"); err != nil || !strings.HasPrefix(out, c.tag+" "+c.sees+":") {
			t.Errorf("%s -> %s:8080: %q %v; want %s seeing %s", c.from, c.to, out, err, c.tag, c.sees)
		}
	}
	after := e.counters("gw1")
	if after["gw_up"] != gw["gw_up"] || after["gw_down"] != gw["gw_down"] {
		t.Errorf("gw1 carried %d up, %d down: a hairpin left its host's DVR for the gateway",
			after["gw_up"]-gw["gw_up"], after["gw_down"]-gw["gw_down"])
	}
}
