package dataplane

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"testing"
)

// A hub's table kept across Applies writes only what changed, repairs
// the map when asked to compare, and hands over to State.Bindings.
func TestHubTableWritesOnlyChanges(t *testing.T) {
	f := newFixture(t, true)
	st := *f.state
	tbl := NewBindingTable()
	bind := func(i int, vtep string) Binding {
		return Binding{VPC: 1, IP: netip.AddrFrom4([4]byte{10, 9, byte(i >> 8), byte(i)}), VTEP: ip4(vtep), VNI: 5001,
			MAC: mac(fmt.Sprintf("02:00:00:09:%02x:%02x", i>>8, i&255))}
	}
	for i := 0; i < 2000; i++ {
		tbl.Set(bind(i, "192.168.1.10"))
	}
	st.HubTable = tbl
	as, err := f.d.Apply(&st)
	if err != nil {
		t.Fatal(err)
	}
	if as.Written < 2000 {
		t.Fatalf("first apply wrote %d entries, want the 2000 bindings and the rest", as.Written)
	}
	kernelIs(t, f.d, tbl.All())

	for i := 0; i < 3; i++ {
		tbl.Set(bind(i, "192.168.1.11")) // moved
	}
	tbl.Set(bind(5, "192.168.1.10")) // unchanged: not written
	tbl.Delete(BindingKey{1, bind(10, "0.0.0.0").IP})
	tbl.Delete(BindingKey{1, bind(11, "0.0.0.0").IP})
	tbl.Set(bind(3000, "192.168.1.12"))
	if as, err = f.d.Apply(&st); err != nil {
		t.Fatal(err)
	}
	if as.Written != 4 || as.Removed != 2 {
		t.Fatalf("after 3 moves, 1 add and 2 deletes: %+v, want 4 written and 2 removed", as)
	}
	kernelIs(t, f.d, tbl.All())

	// Changed behind the table's back: found when asked to compare.
	if err := f.d.hubEpsT().delete(epKey(BindingKey{1, bind(20, "0.0.0.0").IP})); err != nil {
		t.Fatal(err)
	}
	tbl.MarkFull()
	if as, err = f.d.Apply(&st); err != nil || as.Written != 1 || as.Removed != 0 {
		t.Fatalf("compare after a lost entry: %+v %v, want it rewritten alone", as, err)
	}
	// Changed and added behind its back: both repaired by the check alone.
	moved := epKey(BindingKey{1, bind(21, "0.0.0.0").IP})
	if err := f.d.hubEpsT().put(moved, dvrRemoteEp{Vtep: 7, Vni: 5001}); err != nil {
		t.Fatal(err)
	}
	if err := f.d.hubEpsT().put(epKey(BindingKey{1, ip4("10.9.200.1")}), dvrRemoteEp{Vtep: 7, Vni: 5001}); err != nil {
		t.Fatal(err)
	}
	tbl.MarkFull()
	if as, err = f.d.Apply(&st); err != nil || as.Written != 1 || as.Removed != 1 {
		t.Fatalf("compare after a changed and a foreign entry: %+v %v, want one rewritten, one removed", as, err)
	}
	kernelIs(t, f.d, tbl.All())
	// A restarted hostd's first Apply compares with the kernel: nothing.
	f.d.applied, f.d.hubTable = nil, nil
	restarted := NewBindingTable()
	for _, b := range tbl.All() {
		restarted.Set(b)
	}
	st.HubTable = restarted
	if as, err = f.d.Apply(&st); err != nil || as.Written != 0 || as.Removed != 0 {
		t.Fatalf("after a restart: %+v %v, want nothing written", as, err)
	}
	// Back to a plain list: the map holds exactly it.
	st.HubTable, st.Bindings = nil, tbl.All()[:10]
	if _, err = f.d.Apply(&st); err != nil {
		t.Fatal(err)
	}
	kernelIs(t, f.d, st.Bindings)
}

func kernelIs(t *testing.T, d *Datapath, want []Binding) {
	t.Helper()
	got, err := d.Bindings()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("the hub map holds %d bindings, want %d", len(got), len(want))
	}
	for i := range got {
		if g, w := fmt.Sprint(got[i]), fmt.Sprint(want[i]); g != w {
			t.Fatalf("hub map entry %d: %s, want %s", i, g, w)
		}
	}
}

