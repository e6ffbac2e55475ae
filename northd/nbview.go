package northd

import (
	"maps"
	"reflect"

	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema/nbdb"
)

// nbView is northd's copy of the northbound, folded from the monitor's
// tracked changes: rows by UUID and each child's parent.
type nbView struct {
	global *nbdb.NBGlobal
	vpcs   map[string]*nbdb.VPC
	vxnets map[string]*nbdb.Vxnet
	ports  map[string]*nbdb.Port
	routes map[string]*nbdb.Route
	sgs    map[string]*nbdb.SecurityGroup
	rules  map[string]*nbdb.SecurityGroupRule

	vxnetVPC  map[string]string // vxnet UUID -> VPC UUID
	portVxnet map[string]string // port UUID -> vxnet UUID
	routeVPC  map[string]string // route UUID -> VPC UUID
	vpcVxnets map[string]map[string]bool
	vxPorts   map[string]map[string]bool
	vpcRoutes map[string]map[string]bool
	sgVPC     map[string]string // group UUID -> VPC UUID
	vpcSGs    map[string]map[string]bool
	ruleSG    map[string]string // rule UUID -> group UUID
	sgRules   map[string]map[string]bool
	// external networks and EIPs (eips.go)
	extnets  map[string]*nbdb.ExternalNetwork
	eips     map[string]*nbdb.EIP
	eipNet   map[string]string // EIP UUID -> network UUID
	netEIPs  map[string]map[string]bool
	portEIPs map[string]int // port UUID -> how many EIPs name it
	// VPCs' SNAT configurations (snat.go), by UUID
	snats map[string]*nbdb.SNAT
}

// nbDelta is what one batch of changes touched.
type nbDelta struct {
	global bool
	vpcs   map[string]bool // UUIDs, inserted, updated or deleted
	vxnets map[string]bool
	ports  map[string]bool
	routes map[string]bool
	// groups: a security group or rule changed, or a VPC's groups
	groups bool
	// groups and rules of which only the status changed (northd's own
	// writes, read back): compared again, nothing recompiled
	sgStatus, ruleStatus map[string]bool
	// eips: an external network or EIP changed
	eips bool
	// snat: a SNAT row changed, or a VPC's snat or name
	snat bool
	// old rows of deleted or changed ports, for the claims they held
	oldPorts map[string]*nbdb.Port
	// ports whose only change is to columns that do not compile (status,
	// external_ids, options)
	statusOnly map[string]bool
}

func newNBView() *nbView {
	return &nbView{
		vpcs: map[string]*nbdb.VPC{}, vxnets: map[string]*nbdb.Vxnet{},
		ports: map[string]*nbdb.Port{}, routes: map[string]*nbdb.Route{},
		vxnetVPC: map[string]string{}, portVxnet: map[string]string{}, routeVPC: map[string]string{},
		vpcVxnets: map[string]map[string]bool{}, vxPorts: map[string]map[string]bool{},
		vpcRoutes: map[string]map[string]bool{},
		sgs:       map[string]*nbdb.SecurityGroup{}, rules: map[string]*nbdb.SecurityGroupRule{},
		sgVPC: map[string]string{}, vpcSGs: map[string]map[string]bool{},
		ruleSG: map[string]string{}, sgRules: map[string]map[string]bool{},
		extnets: map[string]*nbdb.ExternalNetwork{}, eips: map[string]*nbdb.EIP{},
		eipNet: map[string]string{}, netEIPs: map[string]map[string]bool{}, portEIPs: map[string]int{},
		snats: map[string]*nbdb.SNAT{},
	}
}

func newDelta() *nbDelta {
	return &nbDelta{vpcs: map[string]bool{}, vxnets: map[string]bool{}, ports: map[string]bool{},
		routes: map[string]bool{}, oldPorts: map[string]*nbdb.Port{}, statusOnly: map[string]bool{},
		sgStatus: map[string]bool{}, ruleStatus: map[string]bool{}}
}

func (d *nbDelta) empty() bool {
	return !d.global && !d.groups && !d.eips && !d.snat && len(d.vpcs) == 0 && len(d.vxnets) == 0 && len(d.ports) == 0 && len(d.routes) == 0 &&
		len(d.sgStatus) == 0 && len(d.ruleStatus) == 0
}

