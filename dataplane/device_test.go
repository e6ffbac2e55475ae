package dataplane

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

func TestRetryDump(t *testing.T) {
	calls := 0
	v, err := retryDump(func() (int, error) {
		calls++
		if calls < 3 {
			return 0, netlink.ErrDumpInterrupted
		}
		return 7, nil
	})
	if v != 7 || err != nil || calls != 3 {
		t.Fatalf("got %d, %v after %d calls; want 7 after 3", v, err, calls)
	}
	other := errors.New("boom")
	calls = 0
	if _, err := retryDump(func() (int, error) { calls++; return 0, other }); err != other || calls != 1 {
		t.Fatalf("another error was retried (%d calls) or lost: %v", calls, err)
	}
	calls = 0
	if _, err := retryDump(func() (int, error) { calls++; return 0, netlink.ErrDumpInterrupted }); !errors.Is(err, netlink.ErrDumpInterrupted) || calls != 10 {
		t.Fatalf("endless interruption: %d calls, %v; want 10 calls and the error", calls, err)
	}
}

// A negative refresh interval is refused before anything is made: the
// programs compare it signed (lookup.h), so it would mean "never
// fresh", every packet through a hub.
func TestNegativeRefreshIsRefused(t *testing.T) {
	_, err := Load(Config{Chassis: "x", VTEP: netip.MustParseAddr("192.0.2.1"), RefreshInterval: -time.Second})
	if err == nil || !strings.Contains(err.Error(), "must be positive") {
		t.Fatalf("Load with a refresh of -1s: %v", err)
	}
}

// With the VXLAN device encapsulating (KernelEncap), FollowUnderlay
// follows no interface but still reads the underlay's MTU, which hostd
// follows for VMs: a raised MTU is seen, and an underlay gone gives 0.
func TestFollowUnderlayReadsTheMTUWithKernelEncap(t *testing.T) {
	f := newFixture(t, false)
	u, err := f.d.FollowUnderlay()
	if err != nil || u.MTU != 1500 || u.From != 0 || u.To != 0 {
		t.Fatalf("FollowUnderlay: %+v %v, want MTU 1500 and no interface followed", u, err)
	}
	l, err := netlink.LinkByName("ul0")
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetMTU(l, 9000); err != nil {
		t.Fatal(err)
	}
	if u, err := f.d.FollowUnderlay(); err != nil || u.MTU != 9000 {
		t.Errorf("after ul0 went to 9000: %+v %v", u, err)
	}
	if err := netlink.LinkDel(l); err != nil {
		t.Fatal(err)
	}
	if u, err := f.d.FollowUnderlay(); u.MTU != 0 {
		t.Errorf("with the underlay gone: %+v %v, want MTU 0", u, err)
	}
}
