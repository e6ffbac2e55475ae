package dataplane

import (
	"cmp"
	"net/netip"
	"slices"
)

// BindingTable is a hub's bindings as its owner keeps them, entry by
// entry, across Applies: a State that carries one (State.HubTable) has
// Apply write only the entries changed since the last Apply of the same
// table, so that a hub of a 64,000-port VPC pays for a new port, not
// for the VPC. The first Apply of a table, and the next one after a
// failed write, compare every entry with the kernel.
type BindingTable struct {
	m       map[BindingKey]Binding
	changed map[BindingKey]bool
	full    bool
}

// BindingKey is where a binding is found: an address of a VPC.
type BindingKey struct {
	VPC uint32
	IP  netip.Addr
}

// NewBindingTable returns an empty table.
func NewBindingTable() *BindingTable {
	return &BindingTable{m: map[BindingKey]Binding{}, changed: map[BindingKey]bool{}, full: true}
}

// Set makes b the binding of its address.
func (t *BindingTable) Set(b Binding) {
	k := BindingKey{b.VPC, b.IP}
	if old, ok := t.m[k]; ok && old.Equal(b) {
		return
	}
	t.m[k] = b
	t.changed[k] = true
}

// Delete removes the binding of an address, if any.
func (t *BindingTable) Delete(k BindingKey) {
	if _, ok := t.m[k]; ok {
		delete(t.m, k)
		t.changed[k] = true
	}
}

// Get returns the binding of an address.
func (t *BindingTable) Get(k BindingKey) (Binding, bool) {
	b, ok := t.m[k]
	return b, ok
}

// MarkFull makes the next Apply compare every entry with the kernel (a
// periodic check that nothing changed the map behind the table's back).
func (t *BindingTable) MarkFull() { t.full = true }

// Len is how many bindings the table holds.
func (t *BindingTable) Len() int { return len(t.m) }

// All lists the bindings, sorted by VPC and address.
func (t *BindingTable) All() []Binding {
	out := make([]Binding, 0, len(t.m))
	for _, b := range t.m {
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b Binding) int {
		return cmp.Or(cmp.Compare(a.VPC, b.VPC), a.IP.Compare(b.IP))
	})
	return out
}

// Equal says whether two bindings say the same thing.
func (b Binding) Equal(o Binding) bool {
	return b.VPC == o.VPC && b.IP == o.IP && b.VTEP == o.VTEP && b.VNI == o.VNI && mac6(b.MAC) == mac6(o.MAC)
}

func epKey(k BindingKey) dvrEpKey { return dvrEpKey{Vpc: k.VPC, Ip: be32(k.IP)} }

func remoteEp(b Binding) dvrRemoteEp {
	return dvrRemoteEp{Vtep: host32(b.VTEP), Vni: b.VNI, Mac: mac6(b.MAC)}
}

// applyTable writes t's changes to the hub map; have is what the map
// holds when every entry must be compared (nil: read it from the kernel).
func (d *Datapath) applyTable(t *BindingTable, have map[dvrEpKey]dvrRemoteEp) (int, int, error) {
	if t.full || d.hubTable != t {
		want := make(map[dvrEpKey]dvrRemoteEp, len(t.m))
		for k, b := range t.m {
			want[epKey(k)] = remoteEp(b)
		}
		if have == nil {
			var err error
			if have, err = d.hubEpsT().dump(); err != nil {
				return 0, 0, err
			}
		}
		p, r, err := d.hubEpsT().sync(want, have)
		d.settle(t, err)
		return p, r, err
	}
	var puts, dels int
	var failed error
	for k := range t.changed {
		var err error
		if b, ok := t.m[k]; ok {
			if err = d.hubEpsT().put(epKey(k), remoteEp(b)); err == nil {
				puts++
			}
		} else if err = d.hubEpsT().delete(epKey(k)); err == nil {
			dels++
		}
		if err != nil && failed == nil {
			failed = err
		}
	}
	d.settle(t, failed)
	return puts, dels, failed
}

// settle records the outcome of writing t: on success the kernel holds
// it and only later changes are written; on failure everything is
// compared next time.
func (d *Datapath) settle(t *BindingTable, err error) {
	d.hubTable = t
	t.full = err != nil
	clear(t.changed)
}
