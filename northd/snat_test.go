package northd

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/courier-sdn/courier/schema/nbdb"
)

var snatAddrSets = [][]string{{"203.0.113.20"}, {"203.0.113.20", "203.0.113.9"}, {"198.51.100.7"}, {"203.0.113.10"}, {"192.0.2.5", "203.0.113.21"}}

// snatStep makes a random change to SNAT configurations: one set on a
// VPC, changed, or taken off (TestIncrementalEqualsFull).
func (g *generator) snatStep() {
	r := g.r
	_, m := g.pick(nbdb.VPCTable)
	if m == nil {
		return
	}
	vpc := *m.(*nbdb.VPC)
	if vpc.SNAT != nil && r.Intn(3) == 0 {
		g.nb.del(nbdb.SNATTable, *vpc.SNAT)
		vpc.SNAT = nil
		g.nb.put(nbdb.VPCTable, &vpc)
		return
	}
	netU, _ := g.pick(nbdb.ExternalNetworkTable)
	if netU == "" {
		netU = "missing"
	}
	s := &nbdb.SNAT{UUID: g.nb.uuid(), ExternalNetwork: netU, Addresses: snatAddrSets[r.Intn(len(snatAddrSets))]}
	if vpc.SNAT != nil {
		s.UUID = *vpc.SNAT
		if old := g.nb.get(nbdb.SNATTable, s.UUID); old != nil {
			s.Status = old.(*nbdb.SNAT).Status
		}
	}
	if b := []int{0, 64, 1024, 1000, 32768}[r.Intn(5)]; b != 0 {
		s.BlockSize = &b
	}
	g.nb.put(nbdb.SNATTable, s)
	if vpc.SNAT == nil {
		vpc.SNAT = &s.UUID
		g.nb.put(nbdb.VPCTable, &vpc)
	}
}

