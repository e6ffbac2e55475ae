package dataplane

import (
	"bytes"
	"net"
	"net/netip"
	"slices"
	"testing"
)

// routeBoundFixture is the fixture with a third vxnet and two learned
// destinations in 10.0.2.0/24 (10.0.2.7 on peerB, the next hop
// 10.0.2.50 on peerA); apply applies its state, bound says whether its
// VPC routes by binding (checking the vxnets' copy of the VPC's entry),
// to sends vm1's datagram to dst and checks where it went.
func routeBoundFixture(t *testing.T) (f *fixture, apply func(*testing.T), bound func(*testing.T) bool,
	to func(t *testing.T, dst string, vtep netip.Addr, dmac net.HardwareAddr)) {
	f = newFixture(t, false)
	d := f.d
	// A third vxnet, with no ports here: the VPC's vxnets then lie in
	// 10.0.0.0/22, which still holds 10.0.2.0/24 once that goes.
	f.state.Vxnets = append(f.state.Vxnets, Vxnet{VNI: 5003, VPC: 1, CIDR: netip.MustParsePrefix("10.0.3.0/24"),
		GwIP: ip4("10.0.3.1"), GwMAC: gwMAC, Flags: allVx})
	f.state.Routes = append(f.state.Routes, Route{VPC: 1, Prefix: netip.MustParsePrefix("10.0.3.0/24"), VNI: 5003})
	apply = func(t *testing.T) {
		t.Helper()
		if _, err := d.Apply(f.state); err != nil {
			t.Fatal(err)
		}
	}
	apply(t)
	f.learn(t, ip4("10.0.2.7"), peerB, 5002, remMAC2)
	f.learn(t, ip4("10.0.2.50"), peerA, 5002, nhMAC)
	bound = func(t *testing.T) bool {
		t.Helper()
		v, ok := d.vpcsT().lookup(1)
		x, okx := d.vxnetsT().lookup(5001)
		if !ok || !okx || x.Vpce != v {
			t.Fatalf("VPC entry %+v, its copy in vxnet 5001 %+v", v, x.Vpce)
		}
		return v.Dflags&vpcDRouteBound != 0
	}
	to = func(t *testing.T, dst string, vtep netip.Addr, dmac net.HardwareAddr) {
		t.Helper()
		resetSent(d)
		r := run(t, d.objs.PortIngress, f.p1, udpPkt(gwMAC, vm1MAC, ip4("10.0.1.5"), ip4(dst), 64, 10))
		got, vni, _, _ := sent(t, d)
		if r.verdict != actRedirect || got != vtep || vni != 5002 || !bytes.Equal(r.out[0:6], dmac) {
			t.Errorf("to %s: verdict %d, sent to %s vni %d dst MAC %x; want %s vni 5002 %s (drops %v)",
				dst, r.verdict, got, vni, r.out[0:6], vtep, dmac, drops(t, d))
		}
	}
	return f, apply, bound, to
}

// TestRoutedByBindingFollowsTheRoutes: ip_route routes a destination
// with a binding to the binding's vxnet without the routes trie
// (VPC_D_ROUTE_BOUND, vpcs.go) only while the routes would take it
// there too. A static route that takes part of a vxnet turns that off,
// and its removal back on; a vxnet the VPC no longer routes to takes its
// learned paths with it; and a miss, tried first, leaves no trace for
// the routes' own lookup to count twice.
func TestRoutedByBindingFollowsTheRoutes(t *testing.T) {
	f, apply, bound, to := routeBoundFixture(t)
	d := f.d
	inside := Route{VPC: 1, Prefix: netip.MustParsePrefix("10.0.2.0/28"), VNI: 5002, Nexthop: ip4("10.0.2.50")}

	t.Run("a bound destination goes straight to its host", func(t *testing.T) {
		if !bound(t) {
			t.Fatal("the VPC's vxnets have their connected routes alone, yet it does not route by binding")
		}
		before, _ := d.Counters()
		to(t, "10.0.2.7", peerB, remMAC2)
		// Found once, by ip_route, and not again by dst_lookup.
		if after, _ := d.Counters(); after["cache_hit"] != before["cache_hit"]+1 {
			t.Errorf("cache hits %d -> %d, want one", before["cache_hit"], after["cache_hit"])
		}
	})
	t.Run("a static route inside a vxnet takes its part", func(t *testing.T) {
		f.state.Routes = append(f.state.Routes, inside)
		apply(t)
		if bound(t) {
			t.Error("still routing by binding")
		}
		to(t, "10.0.2.7", peerA, nhMAC)
	})
	t.Run("and gives it back when removed", func(t *testing.T) {
		f.state.Routes = slices.DeleteFunc(f.state.Routes, func(r Route) bool { return r == inside })
		apply(t)
		if !bound(t) {
			t.Error("not routing by binding again")
		}
		to(t, "10.0.2.7", peerB, remMAC2)
	})
	t.Run("a miss tried first leaves no trace", func(t *testing.T) {
		// In the VPC's span, in no vxnet: a static route's.
		f.state.Routes = append(f.state.Routes, Route{VPC: 1, Prefix: netip.MustParsePrefix("10.0.0.0/24"), VNI: 5002, Nexthop: ip4("10.0.2.50")})
		apply(t)
		before, _ := d.Counters()
		to(t, "10.0.0.9", peerA, nhMAC)
		after, _ := d.Counters()
		if after["cache_miss"] != before["cache_miss"] || after["cache_hit"] != before["cache_hit"]+1 {
			t.Errorf("cache misses %d -> %d, hits %d -> %d: want no miss and the next hop's one hit",
				before["cache_miss"], after["cache_miss"], before["cache_hit"], after["cache_hit"])
		}
	})
	t.Run("a vxnet no longer routed takes its learned paths with it", func(t *testing.T) {
		f.state.Ports = slices.DeleteFunc(f.state.Ports, func(p Port) bool { return p.VNI == 5002 })
		f.state.Vxnets = slices.DeleteFunc(f.state.Vxnets, func(v Vxnet) bool { return v.VNI == 5002 })
		f.state.Routes = slices.DeleteFunc(f.state.Routes, func(r Route) bool { return r.VNI == 5002 })
		apply(t)
		if !bound(t) {
			t.Fatal("not routing by binding: the test would not reach the learned path")
		}
		expectDrop(t, d, "no_route", func() runResult {
			return run(t, d.objs.PortIngress, f.p1, udpPkt(gwMAC, vm1MAC, ip4("10.0.1.5"), ip4("10.0.2.7"), 64, 10))
		})
	})
}