// The periodic comparison of a hub's map with its table (MarkFull) reads
// the map in reused batches: it allocates far less than the map holds,
// where copying both into maps made garbage of every binding, twice.
func TestHubCheckCopiesNothing(t *testing.T) {
	f := newFixtureWith(t, true, Config{HubBindings: 65536})
	st := *f.state
	tbl := NewBindingTable()
	const n = 50000
	for i := range n {
		tbl.Set(Binding{VPC: 1, IP: netip.AddrFrom4([4]byte{10, 9, byte(i >> 8), byte(i)}), VTEP: ip4("192.168.1.10"),
			VNI: 5001, MAC: mac(fmt.Sprintf("02:00:00:09:%02x:%02x", i>>8, i&255))})
	}
	st.HubTable = tbl
	if _, err := f.d.Apply(&st); err != nil {
		t.Fatal(err)
	}
	tbl.MarkFull()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	as, err := f.d.Apply(&st)
	runtime.ReadMemStats(&after)
	if err != nil || as.Written != 0 || as.Removed != 0 {
		t.Fatalf("the check of an unchanged map: %+v %v, want nothing written", as, err)
	}
	// 24 bytes an entry (key and value) would be 1.2 MB for one copy.
	if got := after.TotalAlloc - before.TotalAlloc; got > 512<<10 {
		t.Fatalf("the check of %d bindings allocated %d bytes, want under 512 KiB", n, got)
	}
	kernelIs(t, f.d, tbl.All())
}

// The hub map in the kernel equals a hub's table after every Apply of a
// random churn (adds, moves, deletes), with the periodic comparison
// (MarkFull) now and then and entries changed, added or removed behind
// the table's back before it. (A check that comes with changes not yet
// written finds the map lacking them and goes through the full sync.)
func TestHubMapEqualsTableThroughRandomChurn(t *testing.T) {
	f := newFixture(t, true)
	st := *f.state
	tbl := NewBindingTable()
	st.HubTable = tbl
	r := rand.New(rand.NewPCG(20, 3))
	ip := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 9, byte(i >> 8), byte(i)}) }
	for step := 0; step < 200; step++ {
		for range 1 + r.IntN(40) {
			i := r.IntN(3000)
			if r.IntN(4) == 0 {
				tbl.Delete(BindingKey{1, ip(i)})
				continue
			}
			tbl.Set(Binding{VPC: 1, IP: ip(i), VTEP: netip.AddrFrom4([4]byte{192, 168, 1, byte(10 + r.IntN(4))}), VNI: 5001,
				MAC: mac(fmt.Sprintf("02:00:00:09:%02x:%02x", i>>8, i&255))})
		}
		if _, err := f.d.Apply(&st); err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		if step%10 == 9 { // as on an idle hub: the check alone
			tamper(t, f.d, r, ip)
			tbl.MarkFull()
			if _, err := f.d.Apply(&st); err != nil {
				t.Fatalf("step %d: %v", step, err)
			}
		}
		if step%10 == 9 || step%17 == 0 {
			kernelIs(t, f.d, tbl.All())
		}
	}
	kernelIs(t, f.d, tbl.All())
}

// tamper changes the hub map behind its table's back: an entry rewritten,
// one added and, one time in two, one removed.
func tamper(t *testing.T, d *Datapath, r *rand.Rand, ip func(int) netip.Addr) {
	t.Helper()
	hub := d.hubEpsT()
	if err := hub.put(epKey(BindingKey{1, ip(r.IntN(3000))}), dvrRemoteEp{Vtep: 7, Vni: 5001}); err != nil {
		t.Fatal(err)
	}
	if err := hub.put(epKey(BindingKey{1, ip(4000 + r.IntN(100))}), dvrRemoteEp{Vtep: 7, Vni: 5001}); err != nil {
		t.Fatal(err)
	}
	if r.IntN(2) == 0 {
		if err := hub.delete(epKey(BindingKey{1, ip(r.IntN(3000))})); err != nil {
			t.Fatal(err)
		}
	}
}
