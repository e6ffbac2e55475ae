package dataplane

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/courier-sdn/courier/internal/testenv"
	"github.com/courier-sdn/courier/pipeline"
)

// TestVariantFillsAnEarlierLayout: a variant of a build whose ports map
// had the earlier layout (ports_v2, a port's entry without its vxnet's)
// gets it filled with the chassis's ports, their first 28 bytes, so that
// make bench's baseline still runs on today's state; a map the chassis
// pins under that name is left alone.
func TestVariantFillsAnEarlierLayout(t *testing.T) {
	f := newFixture(t, false)
	d := f.d
	earlier := func() *ebpf.Collection {
		m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 28, MaxEntries: 4096})
		if err != nil {
			t.Fatal(err)
		}
		coll := &ebpf.Collection{Maps: map[string]*ebpf.Map{"ports_v2": m}}
		t.Cleanup(func() { coll.Close() })
		return coll
	}
	coll := earlier()
	dir := filepath.Join(d.cfg.PinRoot, d.cfg.Chassis)
	if err := fillEarlierLayouts(coll, dir, nil); err != nil {
		t.Fatal(err)
	}
	e, ok := d.portsT().lookup(uint32(f.p1))
	want, err := binary.Append(nil, binary.LittleEndian, e.Port)
	if !ok || err != nil {
		t.Fatalf("port %d: present %v, %v", f.p1, ok, err)
	}
	var got []byte
	if err := coll.Maps["ports_v2"].Lookup(uint32(f.p1), &got); err != nil || !bytes.Equal(got, want[:28]) {
		t.Errorf("port %d in the earlier layout: %x %v, want %x", f.p1, got, err, want[:28])
	}
	have, _ := d.portsT().dump()
	if n := mapLen(t, coll.Maps["ports_v2"]); n != len(have) || n < 2 {
		t.Errorf("%d ports in the earlier layout, %d in the chassis's", n, len(have))
	}

	coll = earlier()
	if err := fillEarlierLayouts(coll, dir, map[string]*ebpf.Map{"ports_v2": coll.Maps["ports_v2"]}); err != nil {
		t.Fatal(err)
	}
	if n := mapLen(t, coll.Maps["ports_v2"]); n != 0 {
		t.Errorf("the chassis's own ports_v2 written: %d entries", n)
	}
}

