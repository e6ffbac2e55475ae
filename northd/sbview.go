package northd

import (
	"maps"

	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// sbView is northd's copy of the southbound rows it owns, by the keys it
// compiles them under. It is updated from the monitor and, right after
// each of northd's own commits, from what northd wrote, so that the next
// run does not wait for the monitor to echo the write back. Deletes and
// updates are matched by UUID, so a late event about an older row never
// erases a newer one.
type sbView struct {
	global   *sbdb.SBGlobal
	dps      map[string]string // name -> UUID
	dpByUUID map[string]*sbdb.Datapath
	pbs      map[string]string // logical_port -> UUID
	pbByUUID map[string]*sbdb.PortBinding
	flows    map[string]map[flowKey]string // datapath UUID -> key -> flow UUID
	lfByUUID map[string]*sbdb.LogicalFlow
	// twins: flows another row of the same datapath and key displaced
	// from the index (a northd before flows alike were written as one
	// row wrote both); the next write deletes them, since no compare
	// would ever reach them
	twins   map[string]bool
	snats   *keyedRows[int, sbdb.SNAT, *sbdb.SNAT]                          // by VPC key
	extnets *keyedRows[string, sbdb.ExternalNetwork, *sbdb.ExternalNetwork] // by name
}

// sbDirty is what an SB change makes northd look at again.
type sbDirty struct {
	dps     map[string]bool // datapath names
	ports   map[string]bool // logical ports
	flowDPs map[string]bool // datapath names whose flows changed
	snats   map[int]bool    // VPC keys whose SNAT row changed
	extnets map[string]bool // names of external networks whose row changed
}

func newSBView() *sbView {
	return &sbView{dps: map[string]string{}, dpByUUID: map[string]*sbdb.Datapath{},
		pbs: map[string]string{}, pbByUUID: map[string]*sbdb.PortBinding{},
		flows: map[string]map[flowKey]string{}, lfByUUID: map[string]*sbdb.LogicalFlow{}, twins: map[string]bool{},
		snats: newKeyedRows(func(s *sbdb.SNAT) int { return s.Vpc }, func(s *sbdb.SNAT, u string) { s.UUID = u }),
		extnets: newKeyedRows(func(e *sbdb.ExternalNetwork) string { return e.Name },
			func(e *sbdb.ExternalNetwork, u string) { e.UUID = u })}
}

func (v *sbView) dp(name string) *sbdb.Datapath { return v.dpByUUID[v.dps[name]] }
func (v *sbView) pb(name string) *sbdb.PortBinding {
	return v.pbByUUID[v.pbs[name]]
}

func (v *sbView) dpName(uuid string) string {
	if d := v.dpByUUID[uuid]; d != nil {
		return d.Name
	}
	return ""
}

func (v *sbView) putDP(d *sbdb.Datapath) {
	v.dpByUUID[d.UUID] = d
	v.dps[d.Name] = d.UUID
}

func (v *sbView) delDP(uuid string) {
	if d := v.dpByUUID[uuid]; d != nil {
		if v.dps[d.Name] == uuid {
			delete(v.dps, d.Name)
		}
		delete(v.dpByUUID, uuid)
	}
}

func (v *sbView) putPB(p *sbdb.PortBinding) {
	if old := v.pbByUUID[p.UUID]; old != nil && old.LogicalPort != p.LogicalPort && v.pbs[old.LogicalPort] == p.UUID {
		delete(v.pbs, old.LogicalPort)
	}
	v.pbByUUID[p.UUID] = p
	v.pbs[p.LogicalPort] = p.UUID
}

// resetBindings makes pbs the whole set of bindings.
func (v *sbView) resetBindings(pbs []*sbdb.PortBinding) {
	v.pbs = make(map[string]string, len(pbs))
	v.pbByUUID = make(map[string]*sbdb.PortBinding, len(pbs))
	for _, pb := range pbs {
		v.putPB(pb)
	}
}

func (v *sbView) delPB(uuid string) {
	if p := v.pbByUUID[uuid]; p != nil {
		if v.pbs[p.LogicalPort] == uuid {
			delete(v.pbs, p.LogicalPort)
		}
		delete(v.pbByUUID, uuid)
	}
}

func lfKey(f *sbdb.LogicalFlow) flowKey { return flowKey{f.Stage, f.Priority, f.Match} }

func (v *sbView) putLF(f *sbdb.LogicalFlow) {
	if old := v.lfByUUID[f.UUID]; old != nil {
		v.unindexLF(old)
	}
	v.lfByUUID[f.UUID] = f
	m := v.flows[f.Datapath]
	if m == nil {
		m = map[flowKey]string{}
		v.flows[f.Datapath] = m
	}
	if u, ok := m[lfKey(f)]; ok && u != f.UUID {
		v.twins[u] = true
	}
	m[lfKey(f)] = f.UUID
}

func (v *sbView) unindexLF(f *sbdb.LogicalFlow) {
	if m := v.flows[f.Datapath]; m != nil && m[lfKey(f)] == f.UUID {
		delete(m, lfKey(f))
		if len(m) == 0 {
			delete(v.flows, f.Datapath)
		}
	}
}

func (v *sbView) delLF(uuid string) {
	if f := v.lfByUUID[uuid]; f != nil {
		v.unindexLF(f)
		delete(v.lfByUUID, uuid)
	}
	delete(v.twins, uuid)
}

// ownLF says whether a flow's change is already in the view: northd
// wrote it (the view took the row when the write committed), and what
// the southbound now holds is exactly that. Comparing the datapath's
// every flow again for it would find nothing to do.
func (v *sbView) ownLF(u string, c *ops.Change) bool {
	have := v.lfByUUID[u]
	if c.New == nil {
		return have == nil
	}
	f := c.New.(*sbdb.LogicalFlow)
	return have != nil && have.Datapath == f.Datapath && have.Vpc == f.Vpc && have.Stage == f.Stage &&
		have.Priority == f.Priority && have.Match == f.Match && have.Actions == f.Actions && maps.Equal(have.ExternalIDs, f.ExternalIDs)
}

// apply folds monitor changes in and says what northd should re-check.
func (v *sbView) apply(ch ops.Changes) sbDirty {
	d := sbDirty{dps: map[string]bool{}, ports: map[string]bool{}, flowDPs: map[string]bool{}, snats: map[int]bool{}, extnets: map[string]bool{}}
	for _, c := range ch.Table(sbdb.SBGlobalTable) {
		if c.New == nil {
			v.global = nil
		} else {
			v.global = c.New.(*sbdb.SBGlobal)
		}
	}
	for u, c := range ch.Table(sbdb.DatapathTable) {
		if c.Old != nil {
			d.dps[c.Old.(*sbdb.Datapath).Name] = true
		}
		if c.New == nil {
			v.delDP(u)
		} else {
			dp := c.New.(*sbdb.Datapath)
			v.putDP(dp)
			d.dps[dp.Name] = true
		}
	}
	// Binding events carry only the logical port (see bindwatch.go): the
	// view keeps the columns it knows from reading the bindings or from
	// its own writes. A row it did not know comes in with its name only,
	// so the next run rewrites or deletes it.
	for u, c := range ch.Table(sbdb.PortBindingTable) {
		if c.Old != nil {
			d.ports[c.Old.(*sbdb.PortBinding).LogicalPort] = true
		}
		if c.New == nil {
			v.delPB(u)
			continue
		}
		pb := c.New.(*sbdb.PortBinding)
		if old := v.pbByUUID[u]; old != nil {
			if old.LogicalPort != pb.LogicalPort {
				cp := *old
				cp.LogicalPort = pb.LogicalPort
				v.putPB(&cp)
				d.ports[pb.LogicalPort] = true
			}
			continue
		}
		v.putPB(pb)
		d.ports[pb.LogicalPort] = true
	}
	for u, c := range ch.Table(sbdb.LogicalFlowTable) {
		if v.ownLF(u, c) {
			continue // northd's own write, read back: nothing to check
		}
		if c.Old != nil {
			d.flowDPs[v.dpName(c.Old.(*sbdb.LogicalFlow).Datapath)] = true
		}
		if c.New == nil {
			v.delLF(u)
		} else {
			f := c.New.(*sbdb.LogicalFlow)
			v.putLF(f)
			d.flowDPs[v.dpName(f.Datapath)] = true
		}
	}
	delete(d.flowDPs, "")
	v.snats.update(ch.Table(sbdb.SNATTable), d.snats)
	v.extnets.update(ch.Table(sbdb.ExternalNetworkTable), d.extnets)
	return d
}
