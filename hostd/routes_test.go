package hostd

import (
	"context"
	"net"
	"os/exec"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/courier-sdn/courier/internal/testenv"
)

// The programs are told of each kind of routing change in the host's
// namespace: an interface added (a link message alone: it is down), an
// address (its routes' messages), a route added and deleted (a route
// message alone: the interface and its address are there).
func TestRoutingChangesAreTold(t *testing.T) {
	name := "ch" + testenv.ID() + "-routes"
	ns := testNS(t, name)
	// No IPv6: its addresses' messages (duplicate address detection
	// done) come when they will, and would blur which watch told.
	if out, err := exec.Command("ip", "netns", "exec", name, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
		"net.ipv6.conf.default.disable_ipv6=1").CombinedOutput(); err != nil {
		t.Fatalf("disable IPv6: %v: %s", err, out)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	told := make(chan struct{}, 64)
	log := testenv.Logger(t)
	kick := make(chan struct{}, 1)
	go watchRouting(ctx, routeWatch{ns: ns, log: log, changed: func() error { told <- struct{}{}; return nil }, told: func() {}}, kick)
	go watchLinks(ctx, linkWatch{ns: ns, rcvbuf: linkBuffer, queue: 16, log: log, onLost: func() {}, onAny: func() { poke(kick) }},
		make(chan linkEvent, 64))
	// quiet drains the tellings until none came for a while.
	quiet := func() {
		for {
			select {
			case <-told:
			case <-time.After(300 * time.Millisecond):
				return
			}
		}
	}
	expect := func(what string, change func() error) {
		t.Helper()
		quiet()
		if err := change(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		select {
		case <-told:
		case <-time.After(5 * time.Second):
			t.Errorf("%s: the programs were not told", what)
		}
	}
	la := netlink.LinkAttrs{Name: "rt0"}
	veth := &netlink.Veth{LinkAttrs: la, PeerName: "rt1"}
	expect("an interface added", func() error { return h.LinkAdd(veth) })
	if err := h.LinkSetUp(veth); err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetUp(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "rt1"}}); err != nil {
		t.Fatal(err)
	}
	addr, _ := netlink.ParseAddr("192.0.2.1/24")
	expect("an address added", func() error { return h.AddrAdd(veth, addr) })
	l, err := h.LinkByName("rt0")
	if err != nil {
		t.Fatal(err)
	}
	r := &netlink.Route{LinkIndex: l.Attrs().Index, Dst: &net.IPNet{IP: net.IPv4(198, 51, 100, 0), Mask: net.CIDRMask(24, 32)},
		Gw: net.IPv4(192, 0, 2, 2)}
	expect("a route added", func() error { return h.RouteAdd(r) })
	expect("a route deleted", func() error { return h.RouteDel(r) })
}
