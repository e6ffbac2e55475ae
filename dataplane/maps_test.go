package dataplane

import (
	"testing"
	"time"
)

// dump reads a map whole in batches (maps.go): every entry of a hub map
// holding several batches' worth, and an LPM map, which has no batches,
// entry by entry.
func TestDumpReadsEveryEntry(t *testing.T) {
	inNetns(t)
	underlay(t, hubIP)
	d := loadTest(t, Config{VTEP: hubIP, Hub: true, HubBindings: 32768})
	hub := d.hubEpsT()
	const n = 3*dumpBatch + 17
	want := make(map[dvrEpKey]dvrRemoteEp, n)
	for i := range n {
		k := dvrEpKey{Vpc: uint32(1 + i%3), Ip: uint32(0x0a000000 + i)}
		v := dvrRemoteEp{Vtep: uint32(i), Vni: 5001}
		if err := hub.put(k, v); err != nil {
			t.Fatal(err)
		}
		want[k] = v
	}
	got := map[dvrEpKey]dvrRemoteEp{}
	start := time.Now()
	if err := hub.eachBatch(func(k dvrEpKey, v dvrRemoteEp) { got[k] = v }); err != nil {
		t.Fatalf("the hub map read in batches: %v", err)
	}
	batched := time.Since(start)
	if len(got) != n {
		t.Fatalf("read %d entries in batches, wrote %d", len(got), n)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("entry %+v read as %+v, written %+v", k, got[k], v)
		}
	}
	start = time.Now()
	one := map[dvrEpKey]dvrRemoteEp{}
	var k dvrEpKey
	var v dvrRemoteEp
	for it := hub.m.Iterate(); it.Next(&k, &v); {
		one[k] = v
	}
	t.Logf("%d entries: %v in batches, %v one by one", n, batched, time.Since(start))

	routes := d.routesT()
	rk := dvrRouteKey{Prefixlen: 32 + 16, Vpc: 1, Ip: be32(ip4("192.168.0.0"))}
	if err := routes.put(rk, dvrRoute{Vni: 5001}); err != nil {
		t.Fatal(err)
	}
	if all, err := routes.dump(); err != nil || all[rk].Vni != 5001 {
		t.Fatalf("the LPM map read: %v %v", all, err)
	}
}
