package northd

import (
	"slices"
	"strings"
	"testing"

	"github.com/courier-sdn/courier/schema/nbdb"
)

var (
	extnetCIDRs = [][]string{{"203.0.113.0/24"}, {"203.0.113.128/25"}, {"198.51.100.0/24", "192.0.2.0/28"}, {"bogus"}}
	eipAddrs    = []string{"203.0.113.10", "203.0.113.200", "198.51.100.7", "192.0.2.3", "192.0.2.99", "203.0.113.255"}
)

// eipStep makes a random change to external networks and EIPs: a network
// added or deleted, an EIP added, bound, unbound or deleted
// (TestIncrementalEqualsFull).
func (g *generator) eipStep() {
	r := g.r
	switch k := r.Intn(100); {
	case k < 15:
		n := &nbdb.ExternalNetwork{UUID: g.nb.uuid(), Name: []string{"internet", "dc", "lab"}[r.Intn(3)], Kind: []string{"public", "physical"}[r.Intn(2)],
			Cidrs: extnetCIDRs[r.Intn(len(extnetCIDRs))]}
		g.nb.put(nbdb.ExternalNetworkTable, n)
	case k < 20:
		if u, m := g.pick(nbdb.ExternalNetworkTable); m != nil {
			for _, e := range m.(*nbdb.ExternalNetwork).Eips {
				g.nb.del(nbdb.EIPTable, e)
			}
			g.nb.del(nbdb.ExternalNetworkTable, u)
		}
	case k < 50:
		if _, m := g.pick(nbdb.ExternalNetworkTable); m != nil {
			n := *m.(*nbdb.ExternalNetwork)
			e := &nbdb.EIP{UUID: g.nb.uuid(), Address: eipAddrs[r.Intn(len(eipAddrs))]}
			if pu, pm := g.pick(nbdb.PortTable); pm != nil && r.Intn(3) > 0 {
				e.Port = &pu
			}
			g.nb.put(nbdb.EIPTable, e)
			n.Eips = append(slices.Clone(n.Eips), e.UUID)
			g.nb.put(nbdb.ExternalNetworkTable, &n)
		}
	case k < 80: // bind or unbind
		if _, m := g.pick(nbdb.EIPTable); m != nil {
			e := *m.(*nbdb.EIP)
			e.Port = nil
			if pu, pm := g.pick(nbdb.PortTable); pm != nil && r.Intn(2) == 0 {
				e.Port = &pu
			}
			g.nb.put(nbdb.EIPTable, &e)
		}
	default: // delete an EIP
		if _, m := g.pick(nbdb.ExternalNetworkTable); m != nil {
			n := *m.(*nbdb.ExternalNetwork)
			if len(n.Eips) > 0 {
				i := r.Intn(len(n.Eips))
				g.nb.del(nbdb.EIPTable, n.Eips[i])
				n.Eips = slices.Delete(slices.Clone(n.Eips), i, i+1)
				g.nb.put(nbdb.ExternalNetworkTable, &n)
			}
		}
	}
}