// apply folds a batch of tracked changes into the view and reports what
// changed, including children whose parent changed.
func (v *nbView) apply(ch ops.Changes) *nbDelta {
	d := newDelta()
	for _, c := range ch.Table(nbdb.NBGlobalTable) {
		d.global = true
		if c.New == nil {
			v.global = nil
		} else {
			v.global = c.New.(*nbdb.NBGlobal)
		}
	}
	for u, c := range ch.Table(nbdb.PortTable) {
		d.ports[u] = true
		old, had := v.ports[u]
		if had {
			d.oldPorts[u] = old
		}
		if c.New == nil {
			delete(v.ports, u)
		} else {
			np := c.New.(*nbdb.Port)
			v.ports[u] = np
			if had && portCompileEqual(old, np) {
				d.statusOnly[u] = true
			}
		}
	}
	for u, c := range ch.Table(nbdb.RouteTable) {
		d.routes[u] = true
		if c.New == nil {
			delete(v.routes, u)
		} else {
			v.routes[u] = c.New.(*nbdb.Route)
		}
	}
	for u, c := range ch.Table(nbdb.VxnetTable) {
		var children []string
		if c.New == nil {
			delete(v.vxnets, u)
			d.vxnets[u] = true
		} else {
			vx := c.New.(*nbdb.Vxnet)
			// A change to the port list alone moves ports (tracked
			// below), not the topology.
			if old := v.vxnets[u]; old == nil || !vxnetEqualButPorts(old, vx) {
				d.vxnets[u] = true
			}
			v.vxnets[u] = vx
			children = vx.Ports
		}
		reparented := map[string]bool{}
		setChildren(v.vxPorts, v.portVxnet, u, children, reparented)
		for p := range reparented {
			d.ports[p] = true
			delete(d.statusOnly, p)
		}
	}
	v.applyGroups(ch, d)
	v.applyEIPs(ch, d)
	for u, c := range ch.Table(nbdb.SNATTable) {
		d.snat = true
		if c.New == nil {
			delete(v.snats, u)
		} else {
			v.snats[u] = c.New.(*nbdb.SNAT)
		}
	}
	for u, c := range ch.Table(nbdb.VPCTable) {
		d.vpcs[u] = true
		if old, vpc := v.vpcs[u], asVPC(c.New); snatMoved(old, vpc) {
			d.snat = true
		}
		var vxs, rts, sgs []string
		if c.New == nil {
			delete(v.vpcs, u)
		} else {
			vpc := c.New.(*nbdb.VPC)
			v.vpcs[u] = vpc
			vxs, rts, sgs = vpc.Vxnets, vpc.Routes, vpc.SecurityGroups
		}
		setChildren(v.vpcVxnets, v.vxnetVPC, u, vxs, d.vxnets)
		setChildren(v.vpcRoutes, v.routeVPC, u, rts, d.routes)
		moved := map[string]bool{}
		setChildren(v.vpcSGs, v.sgVPC, u, sgs, moved)
		d.groups = d.groups || len(moved) > 0
	}
	return d
}

// applyGroups folds in security groups and their rules. They are few
// (groups × rules, never ports): any change recompiles the groups of
// every VPC (topology.go).
func (v *nbView) applyGroups(ch ops.Changes, d *nbDelta) {
	for u, c := range ch.Table(nbdb.SecurityGroupRuleTable) {
		if c.Old != nil && c.New != nil {
			if o, r := c.Old.(*nbdb.SecurityGroupRule), c.New.(*nbdb.SecurityGroupRule); ruleStatusOnly(o, r) {
				v.rules[u], d.ruleStatus[u] = r, true
				continue
			}
		}
		d.groups = true
		if c.New == nil {
			delete(v.rules, u)
		} else {
			v.rules[u] = c.New.(*nbdb.SecurityGroupRule)
		}
	}
	for u, c := range ch.Table(nbdb.SecurityGroupTable) {
		if c.Old != nil && c.New != nil {
			if o, g := c.Old.(*nbdb.SecurityGroup), c.New.(*nbdb.SecurityGroup); groupStatusOnly(o, g) {
				v.sgs[u], d.sgStatus[u] = g, true
				continue
			}
		}
		d.groups = true
		var rs []string
		if c.New == nil {
			delete(v.sgs, u)
		} else {
			g := c.New.(*nbdb.SecurityGroup)
			v.sgs[u] = g
			rs = g.Rules
		}
		setChildren(v.sgRules, v.ruleSG, u, rs, map[string]bool{})
	}
}

