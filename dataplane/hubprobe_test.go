package dataplane

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// hubStates judges hubs as pick_hub does: a VPC's packets pass over a
// silent hub to another of its hubs that is up (one answering, or never
// probed), and when none is up they still go through the silent ones.
func TestHubStatesAsPickHub(t *testing.T) {
	a, b, c := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.3")
	vpcHubs := map[uint32][]netip.Addr{1: {a, b}, 2: {a}, 3: {c, a}}
	const after = 300 * time.Millisecond
	for _, tc := range []struct {
		name string
		seen map[netip.Addr]time.Duration
		want string
	}{
		{"all answer", map[netip.Addr]time.Duration{a: 10 * time.Millisecond, b: 20 * time.Millisecond},
			"[{192.0.2.1 10ms false []} {192.0.2.2 20ms false []}]"},
		// VPC 1 passes over a to b, VPC 3 to c (never probed: up); VPC 2 has a alone.
		{"one silent", map[netip.Addr]time.Duration{a: after, b: 20 * time.Millisecond},
			"[{192.0.2.1 300ms true [2]} {192.0.2.2 20ms false []}]"},
		{"both silent", map[netip.Addr]time.Duration{a: time.Second, b: 2 * time.Second},
			"[{192.0.2.1 1s true [1 2]} {192.0.2.2 2s true [1]}]"},
	} {
		got := hubStates(vpcHubs, tc.seen, after)
		for i := range got {
			if got[i].Kept == nil {
				got[i].Kept = []uint32{}
			}
		}
		if s := fmt.Sprint(got); s != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, s, tc.want)
		}
	}
}
