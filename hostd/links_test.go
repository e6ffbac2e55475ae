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
