package dataplane

import (
	"bytes"
	"encoding/binary"
	"path/filepath"
	"testing"

	"github.com/cilium/ebpf"
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
	e, _ := d.portsT().lookup(uint32(f.p1))
	want, err := binary.Append(nil, binary.LittleEndian, e.Port)
	if err != nil {
		t.Fatal(err)
	}
	var got []byte
	if err := coll.Maps["ports_v2"].Lookup(uint32(f.p1), &got); err != nil || !bytes.Equal(got, want[:28]) {
		t.Errorf("port %d in the earlier layout: %x %v, want %x", f.p1, got, err, want[:28])
	}
	have, _ := d.portsT().dump()
	if n := mapLen(coll.Maps["ports_v2"]); n != len(have) || n < 2 {
		t.Errorf("%d ports in the earlier layout, %d in the chassis's", n, len(have))
	}

	coll = earlier()
	if err := fillEarlierLayouts(coll, dir, map[string]*ebpf.Map{"ports_v2": coll.Maps["ports_v2"]}); err != nil {
		t.Fatal(err)
	}
	if n := mapLen(coll.Maps["ports_v2"]); n != 0 {
		t.Errorf("the chassis's own ports_v2 written: %d entries", n)
	}
}

func mapLen(m *ebpf.Map) int {
	var k, v []byte
	n := 0
	for it := m.Iterate(); it.Next(&k, &v); {
		n++
	}
	return n
}
