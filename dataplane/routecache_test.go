package dataplane_test

import (
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/courier-sdn/courier/internal/lab"
	"golang.org/x/sys/unix"
)

// TestKeptRoutes: the programs keep each VTEP's route lookup (encap.h's
// encap_routes) until the routes change (RoutesChanged, which hostd
// calls on route, rule and interface messages) or RouteKeep passes (2 s
// here, so that a loaded machine has time for the steps that rely on a
// kept route), and look again for a packet longer than any the kept
// route carried, which the route's MTU may refuse; a route kept from a
// GSO packet has carried no length. Routes are kept per CPU, so a1
// sends on CPU 0 only (the programs run where its packets are sent). A
// route to h2 over a veth that leads nowhere loses what the device sends
// by it; the programs send only out of eth0.
func TestKeptRoutes(t *testing.T) {
	w := newWorld(t, "h1", "h2")
	w.routeKeep = 2 * time.Second
	w.loadKnowingAll(t, "h1", "h2")
	w.mustPing(t, "a1", "10.0.1.12")
	h1, dst := w.lab.Hosts["h1"].NS, w.lab.Hosts["h2"].VTEP.String()+"/32"
	ipCmd := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", append([]string{"-n", h1}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	changed := func() {
		t.Helper()
		if err := w.dp["h1"].RoutesChanged(); err != nil {
			t.Fatal(err)
		}
	}
	// expect sends one echo request of size bytes from a1 to a3 and
	// checks who sent it (and, by the programs, that it was answered).
	// A hub (h1 is one) may teach h2 the way back as the answer comes
	// in: a lesson either may send, short, not the echo request.
	expect := func(step string, size int, byPrograms bool) {
		t.Helper()
		before := w.counters(t, "h1")
		out, err := lab.Exec(w.lab.VMs["a1"].NS, "taskset", "-c", "0", "ping", "-n", "-c", "1", "-W", "0.3", "-s", fmt.Sprint(size), "10.0.1.12")
		after := w.counters(t, "h1")
		device := after["encap_device"] - before["encap_device"]
		programs := after["remote_tx"] - before["remote_tx"] - device
		lessons := after["learn_sent"] - before["learn_sent"]
		if byPrograms && (programs == 0 || device != 0 || err != nil) {
			t.Errorf("%s: the programs sent %d, the device %d (answered: %v); want the programs, answered\n%s",
				step, programs, device, err == nil, out)
		}
		if !byPrograms && (programs > lessons || device == 0) {
			t.Errorf("%s: the programs sent %d (%d lessons), the device %d; want the device\n%s", step, programs, lessons, device, out)
		}
	}
	ipCmd("link", "add", "kr0", "type", "veth", "peer", "name", "kr1")
	ipCmd("link", "set", "kr0", "up")

	// A step that relies on a kept route must send its echo request
	// well within RouteKeep of the lookup: checked before it does.
	quick := func(since time.Time) {
		t.Helper()
		if d := time.Since(since); d > w.routeKeep*3/4 {
			t.Skipf("the machine is too slow for the rest of this test: %v of a kept route's %v gone", d, w.routeKeep)
		}
	}
	changed()
	start := time.Now()
	expect("looked up", 56, true)
	ipCmd("route", "add", dst, "dev", "kr0")
	quick(start)
	expect("a route over kr0, not told", 56, true)
	changed()
	start = time.Now()
	expect("a route over kr0, told", 56, false)
	ipCmd("route", "del", dst, "dev", "kr0")
	quick(start)
	expect("kr0's route gone, not told", 56, false)
	time.Sleep(w.routeKeep)
	expect("kr0's route gone, RouteKeep later", 56, true)

	// The route's MTU is checked for a packet not GSO longer than any
	// the kept route carried: 1,300 bytes of echo are 1,378 with the
	// outer headers, over 1,200. The device fragments them.
	ipCmd("route", "add", dst, "dev", "eth0", "mtu", "lock", "1200")
	changed()
	a3, _ := net.ParseMAC("02:00:00:01:01:12")
	a1, _ := net.ParseMAC("02:00:00:01:01:11")
	before := w.counters(t, "h1")
	if err := lab.Do(w.lab.VMs["a1"].NS, func() error { return onCPU0(func() error { return sendGSO(a3, a1, 1000) }) }); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if after := w.counters(t, "h1"); after["remote_tx"]-before["remote_tx"] == 0 || after["encap_device"] != before["encap_device"] {
		t.Fatalf("the GSO packet was not sent by the programs: %d sent, %d by the device",
			after["remote_tx"]-before["remote_tx"], after["encap_device"]-before["encap_device"])
	}
	expect("MTU 1200, long, after a GSO packet", 1300, false)
	expect("MTU 1200, short", 56, true)
	expect("MTU 1200, long", 1300, false)
	expect("MTU 1200, short again", 100, true)
	if out, err := lab.Exec(w.lab.VMs["a1"].NS, "ping", "-n", "-c", "1", "-W", "1", "-s", "1300", "10.0.1.12"); err != nil {
		t.Errorf("a long echo through the device, fragmented: not answered: %v\n%s", err, out)
	}
}

// onCPU0 runs fn on this thread (the caller's, locked) bound to CPU 0.
func onCPU0(fn func() error) error {
	var old, one unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		return err
	}
	one.Set(0)
	if err := unix.SchedSetaffinity(0, &one); err != nil {
		return err
	}
	defer unix.SchedSetaffinity(0, &old)
	return fn()
}