// A VPC's SNAT becomes one southbound row with its addresses in numeric
// order; each refusal is one sentence in the row's status, the same
// whichever order the rows arrive in.
func TestSNATCompile(t *testing.T) {
	build := func(order []int) (*compiler, []*nbdb.SNAT) {
		nb := newFakeNB()
		net := &nbdb.ExternalNetwork{UUID: "net-pub", Name: "internet", Kind: "public", Cidrs: []string{"203.0.113.0/24"}}
		phys := &nbdb.ExternalNetwork{UUID: "net-phys", Name: "dc", Kind: "physical", Cidrs: []string{"198.51.100.0/24"}}
		eip := &nbdb.EIP{UUID: "eip-1", Address: "203.0.113.50"}
		net.Eips = []string{eip.UUID}
		size := func(n int) *int { return &n }
		snats := []*nbdb.SNAT{
			{UUID: "s-a", ExternalNetwork: net.UUID, Addresses: []string{"203.0.113.10", "203.0.113.9"}},
			{UUID: "s-b", ExternalNetwork: net.UUID, Addresses: []string{"203.0.113.9"}},                         // a's
			{UUID: "s-c", ExternalNetwork: phys.UUID, Addresses: []string{"198.51.100.5"}},                       // physical
			{UUID: "s-d", ExternalNetwork: net.UUID, Addresses: []string{"192.0.2.1"}},                           // outside
			{UUID: "s-e", ExternalNetwork: net.UUID, Addresses: []string{"203.0.113.50"}},                        // an EIP
			{UUID: "s-f", ExternalNetwork: net.UUID, Addresses: []string{"203.0.113.60"}, BlockSize: size(1000)}, // not a power of two
			{UUID: "s-g", ExternalNetwork: "gone", Addresses: []string{"203.0.113.61"}},                          // no network
			{UUID: "s-h", ExternalNetwork: net.UUID, Addresses: []string{"203.0.113.62"}, BlockSize: size(32768)},
		}
		rows := []func(){
			func() { nb.put(nbdb.ExternalNetworkTable, net) },
			func() { nb.put(nbdb.ExternalNetworkTable, phys) },
			func() { nb.put(nbdb.EIPTable, eip) },
		}
		for i, s := range snats {
			vpc := &nbdb.VPC{UUID: fmt.Sprintf("vpc-%d", i), Name: fmt.Sprintf("%c", 'a'+i), SNAT: &s.UUID}
			rows = append(rows, func() { nb.put(nbdb.SNATTable, s); nb.put(nbdb.VPCTable, vpc) })
		}
		n := newCompiler()
		n.run(true)
		for _, i := range order {
			n.consumed()
			rows[i%len(rows)]()
			n.pendingNB.Merge(nb.drain())
			n.run(false)
		}
		return n, snats
	}
	want := []string{"ok", "SNAT address 203.0.113.9 is VPC a's", "external network dc is physical: SNAT needs a public network",
		"SNAT address 192.0.2.1 is outside external network internet", "SNAT address 203.0.113.50 is an EIP",
		"block size 1000 is not a power of two", "its external network is missing", "ok"}
	forward := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	backward := slices.Clone(forward)
	slices.Reverse(backward)
	for _, order := range [][]int{forward, backward} {
		n, snats := build(order)
		for i, w := range want {
			st := n.snat.status(snats[i].UUID)
			if got := st["state"] + st["error"]; !strings.Contains(got, w) {
				t.Errorf("order %v: SNAT of VPC %c: status %v, want %q", order, 'a'+i, st, w)
			}
		}
		a := n.snat.sbRow(n.topo.vpcs["vpc-0"].key)
		if a == nil || !slices.Equal(a.Addresses, []string{"203.0.113.9", "203.0.113.10"}) || a.BlockSize != 1024 || a.Network != "internet" {
			t.Errorf("order %v: VPC a's southbound SNAT: %+v", order, a)
		}
		if h := n.snat.sbRow(n.topo.vpcs["vpc-7"].key); h == nil || h.BlockSize != 32768 {
			t.Errorf("order %v: VPC h's southbound SNAT: %+v", order, h)
		}
		if len(n.snat.byKey) != 2 {
			t.Errorf("order %v: %d SNAT rows accepted, want 2", order, len(n.snat.byKey))
		}
	}
}

// Regression: deleting a VPC with SNAT (its SNAT row goes with it)
// compiled the configurations twice in one run (once for the rows, once
// for the topology), the second compile taking the first's result as
// the previous state: the VPC's southbound SNAT row was never marked
// for deletion and stayed.
func TestSNATRowOfADeletedVPCIsDeleted(t *testing.T) {
	nb := newFakeNB()
	net := &nbdb.ExternalNetwork{UUID: "net-pub", Name: "internet", Kind: "public", Cidrs: []string{"203.0.113.0/24"}}
	s := &nbdb.SNAT{UUID: "s-a", ExternalNetwork: net.UUID, Addresses: []string{"203.0.113.10"}}
	vpc := &nbdb.VPC{UUID: "vpc-a", Name: "a", SNAT: &s.UUID}
	nb.put(nbdb.ExternalNetworkTable, net)
	nb.put(nbdb.SNATTable, s)
	nb.put(nbdb.VPCTable, vpc)
	n := newCompiler()
	n.pendingNB = nb.drain()
	n.run(true)
	key := n.topo.vpcs[vpc.UUID].key
	if n.snat.sbRow(key) == nil {
		t.Fatal("no southbound SNAT row compiled")
	}
	n.consumed()
	nb.del(nbdb.SNATTable, s.UUID)
	nb.del(nbdb.VPCTable, vpc.UUID)
	n.pendingNB.Merge(nb.drain())
	n.run(false)
	if !n.out.snats[key] && !n.out.full {
		t.Fatalf("the deleted VPC's SNAT row (key %d) is not marked for writing: %v", key, n.out.snats)
	}
}
