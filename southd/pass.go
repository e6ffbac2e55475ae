package southd

import (
	"slices"

	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema/nbdb"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// What a decision pass reads. A full pass reads every binding and port:
// at 64,000 ports a few milliseconds of map walks, which under a churn
// of 100 changes a second, one pass each, kept southd at 80-100% of a
// core (#20). A pass between full ones reads only the bindings and
// ports that changed since the last pass (pending), looked up one by
// one in the monitors' caches. A full pass runs when the set may be
// incomplete (the first pass, a tracker overflow), when what decides for
// every binding changed (which chassis are alive, whether this instance
// holds the lock), and every fullPass anyway.

// pending is what changed since the last successful pass.
type pending struct {
	bindings map[string]bool // southbound binding UUIDs
	// names of ports whose binding or northbound row changed (under
	// their old and new names), or that a chassis started or stopped
	// claiming
	names map[string]bool
	full  bool // the sets may be incomplete
}

func newPending() *pending {
	return &pending{bindings: map[string]bool{}, names: map[string]bool{}, full: true}
}

// add records a batch of changes from the southbound (sb) or the
// northbound (nb) monitor.
func (p *pending) add(sb, nb ops.Changes) {
	if sb.Overflow || nb.Overflow {
		p.full = true
	}
	for u, c := range sb.Table(sbdb.PortBindingTable) {
		p.bindings[u] = true
		for _, m := range []any{c.Old, c.New} {
			if pb, ok := m.(*sbdb.PortBinding); ok {
				p.names[pb.LogicalPort] = true
			}
		}
	}
	for _, c := range sb.Table(sbdb.ChassisPrivateTable) {
		var before, after []string
		if o, ok := c.Old.(*sbdb.ChassisPrivate); ok {
			before = o.Claims
		}
		if n, ok := c.New.(*sbdb.ChassisPrivate); ok {
			after = n.Claims
		}
		if slices.Equal(before, after) {
			continue // a heartbeat, every second per chassis: no maps built
		}
		for _, name := range symmetricDifference(before, after) {
			p.names[name] = true
		}
	}
	for _, c := range nb.Table(nbdb.PortTable) {
		for _, m := range []any{c.Old, c.New} {
			if port, ok := m.(*nbdb.Port); ok {
				p.names[port.Name] = true
			}
		}
	}
}

// reset forgets what a successful pass decided from.
func (p *pending) reset() { *p = pending{bindings: map[string]bool{}, names: map[string]bool{}} }

// symmetricDifference lists what is in one of a and b but not both
// (claims: a few per chassis change at a time, of thousands held).
func symmetricDifference(a, b []string) []string {
	in := func(s []string) map[string]bool {
		m := make(map[string]bool, len(s))
		for _, x := range s {
			m[x] = true
		}
		return m
	}
	ma, mb := in(a), in(b)
	var out []string
	for x := range ma {
		if !mb[x] {
			out = append(out, x)
		}
	}
	for x := range mb {
		if !ma[x] {
			out = append(out, x)
		}
	}
	return out
}

// changedBindings are the current rows of the bindings p names, by UUID
// or by port name, each once.
func (p *pending) changedBindings(sb *ops.Session) []*sbdb.PortBinding {
	seen := map[string]bool{}
	var out []*sbdb.PortBinding
	add := func(pb *sbdb.PortBinding) {
		if pb != nil && !seen[pb.UUID] {
			seen[pb.UUID] = true
			out = append(out, pb)
		}
	}
	for u := range p.bindings {
		add(ops.RowByUUID[sbdb.PortBinding](sb, u))
	}
	for name := range p.names {
		add(ops.RowByIndex(sb, &sbdb.PortBinding{LogicalPort: name}))
	}
	slices.SortFunc(out, func(a, b *sbdb.PortBinding) int {
		if a.LogicalPort < b.LogicalPort {
			return -1
		}
		return 1
	})
	return out
}

// changedPorts are the northbound ports p names that exist.
func (p *pending) changedPorts(nb *ops.Session) []*nbdb.Port {
	var out []*nbdb.Port
	for name := range p.names {
		if port := ops.RowByIndex(nb, &nbdb.Port{Name: name}); port != nil {
			out = append(out, port)
		}
	}
	return out
}
