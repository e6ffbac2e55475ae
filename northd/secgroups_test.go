package northd

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/courier-sdn/courier/pipeline"
	"github.com/courier-sdn/courier/schema/nbdb"
)

var sgNames = []string{"web", "db", "default", "ops", "bad,name"}

// groupStep makes a random change to security groups: a group added or
// deleted, a rule added or deleted, a port's groups set, a VPC opened or
// closed (TestIncrementalEqualsFull).
func (g *generator) groupStep() {
	r := g.r
	switch k := r.Intn(100); {
	case k < 20: // add a group, sometimes named like another
		if _, m := g.pick(nbdb.VPCTable); m != nil {
			vpc := *m.(*nbdb.VPC)
			sg := &nbdb.SecurityGroup{UUID: g.nb.uuid(), Name: sgNames[r.Intn(len(sgNames))]}
			g.nb.put(nbdb.SecurityGroupTable, sg)
			vpc.SecurityGroups = append(slices.Clone(vpc.SecurityGroups), sg.UUID)
			g.nb.put(nbdb.VPCTable, &vpc)
		}
	case k < 30: // delete a group
		if _, m := g.pick(nbdb.VPCTable); m != nil {
			vpc := *m.(*nbdb.VPC)
			if len(vpc.SecurityGroups) > 0 {
				i := r.Intn(len(vpc.SecurityGroups))
				u := vpc.SecurityGroups[i]
				vpc.SecurityGroups = slices.Delete(slices.Clone(vpc.SecurityGroups), i, i+1)
				g.nb.put(nbdb.VPCTable, &vpc)
				g.nb.del(nbdb.SecurityGroupTable, u)
			}
		}
	case k < 55: // add a rule
		if _, m := g.pick(nbdb.SecurityGroupTable); m != nil {
			sg := *m.(*nbdb.SecurityGroup)
			rule := &nbdb.SecurityGroupRule{UUID: g.nb.uuid(), Direction: []nbdb.SecurityGroupRuleDirection{"ingress", "egress"}[r.Intn(2)],
				Protocol: []nbdb.SecurityGroupRuleProtocol{"tcp", "udp", "icmp", "any"}[r.Intn(4)]}
			if r.Intn(2) == 0 {
				lo, hi := 1+r.Intn(100), 50+r.Intn(100)
				rule.PortMin, rule.PortMax = &lo, &hi
			}
			if ou, om := g.pick(nbdb.SecurityGroupTable); om != nil && r.Intn(2) == 0 {
				rule.RemoteGroup = &ou
			} else {
				c := []string{"0.0.0.0/0", "10.0.0.0/8", "10.0.0.1/8"}[r.Intn(3)]
				rule.RemoteCidr = &c
			}
			g.nb.put(nbdb.SecurityGroupRuleTable, rule)
			sg.Rules = append(slices.Clone(sg.Rules), rule.UUID)
			g.nb.put(nbdb.SecurityGroupTable, &sg)
		}
	case k < 65: // delete a rule
		if _, m := g.pick(nbdb.SecurityGroupTable); m != nil {
			sg := *m.(*nbdb.SecurityGroup)
			if len(sg.Rules) > 0 {
				i := r.Intn(len(sg.Rules))
				u := sg.Rules[i]
				sg.Rules = slices.Delete(slices.Clone(sg.Rules), i, i+1)
				g.nb.put(nbdb.SecurityGroupTable, &sg)
				g.nb.del(nbdb.SecurityGroupRuleTable, u)
			}
		}
	case k < 92: // set a port's groups (any group: some of another VPC)
		if _, m := g.pick(nbdb.PortTable); m != nil {
			p := *m.(*nbdb.Port)
			p.SecurityGroups = nil
			for range r.Intn(3) {
				if u, sg := g.pick(nbdb.SecurityGroupTable); sg != nil {
					p.SecurityGroups = append(p.SecurityGroups, u)
				}
			}
			g.nb.put(nbdb.PortTable, &p)
		}
	default: // open or close a VPC
		if _, m := g.pick(nbdb.VPCTable); m != nil {
			vpc := *m.(*nbdb.VPC)
			open := r.Intn(2) == 0
			vpc.Open = &open
			g.nb.put(nbdb.VPCTable, &vpc)
		}
	}
}

