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
