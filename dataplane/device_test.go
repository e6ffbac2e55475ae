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

// A negative refresh or learn interval is refused before anything is
// made: the programs compare them signed (lookup.h, teach.h), so they
// would mean every packet through a hub, every packet a lesson.
func TestNegativeIntervalsAreRefused(t *testing.T) {
	for _, cfg := range []Config{{RefreshInterval: -time.Second}, {LearnInterval: -time.Millisecond}} {
		cfg.Chassis, cfg.VTEP = "x", netip.MustParseAddr("192.0.2.1")
		if _, err := Load(cfg); err == nil || !strings.Contains(err.Error(), "neither may be negative") {
			t.Errorf("Load with refresh %s, learn interval %s: %v", cfg.RefreshInterval, cfg.LearnInterval, err)
		}
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
