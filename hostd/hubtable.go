package hostd

import (
	"maps"
	"net/netip"

	"github.com/courier-sdn/courier/dataplane"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// A hub holds every binding of the VPCs it serves: 64,000 and more. It
// keeps them row by row, as its VPC sessions report changes, so that a
// new port costs it one binding, not a rebuild of the VPC (a reconcile
// of a 64,000-binding hub took ~0.5 s when it recomputed everything):
// hubTable is that state, and the kernel's hub map is written from its
// changes only (dataplane.BindingTable). The whole computation,
// hubBindings, remains the reference: a property test drives both with
// random histories and compares them.

// hubTable is a hub's bindings, by row.
type hubTable struct {
	kernel *dataplane.BindingTable
	// Per address, every row that gives it a binding: fixed (a port's
	// IP) and learned. The fixed binding with the lowest row UUID wins,
	// else the learned one with the lowest.
	fixed, learned map[bindingKey]map[string]dataplane.Binding
	rows           map[string][]bindingKey // row -> the addresses it gives
	byVPC          map[int]map[string]bool // VPC -> its rows
	// moved holds, for each address whose binding changed since the
	// last teach, the binding it had before (nil: none).
	moved map[bindingKey]*dataplane.Binding
	encap map[string]netip.Addr // what the rows were read with
	// from is the session each VPC's rows come from: a new session
	// (after a reconnection) reports the rows it holds, not those
	// deleted meanwhile, so its VPC is read afresh.
	from    map[int]any
	reloads int // VPCs read afresh, for tests
}

func newHubTable() *hubTable {
	return &hubTable{kernel: dataplane.NewBindingTable(), fixed: map[bindingKey]map[string]dataplane.Binding{},
		learned: map[bindingKey]map[string]dataplane.Binding{}, rows: map[string][]bindingKey{},
		byVPC: map[int]map[string]bool{}, moved: map[bindingKey]*dataplane.Binding{}, from: map[int]any{}}
}

// Row identifiers: the tables' UUIDs, apart.
func pbRow(uuid string) string { return "pb:" + uuid }
func lbRow(uuid string) string { return "lb:" + uuid }

// setRow makes a row give exactly bs (none: the row is gone).
func (h *hubTable) setRow(vpc int, id string, learned bool, bs []dataplane.Binding) {
	side := h.fixed
	if learned {
		side = h.learned
	}
	for _, k := range h.rows[id] {
		delete(side[k], id)
		if len(side[k]) == 0 {
			delete(side, k)
		}
		defer h.settle(k) // once the new bindings are in
	}
	delete(h.rows, id)
	delete(h.byVPC[vpc], id)
	if len(bs) == 0 {
		return
	}
	if h.byVPC[vpc] == nil {
		h.byVPC[vpc] = map[string]bool{}
	}
	h.byVPC[vpc][id] = true
	for _, b := range bs {
		k := bindingKey{b.VPC, b.IP}
		if side[k] == nil {
			side[k] = map[string]dataplane.Binding{}
		}
		side[k][id] = b
		h.rows[id] = append(h.rows[id], k)
		defer h.settle(k)
	}
}

// settle makes the kernel table hold the winner of an address.
func (h *hubTable) settle(k bindingKey) {
	w, ok := lowest(h.fixed[k])
	if !ok {
		w, ok = lowest(h.learned[k])
	}
	dk := dataplane.BindingKey{VPC: k.vpc, IP: k.ip}
	old, had := h.kernel.Get(dk)
	if ok && had && old.Equal(w) || !ok && !had {
		return
	}
	if _, seen := h.moved[k]; !seen {
		if had {
			h.moved[k] = &old
		} else {
			h.moved[k] = nil
		}
	}
	if ok {
		h.kernel.Set(w)
	} else {
		h.kernel.Delete(dk)
	}
}

func lowest(by map[string]dataplane.Binding) (dataplane.Binding, bool) {
	var id string
	for u := range by {
		if id == "" || u < id {
			id = u
		}
	}
	b, ok := by[id]
	return b, ok
}

// dropVPC forgets a VPC's rows: the host is no longer its hub.
func (h *hubTable) dropVPC(vpc int) {
	for id := range h.byVPC[vpc] {
		learned := id[:3] == "lb:"
		h.setRow(vpc, id, learned, nil)
	}
	delete(h.byVPC, vpc)
	delete(h.from, vpc)
}

// loadVPC reads a VPC's rows afresh.
func (h *hubTable) loadVPC(v vpcSnapshot, pbs []*sbdb.PortBinding, lbs []*sbdb.LearnedBinding, encap map[string]netip.Addr) {
	h.dropVPC(v.vpc)
	for _, pb := range pbs {
		h.setRow(v.vpc, pbRow(pb.UUID), false, fixedBindings(pb, v.dps, encap))
	}
	for _, lb := range lbs {
		h.setRow(v.vpc, lbRow(lb.UUID), true, learnedBindings(lb, encap))
	}
}

// update applies one VPC session's changed rows.
func (h *hubTable) update(v vpcSnapshot, ch ops.Changes, encap map[string]netip.Addr) {
	for uuid, c := range ch.Table(sbdb.PortBindingTable) {
		var bs []dataplane.Binding
		if pb, ok := c.New.(*sbdb.PortBinding); ok && pb != nil {
			bs = fixedBindings(pb, v.dps, encap)
		}
		h.setRow(v.vpc, pbRow(uuid), false, bs)
	}
	for uuid, c := range ch.Table(sbdb.LearnedBindingTable) {
		var bs []dataplane.Binding
		if lb, ok := c.New.(*sbdb.LearnedBinding); ok && lb != nil {
			bs = learnedBindings(lb, encap)
		}
		h.setRow(v.vpc, lbRow(uuid), true, bs)
	}
}

// takeMoved returns and clears what moved since the last call.
func (h *hubTable) takeMoved() map[bindingKey]*dataplane.Binding {
	m := h.moved
	h.moved = map[bindingKey]*dataplane.Binding{}
	return m
}

// encapChanged says whether a chassis' tunnel address changed since the
// rows were read; it records encap as what they are read with from now.
func (h *hubTable) encapChanged(encap map[string]netip.Addr) bool {
	changed := !maps.Equal(h.encap, encap)
	h.encap = maps.Clone(encap)
	return changed
}

// refresh brings the table in line with one hub VPC's session: a VPC it
// did not hold, or whose datapaths changed, or whose changes were not
// all reported, or all of them when reload (a tunnel address changed),
// is read afresh; otherwise its changed rows are applied.
func (h *hubTable) refresh(v vpcSnapshot, from any, ch ops.Changes, reload bool, read func() ([]*sbdb.PortBinding, []*sbdb.LearnedBinding), encap map[string]netip.Addr) {
	_, known := h.byVPC[v.vpc]
	if reload || !known || h.from[v.vpc] != from || ch.Overflow || len(ch.Table(sbdb.DatapathTable)) > 0 {
		pbs, lbs := read()
		h.loadVPC(v, pbs, lbs, encap)
		if h.byVPC[v.vpc] == nil {
			h.byVPC[v.vpc] = map[string]bool{} // known, if empty
		}
		h.from[v.vpc] = from
		h.reloads++
		return
	}
	h.update(v, ch, encap)
}
