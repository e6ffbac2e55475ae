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
	groups := map[hubGroup][]netip.Addr{{"VPC", 1}: {a, b}, {"VPC", 10}: {a}, {"VPC", 3}: {c, a}, {"network", 1}: {g1, g2}}
	const after = 300 * time.Millisecond
	for _, tc := range []struct {
		name string
		seen map[netip.Addr]time.Duration
		want string
	}{
		{"all answer", map[netip.Addr]time.Duration{a: 10 * time.Millisecond, b: 20 * time.Millisecond, g1: 0, g2: 0},
			"[{192.0.2.1 10ms false [] false} {192.0.2.2 20ms false [] false} {192.0.2.11 0s false [] false} {192.0.2.12 0s false [] false}]"},
		// VPC 1 passes over a to b, VPC 3 to c (never probed: up); VPC
		// 10 has a alone. The network passes over g1 to g2.
		{"one silent", map[netip.Addr]time.Duration{a: after, b: 20 * time.Millisecond, g1: time.Second, g2: 0},
			"[{192.0.2.1 300ms true [VPC 10] false} {192.0.2.2 20ms false [] false} {192.0.2.11 1s true [] false} {192.0.2.12 0s false [] false}]"},
		{"all silent", map[netip.Addr]time.Duration{a: time.Second, b: 2 * time.Second, g1: time.Second, g2: time.Second, x: time.Second},
			"[{192.0.2.1 1s true [VPC 1 VPC 10] false} {192.0.2.2 2s true [VPC 1] false} {192.0.2.11 1s true [network 1] false} " +
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

// hubGroups reads the maps as the programs do: a VPC with more hubs
// than MAX_HUBS has none pick_hub would use, a network's gateways past
// MAX_GATEWAYS are never picked.
func TestHubGroups(t *testing.T) {
	var eight, nine [8]uint32
	for i := range eight {
		eight[i], nine[i] = uint32(0xc0000201+i), uint32(0xc0000201+i)
	}
	got := hubGroups(map[uint32]dvrHubs{1: {N: 2, Vtep: eight}, 2: {N: 9, Vtep: nine}},
		map[uint32]dvrEipGws{7: {N: 9, Vtep: nine}, 8: {N: 1, Vtep: eight}})
	want := map[hubGroup]string{
		{"VPC", 1}:     "[192.0.2.1 192.0.2.2]",
		{"network", 7}: "[192.0.2.1 192.0.2.2 192.0.2.3 192.0.2.4 192.0.2.5 192.0.2.6 192.0.2.7 192.0.2.8]",
		{"network", 8}: "[192.0.2.1]",
	}
	if len(got) != len(want) {
		t.Errorf("groups %v, want %v", got, want)
	}
	for g, w := range want {
		if s := fmt.Sprint(got[g]); s != w {
			t.Errorf("%s: %s, want %s", g, s, w)
		}
	}
}
