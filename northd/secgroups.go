package northd

import (
	"cmp"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"sort"
	"strconv"

	"github.com/ovn-kubernetes/libovsdb/client"

	"github.com/courier-sdn/courier/northd/rules"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/pipeline"
	"github.com/courier-sdn/courier/schema/nbdb"
)

// Security groups are compiled with the topology: they are few (groups ×
// rules, never ports), so any change recompiles the groups of every VPC,
// and a VPC whose groups changed is a changed VPC (its flows are rebuilt).
// Which ports are in which groups is not here: a port's set of groups is
// an identity (identities.go), carried by its binding.
//
// A VPC declared open has no groups enforced. Otherwise a port in no
// group is in the VPC's default group; unless the VPC has a group of its
// own named "default", that group is implicit and allows all egress and
// ingress from its members.

// cGroup is a compiled security group.
type cGroup struct {
	uuid     string // "" for the implicit default group
	name     string
	rules    []*cRule // accepted rules, in a canonical order
	err      string
	implicit bool
}

// cRule is a compiled rule; err is set when it is refused.
type cRule struct {
	uuid    string
	group   string // its group's UUID
	ingress bool
	proto   string
	portMin int
	portMax int
	cidr    netip.Prefix // when remote is ""
	remote  string       // the remote group's name
	err     string
	order   string // String(), by which a group's rules are sorted
}

func (r *cRule) String() string {
	s := "egress " + r.proto
	if r.ingress {
		s = "ingress " + r.proto
	}
	if r.portMin != 0 {
		s += " " + strconv.Itoa(r.portMin) + "-" + strconv.Itoa(r.portMax)
	}
	if r.remote != "" {
		return s + " group " + r.remote
	}
	return s + " " + r.cidr.String()
}

// implicitDefault is the default group of a VPC that declares none.
func implicitDefault() *cGroup {
	return &cGroup{name: rules.DefaultGroup, implicit: true, rules: []*cRule{
		{ingress: false, proto: "any", cidr: netip.MustParsePrefix("0.0.0.0/0")},
		{ingress: true, proto: "any", remote: rules.DefaultGroup},
	}}
}

// compileGroups compiles a VPC's groups and rules into c, recording each
// group and rule (refused ones too) in t for their statuses.
func compileGroups(v *nbView, t *topology, c *cVPC, vpc *nbdb.VPC) {
	c.open = vpc.Open != nil && *vpc.Open
	var gs []*nbdb.SecurityGroup
	for u := range v.vpcSGs[c.uuid] {
		if g := v.sgs[u]; g != nil {
			gs = append(gs, g)
		}
	}
	sort.Slice(gs, func(i, j int) bool {
		if gs[i].Name != gs[j].Name {
			return gs[i].Name < gs[j].Name
		}
		return gs[i].UUID < gs[j].UUID
	})
	byUUID := map[string]*cGroup{}
	for _, g := range gs {
		cg := &cGroup{uuid: g.UUID, name: g.Name}
		t.groups[g.UUID] = cg
		if err := rules.CheckGroupName(g.Name); err != nil {
			cg.err = err.Error()
			continue
		}
		if n := len(c.groups); n > 0 && c.groups[n-1].name == g.Name {
			cg.err = fmt.Sprintf("VPC %s already has a security group named %s", vpc.Name, g.Name)
			continue
		}
		c.groups = append(c.groups, cg)
		byUUID[g.UUID] = cg
	}
	for _, g := range gs {
		cg := byUUID[g.UUID]
		if cg == nil {
			continue
		}
		for u := range v.sgRules[g.UUID] {
			r := v.rules[u]
			if r == nil {
				continue
			}
			cr := compileRule(r, g.UUID, byUUID, vpc.Name)
			t.sgRules[u] = cr
			if cr.err == "" {
				cg.rules = append(cg.rules, cr)
			}
		}
		slices.SortFunc(cg.rules, func(a, b *cRule) int { return cmp.Or(cmp.Compare(a.order, b.order), cmp.Compare(a.uuid, b.uuid)) })
		cg.rules = capRules(cg.rules, g.Name)
	}
	if c.group(rules.DefaultGroup) == nil {
		c.groups = append(c.groups, implicitDefault())
		sort.Slice(c.groups, func(i, j int) bool { return c.groups[i].name < c.groups[j].name })
	}
}