// ruleStatusOnly and groupStatusOnly: the row changed in its status
// alone.
func ruleStatusOnly(old, now *nbdb.SecurityGroupRule) bool {
	cp := *now
	cp.Status = old.Status
	return reflect.DeepEqual(&cp, old)
}

func groupStatusOnly(old, now *nbdb.SecurityGroup) bool {
	cp := *now
	cp.Status = old.Status
	return reflect.DeepEqual(&cp, old)
}

// setChildren records parent's children and each child's parent; a child
// that gained or lost this parent is marked changed.
func setChildren(children map[string]map[string]bool, parentOf map[string]string, parent string, now []string, changed map[string]bool) {
	old := children[parent]
	set := make(map[string]bool, len(now))
	for _, c := range now {
		set[c] = true
		if !old[c] {
			parentOf[c] = parent
			changed[c] = true
		}
	}
	for c := range old {
		if !set[c] {
			if parentOf[c] == parent {
				delete(parentOf, c)
			}
			changed[c] = true
		}
	}
	if len(set) == 0 {
		delete(children, parent)
	} else {
		children[parent] = set
	}
}

// routesOf lists a VPC's route UUIDs.
func (v *nbView) routesOf(vpc string) []string {
	var out []string
	for r := range v.vpcRoutes[vpc] {
		out = append(out, r)
	}
	return out
}

func asVPC(m any) *nbdb.VPC {
	if m == nil {
		return nil
	}
	return m.(*nbdb.VPC)
}

// snatMoved: a VPC's change matters to the SNAT configurations (it has
// one, had one, and its name or configuration changed).
func snatMoved(old, now *nbdb.VPC) bool {
	switch {
	case old == nil && now == nil:
		return false
	case old == nil:
		return now.SNAT != nil
	case now == nil:
		return old.SNAT != nil
	}
	return (old.SNAT != nil || now.SNAT != nil) && (!equalPtr(old.SNAT, now.SNAT) || old.Name != now.Name)
}

func vxnetEqualButPorts(a, b *nbdb.Vxnet) bool {
	return a.Name == b.Name && a.Cidr == b.Cidr && equalPtr(a.Gateway, b.Gateway) && equalPtr(a.Vni, b.Vni) &&
		maps.Equal(a.Status, b.Status) && maps.Equal(a.Options, b.Options)
}

func equalPtr[T comparable](a, b *T) bool {
	return (a == nil && b == nil) || (a != nil && b != nil && *a == *b)
}

// applyEIPs folds in external networks and EIPs, and counts the EIPs
// naming each port (a port change matters to the EIPs only then).
func (v *nbView) applyEIPs(ch ops.Changes, d *nbDelta) {
	for u, c := range ch.Table(nbdb.EIPTable) {
		d.eips = true
		if old := v.eips[u]; old != nil && old.Port != nil {
			if v.portEIPs[*old.Port]--; v.portEIPs[*old.Port] <= 0 {
				delete(v.portEIPs, *old.Port)
			}
		}
		if c.New == nil {
			delete(v.eips, u)
		} else {
			e := c.New.(*nbdb.EIP)
			v.eips[u] = e
			if e.Port != nil {
				v.portEIPs[*e.Port]++
			}
		}
	}
	for u, c := range ch.Table(nbdb.ExternalNetworkTable) {
		d.eips = true
		var es []string
		if c.New == nil {
			delete(v.extnets, u)
		} else {
			n := c.New.(*nbdb.ExternalNetwork)
			v.extnets[u] = n
			es = n.Eips
		}
		setChildren(v.netEIPs, v.eipNet, u, es, map[string]bool{})
	}
}
