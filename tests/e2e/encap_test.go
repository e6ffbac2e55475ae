package e2e

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/courier-sdn/courier/internal/lab"
	"github.com/courier-sdn/courier/tools/sandbox"
	"github.com/vishvananda/netlink"
)

// hostd's programs encapsulate what they send to other hosts by default
// (#21); --kernel-encap, the escape hatch, leaves all of it to the VXLAN
// device. Either way the VMs reach each other, and encap_device says who
// encapsulated: the device sends only what is not IPv4 (hub probes and
// lessons) by default, everything with the flag. A write of
// net.ipv4.conf.all.forwarding turns the device's forwarding off, which
// the programs' route lookups need: hostd turns it on again. An underlay
// interface replaced (a new ifindex): hostd tells the programs.
func TestWhoEncapsulates(t *testing.T) {
	for _, c := range []struct {
		name       string
		args       []string
		inPrograms bool
	}{
		{"by default the programs", nil, true},
		{"with --kernel-encap the device", []string{"--kernel-encap"}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := startWith(t, 2, 1, c.args...)
			e.nb("vpc-add", "w", "--", "vxnet-add", "w", "wa", "10.8.1.0/24",
				"--", "port-add", "wa", "p1", "02:00:00:08:01:0a", "10.8.1.10",
				"--", "port-add", "wa", "p2", "02:00:00:08:01:0b", "10.8.1.11")
			e.vm("hv1", "p1")
			e.vm("hv2", "p2")
			e.mustPing("p1", "10.8.1.11")
			e.encapsulatedBy(c.inPrograms)
			if !c.inPrograms {
				if f := e.forwarding("hv2"); f != "0" {
					t.Errorf("courier0's forwarding on hv2 is %s, want 0: the device needs none", f)
				}
				return
			}
			// Only a change of all.forwarding is written to every device.
			for _, v := range []string{"1", "0"} {
				if out, err := lab.Exec(e.s.HostNS("hv2"), "sysctl", "-qw", "net.ipv4.conf.all.forwarding="+v); err != nil {
					t.Fatalf("%v %s", err, out)
				}
			}
			e.waitLog("hv2", "forwarding was turned off", "hv2's hostd to turn courier0's forwarding on again")
			if f := e.forwarding("hv2"); f != "1" {
				t.Errorf("courier0's forwarding on hv2 is %s after hostd saw it off", f)
			}
			e.encapsulatedBy(true)
			// A recreated underlay interface: a new ifindex, which hostd
			// follows within a second. By the operator's command, which
			// records hv2's new MAC in the sandbox's file, not in e.s:
			// nothing after it here saves e.s's state or sets
			// neighbours from it.
			skip := e.hostdLogSize("hv2")
			var out bytes.Buffer
			if err := sandbox.App(&out).Run([]string{"courier-sandbox", "--run-dir", e.s.RunDir, "underlay-replace", "hv2"}); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), "hv2's underlay link replaced") {
				t.Errorf("underlay-replace hv2 said %q", out.String())
			}
			var eth0 netlink.Link
			if err := lab.Do(e.s.HostNS("hv2"), func() error { var err error; eth0, err = netlink.LinkByName("eth0"); return err }); err != nil {
				t.Fatal(err)
			}
			e.hostdSays("hv2", skip, 10*time.Second, "the underlay interface changed", fmt.Sprintf("to_ifindex=%d", eth0.Attrs().Index))
			e.encapsulatedBy(true)
			e.routeChangeFollowed()
		})
	}
}

// encapsulatedBy pings p1 from p2 and checks who encapsulated hv2's
// packets: the programs (inPrograms), or the VXLAN device.
func (e *env) encapsulatedBy(inPrograms bool) {
	e.t.Helper()
	before := e.counters("hv2")
	if n, out := pingFrom(e.s.VMNS("p2"), "10.8.1.10", 20); n != 20 {
		e.t.Fatalf("p2 -> p1: %d/20 answered\n%s", n, out)
	}
	after := e.counters("hv2")
	sent := after["remote_tx"] - before["remote_tx"]
	device := after["encap_device"] - before["encap_device"]
	e.t.Logf("hv2 sent %d packets to other hosts, %d through the device", sent, device)
	switch {
	case sent < 20:
		e.t.Fatalf("hv2 counted %d packets sent to other hosts for 20 echo requests", sent)
	case inPrograms && sent-device < 20:
		e.t.Errorf("the programs encapsulated %d of hv2's %d packets, want the 20 echo requests at least", sent-device, sent)
	case !inPrograms && device != sent:
		e.t.Errorf("the device encapsulated %d of hv2's %d packets, want all", device, sent)
	}
}

// routeChangeFollowed: a route on hv2 to hv1's VTEP out of a veth that
// leads nowhere, added and deleted, is followed at once: hostd tells the
// programs, which otherwise keep a VTEP's route for a second (encap.h).
func (e *env) routeChangeFollowed() {
	e.t.Helper()
	ns, dst := e.s.HostNS("hv2"), e.vtep("hv1").String()+"/32"
	ip := func(args ...string) {
		e.t.Helper()
		if out, err := exec.Command("ip", append([]string{"-n", ns}, args...)...).CombinedOutput(); err != nil {
			e.t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	// pings sends n echo requests 50 ms apart from CPU 0: routes are
	// kept per CPU.
	pings := func(n int) int {
		out, _ := lab.Exec(e.s.VMNS("p2"), "taskset", "-c", "0", "ping", "-n", "-q", "-c", fmt.Sprint(n), "-i", "0.05", "-W", "0.3", "10.8.1.10")
		_, recv := lab.PingSummary(out)
		return recv
	}
	ip("link", "add", "kr0", "type", "veth", "peer", "name", "kr1")
	ip("link", "set", "kr0", "up")
	// The route to hv1 is looked up afresh by the first of these (one
	// kept from before has expired) and kept for a second but for
	// hostd's telling.
	time.Sleep(1100 * time.Millisecond)
	if n := pings(3); n < 2 {
		e.t.Fatalf("before the route: %d/3 answered", n)
	}
	ip("route", "add", dst, "dev", "kr0")
	// hostd tells within milliseconds; the first request may beat it.
	// These 8 leave within 400 ms: most would be answered by a kept route.
	if n := pings(8); n > 1 {
		e.t.Errorf("a route to hv1 out of kr0: %d/8 answered, want none: the programs kept the old route", n)
	}
	ip("route", "del", dst, "dev", "kr0")
	if n := pings(10); n < 9 {
		e.t.Errorf("kr0's route deleted: %d/10 answered", n)
	}
}

// forwarding is net.ipv4.conf.courier0.forwarding on host.
func (e *env) forwarding(host string) string {
	e.t.Helper()
	out, err := lab.Exec(e.s.HostNS(host), "sysctl", "-n", "net.ipv4.conf.courier0.forwarding")
	if err != nil {
		e.t.Fatalf("%v %s", err, out)
	}
	return strings.TrimSpace(out)
}
