package dataplane

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// hubStates judges hubs and gateways as pick_hub and pick_gateway do: a
// group's (a VPC's hubs, a network's gateways) packets pass over a silent
// one to another of the group's that is up (one answering, or never
// probed), and when none is up they still go through the silent ones.
func TestHubStatesAsPickHub(t *testing.T) {
	a, b, c := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.3")
	g1, g2, x := netip.MustParseAddr("192.0.2.11"), netip.MustParseAddr("192.0.2.12"), netip.MustParseAddr("192.0.2.99")
	groups := map[string][]netip.Addr{"VPC 1": {a, b}, "VPC 2": {a}, "VPC 3": {c, a}, "network 1": {g1, g2}}
	const after = 300 * time.Millisecond
	for _, tc := range []struct {
		name string
		seen map[netip.Addr]time.Duration
		want string
	}{
		{"all answer", map[netip.Addr]time.Duration{a: 10 * time.Millisecond, b: 20 * time.Millisecond, g1: 0, g2: 0},
			"[{192.0.2.1 10ms false [] false} {192.0.2.2 20ms false [] false} {192.0.2.11 0s false [] false} {192.0.2.12 0s false [] false}]"},
		// VPC 1 passes over a to b, VPC 3 to c (never probed: up); VPC 2
		// has a alone. The network passes over g1 to g2.
		{"one silent", map[netip.Addr]time.Duration{a: after, b: 20 * time.Millisecond, g1: time.Second, g2: 0},
			"[{192.0.2.1 300ms true [VPC 2] false} {192.0.2.2 20ms false [] false} {192.0.2.11 1s true [] false} {192.0.2.12 0s false [] false}]"},
		{"all silent", map[netip.Addr]time.Duration{a: time.Second, b: 2 * time.Second, g1: time.Second, g2: time.Second, x: time.Second},
			"[{192.0.2.1 1s true [VPC 1 VPC 2] false} {192.0.2.2 2s true [VPC 1] false} {192.0.2.11 1s true [network 1] false} " +
				"{192.0.2.12 1s true [network 1] false} {192.0.2.99 1s true [] true}]"},
	} {
		got := hubStates(groups, tc.seen, after)
		for i := range got {
			if got[i].Kept == nil {
				got[i].Kept = []string{}
			}
		}
		if s := fmt.Sprint(got); s != tc.want {
			t.Errorf("%s:\n%s, want\n%s", tc.name, s, tc.want)
		}
	}
}
