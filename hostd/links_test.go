package hostd

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/courier-sdn/courier/dataplane"
	"github.com/courier-sdn/courier/internal/testenv"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// testNS makes a network namespace of the test's own, removed at the end,
// and returns a handle on it.
func testNS(t *testing.T, name string) netns.NsHandle {
	t.Helper()
	testenv.Root(t)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	ns, err := netns.NewNamed(name)
	netns.Set(orig)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close(); netns.DeleteNamed(name) })
	return ns
}

// 300 VM interfaces appear at once, 100 go: hostd's map of interfaces
// ends right whether or not the kernel overflowed the watch on the way
// (with a 4 KiB buffer it does, and the watch is reopened and rescanned).
func TestThreeHundredInterfacesAtOnce(t *testing.T) {
	for _, c := range []struct{ rcvbuf, queue, resyncs int }{{linkBuffer, 1024, 1}, {4096, 1, 2}} {
		t.Run(fmt.Sprintf("buffer %d", c.rcvbuf), func(t *testing.T) {
			if n := interfacesAtOnce(t, c.rcvbuf, c.queue); n < c.resyncs {
				t.Errorf("%d resyncs, want at least %d", n, c.resyncs)
			}
		})
	}
}

func interfacesAtOnce(t *testing.T, rcvbuf, queue int) (resyncs int) {
	ns := testNS(t, fmt.Sprintf("ch%s-links%d", testenv.ID(), rcvbuf))
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	d := &Daemon{nl: h, log: testenv.Logger(t), ifaces: map[string]int{}, byIndex: map[int]string{}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := make(chan linkEvent, 16)
	go watchLinks(ctx, linkWatch{ns: ns, rcvbuf: rcvbuf, queue: queue, log: d.log, onLost: func() {}}, events)
	// The map is the consumer's alone: wait reports its size.
	wait := func(want int) {
		t.Helper()
		deadline := time.After(30 * time.Second)
		for {
			if len(d.ifaces) == want {
				return
			}
			select {
			case e := <-events:
				if e.resync {
					resyncs++
				}
				d.onLink(e)
			case <-deadline:
				t.Fatalf("%d VM interfaces known, want %d (%d resyncs)", len(d.ifaces), want, resyncs)
			}
		}
	}
	wait(0)
	for i := range 300 {
		name := fmt.Sprintf("v%d", i)
		la := netlink.LinkAttrs{Name: name}
		if err := h.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: name + "p"}); err != nil {
			t.Fatal(err)
		}
		if err := h.LinkSetAlias(&netlink.Veth{LinkAttrs: la}, dataplane.AliasPrefix+fmt.Sprintf("port%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	wait(300)
	for i := range 100 {
		if err := h.LinkDel(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: fmt.Sprintf("v%d", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	wait(200)
	if _, ok := d.ifaces["port150"]; !ok {
		t.Error("port150 missing")
	}
	if _, ok := d.ifaces["port50"]; ok {
		t.Error("port50 still there")
	}
	t.Logf("buffer %d: %d resyncs", rcvbuf, resyncs)
	return resyncs
}

// A hypervisor's tap is bound as a veth is, by its alias; that it is a
// tap is read from the kernel (link kind "tun", mode tap) both from the
// interface's event and from a rescan, and reaches the data plane's
// port, which then delivers out of it.
func TestTapIsDetectedNotConfigured(t *testing.T) {
	if testing.Short() {
		t.Skip("needs root and a network namespace")
	}
	ns := testNS(t, "ch"+testenv.ID()+"-tap")
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	d := &Daemon{nl: h, log: testenv.Logger(t), ifaces: map[string]int{}, byIndex: map[int]string{}, taps: map[int]bool{}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := make(chan linkEvent, 16)
	go watchLinks(ctx, linkWatch{ns: ns, rcvbuf: linkBuffer, queue: 64, log: d.log, onLost: func() {}}, events)
	if e := <-events; !e.resync {
		t.Fatal("the watch did not start with a resync")
	}
	d.onLink(linkEvent{resync: true})
	// The tap is made in the namespace as the sandbox makes a guest's.
	var tap int
	err = onThreadIn(ns, func() error {
		var err error
		tap, err = dataplane.CreateTap("tapg", dataplane.AliasPrefix+"guest")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	la := netlink.LinkAttrs{Name: "vethv"}
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: "vethvp"}); err != nil {
		t.Fatal(err)
	}
	// An alias set on a link that is down is announced only when it goes
	// up (the kernel's netdev_state_change), as a VM's veth does.
	if err := h.LinkSetAlias(&netlink.Veth{LinkAttrs: la}, dataplane.AliasPrefix+"nsvm"); err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetUp(&netlink.Veth{LinkAttrs: la}); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(30 * time.Second)
	for d.ifaces["guest"] == 0 || d.ifaces["nsvm"] == 0 {
		select {
		case e := <-events:
			d.onLink(e)
		case <-deadline:
			t.Fatalf("interfaces known: %v", d.ifaces)
		}
	}
	check := func(how string) {
		t.Helper()
		if d.ifaces["guest"] != tap || !d.taps[tap] {
			t.Errorf("%s: the tap (ifindex %d) is not known as one: ifaces %v taps %v", how, tap, d.ifaces, d.taps)
		}
		if d.taps[d.ifaces["nsvm"]] {
			t.Errorf("%s: the veth is taken for a tap", how)
		}
	}
	check("from events")
	d.onLink(linkEvent{resync: true})
	check("from a rescan")

	hv1 := str("hv1")
	s := snap([]*sbdb.PortBinding{pb("guest", tWeb.UUID, hv1, hv1, "10.0.1.5"), pb("nsvm", tWeb.UUID, hv1, hv1, "10.0.1.6")}, d.ifaces,
		func(s *snapshot) { s.taps = d.taps })
	for _, p := range desired(s).state.Ports {
		if p.Tap != (p.Name == "guest") {
			t.Errorf("port %s: Tap %v", p.Name, p.Tap)
		}
	}
}

// onThreadIn runs fn on a thread in namespace ns.
func onThreadIn(ns netns.NsHandle, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			errc <- err
			return
		}
		errc <- fn()
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
	}()
	return <-errc
}