func mapLen(t *testing.T, m *ebpf.Map) int {
	t.Helper()
	var k, v []byte
	n := 0
	it := m.Iterate()
	for it.Next(&k, &v) {
		n++
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestUpgradeCarriesThePorts: a hostd upgraded from a build whose ports
// map had the earlier layout (ports_v2) carries its entries over into
// ports_v3 as its programs load, without the vxnet's copy, so that its
// ports forward, the vxnet looked up, before its first Apply (which
// waits for the southbound); an entry ports_v3 has already stays; the
// earlier pin goes. The earlier entries are this build's ports' first 28
// bytes, which TestLayouts keeps the earlier layout ("port", 28 bytes
// then). loadObjects is called alone: that Load carries before it swaps
// the ports' programs (adoptPortLinks) is read, not tested.
func TestUpgradeCarriesThePorts(t *testing.T) {
	f := newFixture(t, false)
	d := f.d
	dir := filepath.Join(d.cfg.PinRoot, d.cfg.Chassis)
	have, err := d.portsT().dump()
	if err != nil || len(have) < 2 {
		t.Fatalf("%d ports, %v", len(have), err)
	}
	earlier, err := ebpf.NewMap(&ebpf.MapSpec{Name: "ports_v2", Type: ebpf.Hash, KeySize: 4, ValueSize: 28, MaxEntries: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer earlier.Close()
	for k, e := range have {
		e.Port.Flags &^= portVxnet
		b, err := binary.Append(nil, binary.LittleEndian, e.Port)
		if err != nil {
			t.Fatal(err)
		}
		if err := earlier.Put(k, b[:28]); err != nil {
			t.Fatal(err)
		}
	}
	if err := earlier.Pin(filepath.Join(dir, "ports_v2")); err != nil {
		t.Fatal(err)
	}
	// The upgraded build's ports_v3 is new: empty but for one entry (as
	// when an earlier removal of the ports_v2 pin failed).
	if err := os.Remove(filepath.Join(dir, "ports_v3")); err != nil {
		t.Fatal(err)
	}
	d2 := &Datapath{cfg: d.cfg, log: d.log, pinDir: d.pinDir, vxlan: d.vxlan, encapIdx: d.encapIdx}
	newer := dvrPortEntry{Port: dvrPort{Vni: 5001, Vpc: 1, Mtu: 1400}}
	spec, err := loadDvr()
	if err != nil {
		t.Fatal(err)
	}
	ms := spec.Maps["ports_v3"].Copy()
	ms.Pinning = ebpf.PinNone
	pre, err := ebpf.NewMap(ms)
	if err != nil {
		t.Fatal(err)
	}
	defer pre.Close()
	if err := pre.Put(uint32(f.p3), newer); err != nil {
		t.Fatal(err)
	}
	if err := pre.Pin(filepath.Join(dir, "ports_v3")); err != nil {
		t.Fatal(err)
	}
	if err := d2.loadObjects(); err != nil {
		t.Fatal(err)
	}
	defer d2.objs.Close()

	got, err := d2.portsT().dump()
	if err != nil || len(got) != len(have) {
		t.Fatalf("%d ports carried over (%v), want %d", len(got), err, len(have))
	}
	want := have[uint32(f.p1)]
	want.Port.Flags &^= portVxnet
	if e := got[uint32(f.p1)]; e != (dvrPortEntry{Port: want.Port}) {
		t.Errorf("port %d carried over as %+v, want %+v without a copy", f.p1, e, want.Port)
	}
	if e := got[uint32(f.p3)]; e != newer {
		t.Errorf("port %d's newer entry replaced: %+v", f.p3, e)
	}
	if _, err := os.Stat(filepath.Join(dir, "ports_v2")); !os.IsNotExist(err) {
		t.Errorf("the earlier pin stays: %v", err)
	}
	if r := run(t, d2.objs.PortIngress, f.p1, udpPkt(vm3MAC, vm1MAC, ip4("10.0.1.5"), ip4("10.0.1.6"), 64, 10)); r.verdict != actRedirect {
		t.Errorf("a carried-over port's packet: verdict %d; drops %v", r.verdict, drops(t, d2))
	}
	// Its vxnet's flags hold: looked up, not a zeroed copy's.
	expectDrop(t, d2, "spoof_mac", func() runResult {
		return run(t, d2.objs.PortIngress, f.p1, udpPkt(vm3MAC, mac("02:66:66:66:66:66"), ip4("10.0.1.5"), ip4("10.0.1.6"), 64, 10))
	})
}

// TestLoadReplacesAPinThatNoLongerFits: a hostd upgraded across a new
// drop reason finds drops_v1 pinned with fewer entries. The kernel cannot
// resize it, and the programs would not load beside it: the pin is
// replaced (its counters start again) and the programs load.
func TestLoadReplacesAPinThatNoLongerFits(t *testing.T) {
	inNetns(t)
	underlay(t, local)
	cfg := Config{VTEP: local, Chassis: "t", PinRoot: "/sys/fs/bpf/courier-test-" + testenv.ID(), TestHooks: true, KernelEncap: true}
	t.Cleanup(func() { os.RemoveAll(cfg.PinRoot) }) // also when Load fails
	if err := os.MkdirAll(cfg.pinDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	old, err := ebpf.NewMap(&ebpf.MapSpec{Name: "drops_v1", Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 8, MaxEntries: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Pin(filepath.Join(cfg.pinDir(), "drops_v1")); err != nil {
		t.Fatal(err)
	}
	old.Close()
	d, err := Load(cfg) // loadTest would pin elsewhere
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Destroy() })
	if n, want := d.objs.DropsV1.MaxEntries(), uint32(len(pipeline.DropReasons)+1); n != want {
		t.Errorf("drops_v1 has %d entries, want %d", n, want)
	}
	if _, err := d.Drops(); err != nil {
		t.Errorf("drops: %v", err)
	}
}