// An EIP reaches the binding of its port; each refusal is one sentence
// in the EIP's status, and unbinding takes the EIP off the binding.
func TestEIPsCompile(t *testing.T) {
	nb := newFakeNB()
	vpc := &nbdb.VPC{UUID: nb.uuid(), Name: "blue"}
	vx := &nbdb.Vxnet{UUID: nb.uuid(), Name: "web", Cidr: "10.0.1.0/24"}
	p1 := &nbdb.Port{UUID: nb.uuid(), Name: "vm1", MAC: "02:00:00:00:01:05", IPs: []string{"10.0.1.5"}}
	p2 := &nbdb.Port{UUID: nb.uuid(), Name: "vm2", MAC: "02:00:00:00:01:06", IPs: []string{"10.0.1.6"}}
	p3 := &nbdb.Port{UUID: nb.uuid(), Name: "vm3", MAC: "02:00:00:00:01:07", IPs: []string{"10.0.1.6"}} // refused: vm2's address
	vx.Ports = []string{p1.UUID, p2.UUID, p3.UUID}
	vpc.Vxnets = []string{vx.UUID}
	bind := func(p *nbdb.Port) *string { return &p.UUID }
	e := []*nbdb.EIP{
		{UUID: nb.uuid(), Address: "203.0.113.10", Port: bind(p1)},
		{UUID: nb.uuid(), Address: "203.0.113.11", Port: bind(p1)}, // bound twice
		{UUID: nb.uuid(), Address: "192.0.2.1", Port: bind(p2)},    // outside
		{UUID: nb.uuid(), Address: "203.0.113.12", Port: bind(p3)}, // no gateway path
		{UUID: nb.uuid(), Address: "203.0.113.13"},
	}
	net := &nbdb.ExternalNetwork{UUID: nb.uuid(), Name: "internet", Kind: "public", Cidrs: []string{"203.0.113.0/24"}}
	bad := &nbdb.ExternalNetwork{UUID: nb.uuid(), Name: "later", Kind: "public", Cidrs: []string{"203.0.113.0/25"}}
	for _, x := range e {
		net.Eips = append(net.Eips, x.UUID)
		nb.put(nbdb.EIPTable, x)
	}
	nb.put(nbdb.VPCTable, vpc)
	nb.put(nbdb.VxnetTable, vx)
	for _, p := range []*nbdb.Port{p1, p2, p3} {
		nb.put(nbdb.PortTable, p)
	}
	nb.put(nbdb.ExternalNetworkTable, net)
	nb.put(nbdb.ExternalNetworkTable, bad)
	n := newCompiler()
	n.pendingNB = nb.drain()
	n.run(true)
	if pb := n.desiredPB("vm1"); pb == nil || pb.Eip == nil || *pb.Eip != "203.0.113.10" || *pb.EipNetwork != "internet" ||
		pb.EipKind == nil || *pb.EipKind != "public" || pb.EipVpc == nil || *pb.EipVpc != pb.Vpc {
		t.Fatalf("vm1's binding: %+v", pb)
	}
	if pb := n.desiredPB("vm2"); pb == nil || pb.Eip != nil {
		t.Fatalf("vm2's binding carries a refused EIP: %+v", pb)
	}
	for i, want := range []string{"ok", "port vm1 already has EIP 203.0.113.10", "outside external network internet",
		"port vm3 is refused", "ok"} {
		st := n.eips.eipStatus(e[i].UUID)
		if got := st["state"] + st["error"]; !strings.Contains(got, want) {
			t.Errorf("EIP %s: status %v, want %q", e[i].Address, st, want)
		}
	}
	if st := n.eips.netStatus(bad.UUID); !strings.Contains(st["error"], "overlaps 203.0.113.0/24 of external network internet") {
		t.Errorf("overlapping network: %v", st)
	}
	// The network's kind reaches the binding, incrementally: its port's
	// host serves a physical EIP itself.
	for _, kind := range []string{"physical", "public"} {
		n.consumed()
		cp := *net
		cp.Kind = kind
		nb.put(nbdb.ExternalNetworkTable, &cp)
		n.pendingNB.Merge(nb.drain())
		n.run(false)
		if pb := n.desiredPB("vm1"); !n.out.ports["vm1"] || pb == nil || pb.EipKind == nil || *pb.EipKind != kind {
			t.Fatalf("vm1's binding after its network became %s (marked %v): %+v", kind, n.out.ports["vm1"], pb)
		}
	}
	// Unbind, incrementally: the EIP refused for being second takes the
	// port, then, unbound too, the binding carries none.
	for i, want := range []string{"203.0.113.11", ""} {
		n.consumed()
		cp := *e[i]
		cp.Port = nil
		nb.put(nbdb.EIPTable, &cp)
		n.pendingNB.Merge(nb.drain())
		n.run(false)
		if !n.out.ports["vm1"] {
			t.Errorf("unbinding %s did not mark vm1's binding for writing", e[i].Address)
		}
		pb := n.desiredPB("vm1")
		if got := ""; pb != nil && pb.Eip != nil {
			got = *pb.Eip
			if got != want {
				t.Fatalf("vm1's EIP after unbinding %s: %s, want %q", e[i].Address, got, want)
			}
		} else if want != "" {
			t.Fatalf("vm1's binding after unbinding %s: %+v, want EIP %s", e[i].Address, pb, want)
		}
	}
	// A port change alone (the port refused) refuses its EIP.
	step := func(table string, row any) {
		n.consumed()
		nb.put(table, row)
		n.pendingNB.Merge(nb.drain())
		n.run(false)
	}
	cp := *e[4]
	cp.Port = bind(p1)
	step(nbdb.EIPTable, &cp)
	if pb := n.desiredPB("vm1"); pb == nil || pb.Eip == nil || *pb.Eip != "203.0.113.13" {
		t.Fatalf("vm1 after binding 203.0.113.13: %+v", pb)
	}
	bp := *p1
	bp.MAC = "03:00:00:00:00:01" // multicast: refused
	step(nbdb.PortTable, &bp)
	if st := n.eips.eipStatus(e[4].UUID); !strings.Contains(st["error"], "port vm1 is refused") {
		t.Errorf("EIP of a port refused since: %v", st)
	}
}

// Regression: an EIP unbound in the same transaction as a topology
// change (a VPC added) compiled twice in one run, the second compile
// taking the first's result as the previous state, and the port's
// binding was never marked for writing: it kept the EIP in the
// southbound.
func TestEIPUnboundWithATopologyChangeReachesTheBinding(t *testing.T) {
	nb := newFakeNB()
	vpc := &nbdb.VPC{UUID: nb.uuid(), Name: "blue"}
	vx := &nbdb.Vxnet{UUID: nb.uuid(), Name: "web", Cidr: "10.0.1.0/24"}
	p1 := &nbdb.Port{UUID: nb.uuid(), Name: "vm1", MAC: "02:00:00:00:01:05", IPs: []string{"10.0.1.5"}}
	vx.Ports, vpc.Vxnets = []string{p1.UUID}, []string{vx.UUID}
	e := &nbdb.EIP{UUID: nb.uuid(), Address: "203.0.113.10", Port: &p1.UUID}
	net := &nbdb.ExternalNetwork{UUID: nb.uuid(), Name: "internet", Kind: "public", Cidrs: []string{"203.0.113.0/24"}, Eips: []string{e.UUID}}
	for table, row := range map[string]any{nbdb.VPCTable: vpc, nbdb.VxnetTable: vx, nbdb.PortTable: p1, nbdb.EIPTable: e, nbdb.ExternalNetworkTable: net} {
		nb.put(table, row)
	}
	n := newCompiler()
	n.pendingNB = nb.drain()
	n.run(true)
	n.consumed()
	cp := *e
	cp.Port = nil
	nb.put(nbdb.EIPTable, &cp)
	nb.put(nbdb.VPCTable, &nbdb.VPC{UUID: nb.uuid(), Name: "red"})
	n.pendingNB.Merge(nb.drain())
	n.run(false)
	if !n.out.ports["vm1"] && !n.out.full {
		t.Fatalf("vm1's binding, whose EIP was unbound, is not marked for writing (out.ports %v)", n.out.ports)
	}
}