// Ports in the same groups share an identity; a port in no group is in
// the default group; an open VPC has none; identities are stable when
// other sets come and go, and security groups' flows do not grow with
// ports.
func TestIdentities(t *testing.T) {
	nb := newFakeNB()
	web := &nbdb.SecurityGroup{UUID: nb.uuid(), Name: "web"}
	db := &nbdb.SecurityGroup{UUID: nb.uuid(), Name: "db"}
	nb.put(nbdb.SecurityGroupTable, web)
	nb.put(nbdb.SecurityGroupTable, db)
	vx := &nbdb.Vxnet{UUID: nb.uuid(), Name: "x", Cidr: "10.0.0.0/24"}
	open := &nbdb.Vxnet{UUID: nb.uuid(), Name: "o", Cidr: "10.0.0.0/24"}
	sets := [][]string{nil, {web.UUID}, {web.UUID, db.UUID}, {db.UUID, web.UUID}, {web.UUID}}
	for i, gs := range sets {
		p := &nbdb.Port{UUID: nb.uuid(), Name: fmt.Sprintf("p%d", i), MAC: fmt.Sprintf("02:00:00:00:00:%02x", i+1),
			IPs: []string{fmt.Sprintf("10.0.0.%d", i+2)}, SecurityGroups: gs}
		nb.put(nbdb.PortTable, p)
		vx.Ports = append(vx.Ports, p.UUID)
	}
	po := &nbdb.Port{UUID: nb.uuid(), Name: "po", MAC: "02:00:00:00:01:01", IPs: []string{"10.0.0.9"}}
	nb.put(nbdb.PortTable, po)
	open.Ports = []string{po.UUID}
	nb.put(nbdb.VxnetTable, vx)
	nb.put(nbdb.VxnetTable, open)
	yes := true
	nb.put(nbdb.VPCTable, &nbdb.VPC{UUID: nb.uuid(), Name: "v", Vxnets: []string{vx.UUID}, SecurityGroups: []string{web.UUID, db.UUID}})
	nb.put(nbdb.VPCTable, &nbdb.VPC{UUID: nb.uuid(), Name: "lab", Vxnets: []string{open.UUID}, Open: &yes})
	n := newCompiler()
	n.pendingNB = nb.drain()
	n.run(true)
	n.consumed()
	id := func(name string) int {
		pb := n.desiredPB(name)
		if pb == nil || pb.SgIdentity == nil {
			return 0
		}
		return *pb.SgIdentity
	}
	if id("p0") == 0 || id("p1") == 0 || id("p2") == 0 || id("p0") == id("p1") || id("p1") == id("p2") ||
		id("p2") != id("p3") || id("p1") != id("p4") || id("po") != 0 {
		t.Fatalf("identities p0..p4, po: %d %d %d %d %d %d", id("p0"), id("p1"), id("p2"), id("p3"), id("p4"), id("po"))
	}
	dp := n.desiredDP("vpc:v")
	if got := dp.SecurityIdentities[fmt.Sprint(id("p2"))]; got != "db,web" {
		t.Errorf("identity %d is %q, want db,web (table %v)", id("p2"), got, dp.SecurityIdentities)
	}
	if dp.SecurityIdentities[fmt.Sprint(id("p0"))] != "default" {
		t.Errorf("a port in no group is not in the default group: %v", dp.SecurityIdentities)
	}
	if d := n.desiredDP("vpc:lab"); len(d.SecurityIdentities) != 0 {
		t.Errorf("an open VPC has identities: %v", d.SecurityIdentities)
	}
	// p1 leaves web for db: a new set, the others keep their numbers.
	before := map[string]int{"p0": id("p0"), "p2": id("p2"), "p4": id("p4")}
	p1 := *nb.get(nbdb.PortTable, vx.Ports[1]).(*nbdb.Port)
	p1.SecurityGroups = []string{db.UUID}
	nb.put(nbdb.PortTable, &p1)
	n.pendingNB = nb.drain()
	n.run(false)
	for name, was := range before {
		if id(name) != was {
			t.Errorf("%s's identity moved from %d to %d", name, was, id(name))
		}
	}
	if got := n.desiredDP("vpc:v").SecurityIdentities[fmt.Sprint(id("p1"))]; got != "db" {
		t.Errorf("p1 in db has identity %d = %q", id("p1"), got)
	}
	if !n.idents.changedPorts[p1.UUID] || len(n.idents.changedPorts) != 1 {
		t.Errorf("changed ports: %v", n.idents.changedPorts)
	}
	if st := n.vpcStatus(n.nb.vxnetVPC[vx.UUID]); !slices.Contains(strings.Fields(st["security_identities"]), fmt.Sprintf("%d=db", id("p1"))) {
		t.Errorf("VPC status records %q", st["security_identities"])
	}
}

// A group's rules past what a host holds in one direction are refused
// with a status, the last in the group's order; the other direction is
// counted apart.
func TestGroupRulesCapped(t *testing.T) {
	var rs []*cRule
	for i := 0; i <= pipeline.MaxSGRules; i++ {
		rs = append(rs, &cRule{ingress: true, proto: "tcp", portMin: i + 1, portMax: i + 1})
	}
	rs = append(rs, &cRule{proto: "any"}, &cRule{proto: "icmp"})
	last := rs[pipeline.MaxSGRules]
	kept := capRules(rs, "web")
	if len(kept) != pipeline.MaxSGRules+2 {
		t.Fatalf("kept %d rules, want %d", len(kept), pipeline.MaxSGRules+2)
	}
	if want := "security group web already has 1024 ingress rules, the most a group may have"; last.err != want {
		t.Errorf("the 1,025th ingress rule: %q, want %q", last.err, want)
	}
}