// capRules refuses a group's rules beyond what a host's data plane holds
// in one direction (pipeline.MaxSGRules), the last in the group's order.
func capRules(rs []*cRule, group string) []*cRule {
	var n [2]int
	kept := rs[:0]
	for _, r := range rs {
		dir, name := 0, "egress"
		if r.ingress {
			dir, name = 1, "ingress"
		}
		if n[dir]++; n[dir] > pipeline.MaxSGRules {
			r.err = fmt.Sprintf("security group %s already has %d %s rules, the most a group may have", group, pipeline.MaxSGRules, name)
			continue
		}
		kept = append(kept, r)
	}
	return kept
}

func compileRule(r *nbdb.SecurityGroupRule, group string, groups map[string]*cGroup, vpc string) *cRule {
	cr := &cRule{uuid: r.UUID, group: group, ingress: r.Direction == nbdb.SecurityGroupRuleDirectionIngress}
	checked, err := rules.CheckSGRule(string(r.Protocol), r.PortMin, r.PortMax, r.RemoteCidr, r.RemoteGroup)
	if err != nil {
		cr.err = err.Error()
		return cr
	}
	cr.proto, cr.portMin, cr.portMax, cr.cidr = checked.Proto, checked.PortMin, checked.PortMax, checked.CIDR
	if checked.HasGroup {
		rg := groups[checked.Group]
		if rg == nil {
			cr.err = fmt.Sprintf("its remote group is not a security group of VPC %s", vpc)
			return cr
		}
		cr.remote = rg.name
	}
	cr.order = cr.String()
	return cr
}

// group returns the VPC's accepted group named name, or nil.
func (c *cVPC) group(name string) *cGroup {
	for _, g := range c.groups {
		if g.name == name {
			return g
		}
	}
	return nil
}

func sameGroups(a, b *cVPC) bool {
	if a.open != b.open || len(a.groups) != len(b.groups) {
		return false
	}
	for i := range a.groups {
		ga, gb := a.groups[i], b.groups[i]
		if ga.uuid != gb.uuid || ga.name != gb.name || len(ga.rules) != len(gb.rules) {
			return false
		}
		for j := range ga.rules {
			if *ga.rules[j] != *gb.rules[j] {
				return false
			}
		}
	}
	return true
}

// sgStatus and sgRuleStatus are the statuses northd writes to a group
// and a rule.
func (n *compiler) sgStatus(u string) map[string]string {
	g := n.topo.groups[u]
	if g == nil {
		return nil
	}
	if g.err != "" {
		return errStatus(g.err)
	}
	return okStatus()
}

func (n *compiler) sgRuleStatus(u string) map[string]string {
	r := n.topo.sgRules[u]
	if r == nil {
		return nil
	}
	if r.err != "" {
		return errStatus(r.err)
	}
	return okStatus()
}

// writeGroupStatuses writes the statuses of dirty groups and rules.
func (n *compiler) writeGroupStatuses(c client.Client, d *dirtySet, add func(built, func()) error, refused *refusals) error {
	for _, u := range sortedSet(d.nbSG) {
		if row, want := n.nb.sgs[u], n.sgStatus(u); row != nil && want != nil && !reflect.DeepEqual(row.Status, want) {
			refused.note("Security_Group", row.Name, row.Status, want)
			cp := *row
			cp.Status = want
			if err := add(op(ops.ByUUID(c, &cp).Update(&cp, &cp.Status)), func() { n.nb.sgs[u] = &cp }); err != nil {
				return err
			}
		}
	}
	for _, u := range sortedSet(d.nbSGRule) {
		if row, want := n.nb.rules[u], n.sgRuleStatus(u); row != nil && want != nil && !reflect.DeepEqual(row.Status, want) {
			refused.note("Security_Group_Rule", u, row.Status, want)
			cp := *row
			cp.Status = want
			if err := add(op(ops.ByUUID(c, &cp).Update(&cp, &cp.Status)), func() { n.nb.rules[u] = &cp }); err != nil {
				return err
			}
		}
	}
	return nil
}
