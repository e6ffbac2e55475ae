package hostd

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/courier-sdn/courier/internal/testenv"
)

// A gateway reads its uplink's address once, not on every apply; an
// address change on another interface leaves it be, and a change of the
// uplink's own address comes by the address watch and is picked up.
func TestUplinkAddressChangeIsPickedUp(t *testing.T) {
	if testing.Short() {
		t.Skip("needs root and a network namespace")
	}
	ns := testNS(t, "ch"+testenv.ID()+"-uplink")
	h, up, other := uplinkLinks(t, ns)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrs := make(chan int, 64)
	go watchAddrs(ctx, ns, testenv.Logger(t), addrs)
	if i := <-addrs; i != 0 {
		t.Fatalf("the watch started with interface %d, want 0 (read everything again)", i)
	}
	var c uplinkCache
	read := func() netip.Addr {
		t.Helper()
		var a netip.Addr
		err := onThreadIn(ns, func() error {
			l, err := netlink.LinkByName("up0")
			if err == nil {
				a = c.get(l)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	if a := read(); a != netip.MustParseAddr("192.0.2.10") || read() != a || c.reads != 1 {
		t.Fatalf("uplink address %v after %d reads, want 192.0.2.10 read once for two applies", a, c.reads)
	}
	// Events are taken as serve takes them: each forgets the address if
	// it was the uplink's, and the next apply reads it again.
	until := func(what string, done func(i int) bool) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case i := <-addrs:
				c.forget(i)
				if done(i) {
					return
				}
			case <-deadline:
				t.Fatalf("%s: not within 10 s (uplink address %v, %d reads)", what, read(), c.reads)
			}
		}
	}
	if err := h.AddrAdd(other, addr("198.51.100.1/24")); err != nil {
		t.Fatal(err)
	}
	otherIndex := linkIndex(t, h, "other")
	until("another interface's address change is seen", func(i int) bool { return i == otherIndex })
	if a := read(); a != netip.MustParseAddr("192.0.2.10") || c.reads != 1 {
		t.Errorf("after another interface's change: %v, %d reads; want 192.0.2.10 still, not read again", a, c.reads)
	}

	if err := h.AddrReplace(up, addr("203.0.113.20/24")); err != nil {
		t.Fatal(err)
	}
	if err := h.AddrDel(up, addr("192.0.2.10/24")); err != nil {
		t.Fatal(err)
	}
	until("the uplink's new address is picked up", func(int) bool { return read() == netip.MustParseAddr("203.0.113.20") })
	t.Logf("%d reads of the uplink's addresses", c.reads)
}

// uplinkLinks makes an uplink up0 holding 192.0.2.10/24 in ns, and
// another interface, with a handle on ns closed with the test. (A veth
// pair: this kernel has no dummy interfaces.)
func uplinkLinks(t *testing.T, ns netns.NsHandle) (h *netlink.Handle, up, other netlink.Link) {
	t.Helper()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	up = &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "up0"}, PeerName: "other"}
	if err := h.LinkAdd(up); err != nil {
		t.Fatal(err)
	}
	if err := h.AddrAdd(up, addr("192.0.2.10/24")); err != nil {
		t.Fatal(err)
	}
	return h, up, &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "other"}}
}

func addr(s string) *netlink.Addr {
	a, _ := netlink.ParseAddr(s)
	return a
}

func linkIndex(t *testing.T, h *netlink.Handle, name string) int {
	t.Helper()
	l, err := h.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return l.Attrs().Index
}

// An address change starts a reconcile for physical EIPs only where it
// may matter: on the underlay NIC the last reconcile found (or when
// changes may have been missed), and on any interface while none holds
// the VTEP address (flushed and added again: otherwise the EIPs stayed
// unserved until the next reconcile, a minute). Without physical EIPs,
// or before the first reconcile, none does.
func TestUnderlayAddressChangeStartsAReconcile(t *testing.T) {
	for _, c := range []struct {
		underlay int
		phys     bool
		i        int
		want     bool
	}{
		{underlay: 7, phys: true, i: 7, want: true},
		{underlay: 7, phys: true, i: 0, want: true},
		{underlay: 7, phys: true, i: 9, want: false},
		{underlay: -1, phys: true, i: 9, want: true},
		{underlay: 7, phys: false, i: 7, want: false},
		{underlay: -1, phys: false, i: 9, want: false},
		{underlay: 0, phys: false, i: 0, want: false},
	} {
		d := &Daemon{underlay: c.underlay, physEIPs: c.phys}
		if got := d.underlayAddrChanged(c.i); got != c.want {
			t.Errorf("underlay %d, physical EIPs %v, a change on %d: reconcile %v, want %v", c.underlay, c.phys, c.i, got, c.want)
		}
	}
}
