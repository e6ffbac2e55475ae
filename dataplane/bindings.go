package dataplane

import (
	"cmp"
	"errors"
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
	if t.full && d.hubTable == t && have == nil {
		if p, r, checked, err := d.checkTable(t); checked {
			return p, r, err
		}
	}
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

// checkTable is the periodic comparison of the hub map with the table
// it was written from (MarkFull): it reads the map in reused batches and
// looks each entry up in t, repairing an entry that differs or that t
// does not hold, with no copy of either. Copying both into maps, as the
// full sync does, made each check's garbage (two maps of every binding)
// cost an idle 64,000-binding hub more in collection than the check
// itself. checked is false, with nothing settled, when the map lacks some of
// t's entries or could not be read in batches: the full sync then finds
// and writes them.
func (d *Datapath) checkTable(t *BindingTable) (puts, dels int, checked bool, err error) {
	var stale []dvrEpKey
	var wrong []BindingKey
	matched := 0
	err = d.hubEpsT().eachBatch(func(k dvrEpKey, v dvrRemoteEp) {
		bk := BindingKey{k.Vpc, fromBE32(k.Ip)}
		b, held := t.m[bk]
		switch {
		case !held:
			stale = append(stale, k)
		case remoteEp(b) != v:
			wrong = append(wrong, bk)
		default:
			matched++
		}
	})
	if err != nil || matched+len(wrong) != len(t.m) {
		return 0, 0, false, nil
	}
	var errs []error
	for _, k := range wrong {
		if err := d.hubEpsT().put(epKey(k), remoteEp(t.m[k])); err != nil {
			errs = append(errs, err)
			continue
		}
		puts++
	}
	for _, k := range stale {
		if err := d.hubEpsT().delete(k); err != nil {
			errs = append(errs, err)
			continue
		}
		dels++
	}
	err = errors.Join(errs...)
	d.settle(t, err)
	return puts, dels, true, err
}

// settle records the outcome of writing t: on success the kernel holds
// it and only later changes are written; on failure everything is
// compared next time.
func (d *Datapath) settle(t *BindingTable, err error) {
	d.hubTable = t
	t.full = err != nil
	clear(t.changed)
}
