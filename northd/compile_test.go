package northd

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/ops/sbops"
	"github.com/courier-sdn/courier/pipeline"
	"github.com/courier-sdn/courier/schema/nbdb"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// fakeNB is an in-memory northbound that emits the changes a monitor
// would deliver, so the compiler can be driven without a database.
type fakeNB struct {
	rows    map[string]map[string]model.Model // table -> uuid -> row
	pending ops.Changes
	seq     int
	// when set, writeStatuses writes only the group and rule statuses
	// it marks, as writeNB does (writepath_test.go)
	groupsDirty *dirtySet
}

func newFakeNB() *fakeNB {
	f := &fakeNB{rows: map[string]map[string]model.Model{}}
	f.put(nbdb.NBGlobalTable, &nbdb.NBGlobal{UUID: "global"})
	return f
}

func tableOf(m model.Model) string {
	switch m.(type) {
	case *nbdb.NBGlobal:
		return nbdb.NBGlobalTable
	case *nbdb.VPC:
		return nbdb.VPCTable
	case *nbdb.Vxnet:
		return nbdb.VxnetTable
	case *nbdb.Port:
		return nbdb.PortTable
	case *nbdb.Route:
		return nbdb.RouteTable
	case *nbdb.SecurityGroup:
		return nbdb.SecurityGroupTable
	case *nbdb.SecurityGroupRule:
		return nbdb.SecurityGroupRuleTable
	}
	panic("unknown model")
}

func (f *fakeNB) uuid() string {
	f.seq++
	return fmt.Sprintf("%08d-0000-4000-8000-000000000000", f.seq)
}

func (f *fakeNB) get(table, u string) model.Model { return f.rows[table][u] }

func (f *fakeNB) put(table string, m model.Model) {
	u := uuidOf(m)
	if f.rows[table] == nil {
		f.rows[table] = map[string]model.Model{}
	}
	old := f.rows[table][u]
	f.rows[table][u] = m
	f.pending.Merge(ops.Changes{Tables: map[string]map[string]*ops.Change{table: {u: {UUID: u, Old: old, New: m}}}})
}

func (f *fakeNB) del(table, u string) {
	old := f.rows[table][u]
	if old == nil {
		return
	}
	delete(f.rows[table], u)
	f.pending.Merge(ops.Changes{Tables: map[string]map[string]*ops.Change{table: {u: {UUID: u, Old: old, New: nil}}}})
}

func uuidOf(m model.Model) string { return reflect.ValueOf(m).Elem().FieldByName("UUID").String() }

func (f *fakeNB) drain() ops.Changes {
	c := f.pending
	f.pending = ops.Changes{}
	return c
}

// all returns every current row as an initial dump.
func (f *fakeNB) all() ops.Changes {
	var c ops.Changes
	for table, rows := range f.rows {
		for u, m := range rows {
			c.Merge(ops.Changes{Tables: map[string]map[string]*ops.Change{table: {u: {UUID: u, New: m}}}})
		}
	}
	return c
}

// writeStatuses does what writeNB does, against the fake.
func (f *fakeNB) writeStatuses(n *compiler) {
	for u, m := range f.rows[nbdb.VPCTable] {
		row := *m.(*nbdb.VPC)
		if want := n.vpcStatus(u); want != nil && !reflect.DeepEqual(row.Status, want) {
			row.Status = want
			f.put(nbdb.VPCTable, &row)
		}
	}
	for u, m := range f.rows[nbdb.VxnetTable] {
		row := *m.(*nbdb.Vxnet)
		if want := n.vxnetStatus(u); want != nil && !reflect.DeepEqual(row.Status, want) {
			row.Status = want
			f.put(nbdb.VxnetTable, &row)
		}
	}
	for u, m := range f.rows[nbdb.RouteTable] {
		row := *m.(*nbdb.Route)
		if want := n.routeStatus(u); want != nil && !reflect.DeepEqual(row.Status, want) {
			row.Status = want
			f.put(nbdb.RouteTable, &row)
		}
	}
	for u, m := range f.rows[nbdb.PortTable] {
		row := *m.(*nbdb.Port)
		want, write := n.portStatus(u, row.Status)
		if write {
			row.Status = want
		}
		dyn, writeDyn := n.portDynamic(u, row.DynamicAddresses)
		if writeDyn {
			row.DynamicAddresses = dyn
		}
		if write || writeDyn {
			f.put(nbdb.PortTable, &row)
		}
	}
	for u, m := range f.rows[nbdb.SNATTable] {
		row := *m.(*nbdb.SNAT)
		if want := n.snat.status(u); want != nil && !reflect.DeepEqual(row.Status, want) {
			row.Status = want
			f.put(nbdb.SNATTable, &row)
		}
	}
	for u, m := range f.rows[nbdb.SecurityGroupTable] {
		row := *m.(*nbdb.SecurityGroup)
		if d := f.groupsDirty; d != nil && !d.full && !d.nbSG[u] {
			continue
		}
		if want := n.sgStatus(u); want != nil && !reflect.DeepEqual(row.Status, want) {
			row.Status = want
			f.put(nbdb.SecurityGroupTable, &row)
		}
	}
	for u, m := range f.rows[nbdb.SecurityGroupRuleTable] {
		row := *m.(*nbdb.SecurityGroupRule)
		if d := f.groupsDirty; d != nil && !d.full && !d.nbSGRule[u] {
			continue
		}
		if want := n.sgRuleStatus(u); want != nil && !reflect.DeepEqual(row.Status, want) {
			row.Status = want
			f.put(nbdb.SecurityGroupRuleTable, &row)
		}
	}
}

// southbound renders what a compiler wants the southbound to hold, in a
// canonical text form.
func southbound(n *compiler) string {
	var lines []string
	for name := range n.topo.vpcByDP {
		d := n.desiredDP(name)
		lines = append(lines, fmt.Sprintf("dp %s %s key=%d vpc=%d mac=%s sg=%v", d.Name, d.Type, d.TunnelKey, d.Vpc, d.GatewayMAC, d.SecurityIdentities))
	}
	for name := range n.topo.vxByDP {
		d := n.desiredDP(name)
		lines = append(lines, fmt.Sprintf("dp %s %s key=%d vpc=%d cidr=%s gw=%s mac=%s", d.Name, d.Type, d.TunnelKey, d.Vpc, *d.Cidr, *d.GatewayIP, d.GatewayMAC))
	}
	for name := range n.ports.names {
		if pb := n.desiredPB(name); pb != nil {
			rc := ""
			if pb.RequestedChassis != nil {
				rc = *pb.RequestedChassis
			}
			limit := -1
			if pb.LearnedLimit != nil {
				limit = *pb.LearnedLimit
			}
			id := 0
			if pb.SgIdentity != nil {
				id = *pb.SgIdentity
			}
			eip := ""
			if pb.Eip != nil {
				eip = *pb.Eip + "@" + *pb.EipNetwork
			}
			lines = append(lines, fmt.Sprintf("pb %s dp=%s vpc=%d key=%d mac=%s ips=%v vips=%v sec=%v rc=%s limit=%d sg=%d eip=%s",
				pb.LogicalPort, pb.Datapath, pb.Vpc, pb.TunnelKey, pb.MAC, pb.IPs, pb.VirtualIPs, pb.PortSecurity, rc, limit, id, eip))
		}
	}
	for dp, fs := range n.flows.byDP {
		if n.desiredDP(dp) == nil {
			continue
		}
		for _, f := range fs {
			lines = append(lines, fmt.Sprintf("lf %s %s %d %s -> %s", dp, f.stage, f.priority, f.match, f.actions))
		}
	}
	for u, c := range n.eips.eips {
		lines = append(lines, fmt.Sprintf("eip %s %s %v", u, c.addr, n.eips.eipStatus(u)))
	}
	for u := range n.eips.nets {
		lines = append(lines, fmt.Sprintf("extnet %s %v", u, n.eips.netStatus(u)))
	}
	for u := range n.snat.rows {
		lines = append(lines, fmt.Sprintf("snat %s %v", u, n.snat.status(u)))
	}
	for k := range n.snat.byKey {
		s := n.snat.sbRow(k)
		lines = append(lines, fmt.Sprintf("sb-snat vpc=%d net=%s addrs=%v block=%d", s.Vpc, s.Network, s.Addresses, s.BlockSize))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// generator makes random, often conflicting, northbound changes.
type generator struct {
	r  *rand.Rand
	nb *fakeNB
	// how many times the mac_prefix changed (each is a full recompute)
	prefixChanges int
}

func (g *generator) pick(table string) (string, model.Model) {
	rows := g.nb.rows[table]
	if len(rows) == 0 {
		return "", nil
	}
	keys := make([]string, 0, len(rows))
	for k := range rows {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	k := keys[g.r.Intn(len(keys))]
	return k, rows[k]
}

var (
	cidrs = []string{"10.0.0.0/24", "10.0.1.0/24", "10.0.0.0/16", "10.0.2.0/25", "10.0.2.128/25", "10.0.1.0/23", "bogus", "10.0.3.0/24", "10.0.4.0/29"}
	macs  = []string{"02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:00:03", "02:00:00:00:00:04", "03:00:00:00:00:01"}
)

func (g *generator) ip() string {
	return fmt.Sprintf("10.0.%d.%d", g.r.Intn(5), 1+g.r.Intn(6))
}

var (
	excludes = []string{"", "10.0.0.2..10.0.0.4", "10.0.1.3 10.0.4.2", "10.0.4.3..10.0.4.5", "bogus", "10.0.2.130..10.0.2.129"}
	prefixes = []string{"", "0a:58:00", "02:00:00", "bad", "0a:c0:00"}
)

// dynamicStep makes changes about dynamic addresses: the allocator's
// inputs (a vxnet's exclude_ips, NB_Global's mac_prefix) and a port's
// dynamic_addresses rewritten by somebody else.
func (g *generator) dynamicStep() {
	r := g.r
	switch r.Intn(3) {
	case 0:
		if _, m := g.pick(nbdb.VxnetTable); m != nil {
			vx := *m.(*nbdb.Vxnet)
			vx.Options = map[string]string{"exclude_ips": excludes[r.Intn(len(excludes))]}
			g.nb.put(nbdb.VxnetTable, &vx)
		}
	case 1:
		old := g.nb.get(nbdb.NBGlobalTable, "global").(*nbdb.NBGlobal)
		gl := *old
		gl.Options = map[string]string{"mac_prefix": prefixes[r.Intn(len(prefixes))]}
		if prefixKey(&nbView{global: old}) != prefixKey(&nbView{global: &gl}) {
			g.prefixChanges++
		}
		g.nb.put(nbdb.NBGlobalTable, &gl)
	case 2:
		if _, m := g.pick(nbdb.PortTable); m != nil {
			p := *m.(*nbdb.Port)
			s := fmt.Sprintf("0a:58:00:00:00:%02x %s", r.Intn(4), g.ip())
			p.DynamicAddresses = &s
			g.nb.put(nbdb.PortTable, &p)
		}
	}
}

func (g *generator) step() {
	r := g.r
	if r.Intn(5) == 0 {
		g.groupStep()
		return
	}
	if r.Intn(6) == 0 {
		g.eipStep()
		return
	}
	if r.Intn(8) == 0 {
		g.snatStep()
		return
	}
	switch k := r.Intn(100); {
	case k < 8: // add a VPC
		g.nb.put(nbdb.VPCTable, &nbdb.VPC{UUID: g.nb.uuid(), Name: fmt.Sprintf("vpc%d", g.nb.seq)})
	case k < 10: // delete a VPC and its children
		if u, m := g.pick(nbdb.VPCTable); m != nil {
			vpc := m.(*nbdb.VPC)
			for _, vx := range vpc.Vxnets {
				if x := g.nb.get(nbdb.VxnetTable, vx); x != nil {
					for _, p := range x.(*nbdb.Vxnet).Ports {
						g.nb.del(nbdb.PortTable, p)
					}
				}
				g.nb.del(nbdb.VxnetTable, vx)
			}
			for _, rt := range vpc.Routes {
				g.nb.del(nbdb.RouteTable, rt)
			}
			if vpc.SNAT != nil {
				g.nb.del(nbdb.SNATTable, *vpc.SNAT)
			}
			g.nb.del(nbdb.VPCTable, u)
		}
	case k < 25: // add a vxnet
		if _, m := g.pick(nbdb.VPCTable); m != nil {
			vpc := *m.(*nbdb.VPC)
			vx := &nbdb.Vxnet{UUID: g.nb.uuid(), Name: fmt.Sprintf("vx%d", g.nb.seq), Cidr: cidrs[r.Intn(len(cidrs))]}
			if r.Intn(3) == 0 {
				n := 1 + r.Intn(4)
				vx.Vni = &n
			}
			g.nb.put(nbdb.VxnetTable, vx)
			vpc.Vxnets = append(append([]string{}, vpc.Vxnets...), vx.UUID)
			g.nb.put(nbdb.VPCTable, &vpc)
		}
	case k < 30: // change a vxnet
		if _, m := g.pick(nbdb.VxnetTable); m != nil {
			vx := *m.(*nbdb.Vxnet)
			if r.Intn(2) == 0 {
				vx.Cidr = cidrs[r.Intn(len(cidrs))]
			} else {
				n := 1 + r.Intn(4)
				vx.Vni = &n
			}
			g.nb.put(nbdb.VxnetTable, &vx)
		}
	case k < 34: // delete a vxnet
		if _, m := g.pick(nbdb.VPCTable); m != nil {
			vpc := *m.(*nbdb.VPC)
			if len(vpc.Vxnets) > 0 {
				i := r.Intn(len(vpc.Vxnets))
				vxu := vpc.Vxnets[i]
				if x := g.nb.get(nbdb.VxnetTable, vxu); x != nil {
					for _, p := range x.(*nbdb.Vxnet).Ports {
						g.nb.del(nbdb.PortTable, p)
					}
				}
				vpc.Vxnets = append(append([]string{}, vpc.Vxnets[:i]...), vpc.Vxnets[i+1:]...)
				g.nb.put(nbdb.VPCTable, &vpc)
				g.nb.del(nbdb.VxnetTable, vxu)
			}
		}
	case k < 65: // add a port
		if _, m := g.pick(nbdb.VxnetTable); m != nil {
			vx := *m.(*nbdb.Vxnet)
			p := &nbdb.Port{UUID: g.nb.uuid(), Name: fmt.Sprintf("p%d", g.nb.seq), MAC: macs[r.Intn(len(macs))]}
			if r.Intn(3) == 0 {
				p.MAC = "dynamic"
			}
			switch r.Intn(8) {
			case 6, 7:
				p.IPs = []string{"dynamic"}
			case 0:
			case 1:
				p.IPs = []string{g.ip(), g.ip()}
			default:
				p.IPs = []string{g.ip()}
			}
			if r.Intn(4) == 0 {
				p.VirtualIPs = []string{g.ip()}
			}
			if r.Intn(3) == 0 {
				c := fmt.Sprintf("hv%d", r.Intn(3))
				p.RequestedChassis = &c
			}
			g.nb.put(nbdb.PortTable, p)
			vx.Ports = append(append([]string{}, vx.Ports...), p.UUID)
			g.nb.put(nbdb.VxnetTable, &vx)
		}
	case k < 78: // change a port
		if _, m := g.pick(nbdb.PortTable); m != nil {
			p := *m.(*nbdb.Port)
			switch r.Intn(7) {
			case 0:
				p.MAC = macs[r.Intn(len(macs))]
			case 1:
				p.IPs = []string{g.ip()}
			case 5:
				p.MAC = "dynamic"
			case 6:
				p.IPs = []string{"dynamic"}
			case 2:
				p.VirtualIPs = []string{g.ip()}
			case 3:
				f := r.Intn(2) == 0
				p.PortSecurity = &f
			case 4:
				p.LearnedLimit = nil
				if l := r.Intn(3); l > 0 {
					p.LearnedLimit = &l
				}
			}
			g.nb.put(nbdb.PortTable, &p)
		}
	case k < 88: // delete a port
		if _, m := g.pick(nbdb.VxnetTable); m != nil {
			vx := *m.(*nbdb.Vxnet)
			if len(vx.Ports) > 0 {
				i := r.Intn(len(vx.Ports))
				pu := vx.Ports[i]
				vx.Ports = append(append([]string{}, vx.Ports[:i]...), vx.Ports[i+1:]...)
				g.nb.put(nbdb.VxnetTable, &vx)
				g.nb.del(nbdb.PortTable, pu)
			}
		}
	case k < 92:
		g.dynamicStep()
	case k < 96: // add a route
		if _, m := g.pick(nbdb.VPCTable); m != nil {
			vpc := *m.(*nbdb.VPC)
			rt := &nbdb.Route{UUID: g.nb.uuid(), Prefix: []string{"0.0.0.0/0", "192.168.0.0/16", "10.0.0.128/25", "172.16.0.0/12"}[r.Intn(4)], Nexthop: g.ip()}
			g.nb.put(nbdb.RouteTable, rt)
			vpc.Routes = append(append([]string{}, vpc.Routes...), rt.UUID)
			g.nb.put(nbdb.VPCTable, &vpc)
		}
	default: // delete a route
		if _, m := g.pick(nbdb.VPCTable); m != nil {
			vpc := *m.(*nbdb.VPC)
			if len(vpc.Routes) > 0 {
				i := r.Intn(len(vpc.Routes))
				ru := vpc.Routes[i]
				vpc.Routes = append(append([]string{}, vpc.Routes[:i]...), vpc.Routes[i+1:]...)
				g.nb.put(nbdb.VPCTable, &vpc)
				g.nb.del(nbdb.RouteTable, ru)
			}
		}
	}
}

// The same northbound must compile to the same southbound whether it was
// reached by a random sequence of incremental changes or compiled at once
// by a fresh compiler.
func TestIncrementalEqualsFull(t *testing.T) {
	for seed := int64(1); seed <= 100; seed++ {
		r := rand.New(rand.NewSource(seed))
		nb := newFakeNB()
		g := &generator{r: r, nb: nb}
		inc := newCompiler()
		var counts portCounts // as the daemon counts them, run by run
		inc.pendingNB = nb.drain()
		inc.run(true)
		counts.track(inc.ports)
		inc.consumed()
		nb.writeStatuses(inc)
		for i := 0; i < 150; i++ {
			for j := 0; j < 1+r.Intn(3); j++ {
				g.step()
			}
			inc.pendingNB.Merge(nb.drain())
			inc.run(false)
			counts.track(inc.ports)
			inc.consumed()
			// As the real northd does, write statuses back; they come
			// back through the monitor in the next batch.
			nb.writeStatuses(inc)
		}
		// Let the last statuses come back.
		inc.pendingNB.Merge(nb.drain())
		inc.run(false)
		counts.track(inc.ports)
		inc.consumed()
		nb.writeStatuses(inc)
		inc.pendingNB.Merge(nb.drain())
		inc.run(false)
		counts.track(inc.ports)
		inc.consumed()

		full := newCompiler()
		full.pendingNB = nb.all()
		full.run(true)
		a, b := southbound(inc), southbound(full)
		if a != b {
			t.Fatalf("seed %d: incremental and full compiles differ:\n%s", seed, diffLines(a, b))
		}
		var fullCounts portCounts
		fullCounts.track(full.ports)
		if counts.valid != fullCounts.valid || counts.refused != fullCounts.refused {
			t.Fatalf("seed %d: ports counted valid/refused %d/%d run by run, %d/%d in full", seed,
				counts.valid, counts.refused, fullCounts.valid, fullCounts.refused)
		}
		if !reflect.DeepEqual(inc.ports.nDynamic, full.ports.nDynamic) {
			t.Fatalf("seed %d: dynamic ports counted %v incrementally, %v in full", seed, inc.ports.nDynamic, full.ports.nDynamic)
		}
		// Only the first run and MAC prefix changes recompute the ports
		// (fewer when two changes land in one batch and cancel out).
		if st := inc.eng.Stats(); st["ports"].Recompute > uint64(1+g.prefixChanges) || st["ports"].Compute == 0 {
			t.Fatalf("seed %d: ports node did not run incrementally: %+v", seed, st["ports"])
		}
	}
}

func diffLines(a, b string) string {
	as, bs := map[string]bool{}, map[string]bool{}
	for _, l := range strings.Split(a, "\n") {
		as[l] = true
	}
	for _, l := range strings.Split(b, "\n") {
		bs[l] = true
	}
	var out []string
	for l := range as {
		if !bs[l] {
			out = append(out, "incremental only: "+l)
		}
	}
	for l := range bs {
		if !as[l] {
			out = append(out, "full only:        "+l)
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// Every flow northd emits parses in the shared language, and flows do not
// multiply with ports.
func TestFlowsParseAndDoNotGrowWithPorts(t *testing.T) {
	count := func(ports int) (int, *compiler) {
		nb := newFakeNB()
		vpc := &nbdb.VPC{UUID: nb.uuid(), Name: "v"}
		for i := 0; i < 3; i++ {
			vx := &nbdb.Vxnet{UUID: nb.uuid(), Name: fmt.Sprintf("x%d", i), Cidr: fmt.Sprintf("10.%d.0.0/16", i)}
			for j := 0; j < ports; j++ {
				p := &nbdb.Port{UUID: nb.uuid(), Name: fmt.Sprintf("p%d-%d", i, j),
					MAC: fmt.Sprintf("02:00:00:%02x:%02x:%02x", i, j>>8, j&255), IPs: []string{fmt.Sprintf("10.%d.%d.%d", i, 1+j/250, 1+j%250)}}
				nb.put(nbdb.PortTable, p)
				vx.Ports = append(vx.Ports, p.UUID)
			}
			nb.put(nbdb.VxnetTable, vx)
			vpc.Vxnets = append(vpc.Vxnets, vx.UUID)
		}
		rt := &nbdb.Route{UUID: nb.uuid(), Prefix: "0.0.0.0/0", Nexthop: "10.0.1.1"}
		nb.put(nbdb.RouteTable, rt)
		vpc.Routes = []string{rt.UUID}
		// Two groups with rules; half the ports in one, some in both.
		web, db := &nbdb.SecurityGroup{UUID: nb.uuid(), Name: "web"}, &nbdb.SecurityGroup{UUID: nb.uuid(), Name: "db"}
		for _, g := range []*nbdb.SecurityGroup{web, db} {
			lo, hi := 80, 90
			r1 := &nbdb.SecurityGroupRule{UUID: nb.uuid(), Direction: "ingress", Protocol: "tcp", PortMin: &lo, PortMax: &hi, RemoteGroup: &web.UUID}
			c := "10.0.0.0/8"
			r2 := &nbdb.SecurityGroupRule{UUID: nb.uuid(), Direction: "egress", Protocol: "udp", RemoteCidr: &c}
			nb.put(nbdb.SecurityGroupRuleTable, r1)
			nb.put(nbdb.SecurityGroupRuleTable, r2)
			g.Rules = []string{r1.UUID, r2.UUID}
			nb.put(nbdb.SecurityGroupTable, g)
		}
		vpc.SecurityGroups = []string{web.UUID, db.UUID}
		for u, m := range nb.rows[nbdb.PortTable] {
			p := *m.(*nbdb.Port)
			switch u[7] % 3 {
			case 0:
				p.SecurityGroups = []string{web.UUID}
			case 1:
				p.SecurityGroups = []string{web.UUID, db.UUID}
			}
			nb.put(nbdb.PortTable, &p)
		}
		nb.put(nbdb.VPCTable, vpc)
		n := newCompiler()
		n.pendingNB = nb.drain()
		n.run(true)
		total := 0
		for _, fs := range n.flows.byDP {
			total += len(fs)
		}
		return total, n
	}
	small, n := count(2)
	big, _ := count(1000)
	if small != big {
		t.Fatalf("flows grow with ports: %d with 6 ports, %d with 3000", small, big)
	}
	for dp, fs := range n.flows.byDP {
		for _, f := range fs {
			if _, err := pipeline.ParseMatch(f.match); err != nil {
				t.Errorf("%s: %v", dp, err)
			}
			if _, err := pipeline.ParseActions(f.actions); err != nil {
				t.Errorf("%s: %v", dp, err)
			}
			if _, ok := pipeline.ByName(f.stage); !ok {
				t.Errorf("%s: unknown stage %s", dp, f.stage)
			}
		}
	}
	if valid := len(n.ports.names); valid != 6 {
		t.Fatalf("compiled %d ports, want 6", valid)
	}
}

// bulkNB is one VPC with 253 vxnets and n ports, as one batch of changes.
func bulkNB(n int) *fakeNB {
	nb := newFakeNB()
	vpc := &nbdb.VPC{UUID: nb.uuid(), Name: "bench"}
	vxs := make([]*nbdb.Vxnet, 253)
	for i := range vxs {
		vxs[i] = &nbdb.Vxnet{UUID: nb.uuid(), Name: fmt.Sprintf("x%d", i), Cidr: fmt.Sprintf("10.%d.%d.0/24", i>>8, i&255)}
		vpc.Vxnets = append(vpc.Vxnets, vxs[i].UUID)
	}
	for p := 0; p < n; p++ {
		vx, host := p%253, 2+p/253
		port := &nbdb.Port{UUID: nb.uuid(), Name: fmt.Sprintf("p%d", p),
			MAC: fmt.Sprintf("02:00:%02x:%02x:%02x:%02x", vx>>8, vx&255, host>>8, host&255),
			IPs: []string{fmt.Sprintf("10.%d.%d.%d", vx>>8, vx&255, host)}}
		nb.put(nbdb.PortTable, port)
		vxs[vx].Ports = append(vxs[vx].Ports, port.UUID)
	}
	for _, vx := range vxs {
		nb.put(nbdb.VxnetTable, vx)
	}
	nb.put(nbdb.VPCTable, vpc)
	return nb
}

// BenchmarkBulkIncremental compiles 64,000 ports arriving in one batch
// after start, as a bulk load reaches a running northd.
func BenchmarkBulkIncremental(b *testing.B) {
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		nb := bulkNB(64000)
		n := newCompiler()
		n.run(true)
		n.consumed()
		n.pendingNB = nb.drain()
		b.StartTimer()
		n.run(false)
	}
}

// BenchmarkSinglePortAdd is one port added to a 64,000-port VPC.
func BenchmarkSinglePortAdd(b *testing.B) {
	nb := bulkNB(64000)
	n := newCompiler()
	n.pendingNB = nb.drain()
	n.run(true)
	n.consumed()
	vx := nb.rows[nbdb.VxnetTable]
	var x *nbdb.Vxnet
	for _, m := range vx {
		if m.(*nbdb.Vxnet).Name == "x7" {
			x = m.(*nbdb.Vxnet)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p := &nbdb.Port{UUID: nb.uuid(), Name: fmt.Sprintf("extra%d", i), MAC: "02:ee:00:00:00:01", IPs: []string{"10.0.7.254"}}
		nb.put(nbdb.PortTable, p)
		cp := *x
		cp.Ports = append(append([]string{}, x.Ports...), p.UUID)
		nb.put(nbdb.VxnetTable, &cp)
		n.pendingNB = nb.drain()
		n.run(false)
		n.consumed()
		// and remove it again
		nb.put(nbdb.VxnetTable, x)
		nb.del(nbdb.PortTable, p.UUID)
		n.pendingNB = nb.drain()
		n.run(false)
		n.consumed()
	}
}

// The inserts northd builds for its bulk writes (through ops.Table, not
// libovsdb's mapper) write exactly what the mapper would, and do not name
// their rows.
func TestDirectInsertsMatchMapper(t *testing.T) {
	m, err := sbdb.FullDatabaseModel()
	if err != nil {
		t.Fatal(err)
	}
	dbm, errs := model.NewDatabaseModel(sbdb.Schema(), m)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	rc, limit := "hv1", 4
	pb := &sbdb.PortBinding{LogicalPort: "p", Datapath: "dp1", Vpc: 3, TunnelKey: 7, MAC: "02:00:00:00:00:01",
		IPs: []string{"10.0.0.7"}, VirtualIPs: []string{"10.0.0.100"}, PortSecurity: true, RequestedChassis: &rc,
		LearnedLimit: &limit, ExternalIDs: map[string]string{"owner": "x"}}
	lean := &sbdb.PortBinding{LogicalPort: "q", Datapath: "dp1", Vpc: 3, TunnelKey: 8, MAC: "02:00:00:00:00:02"}
	lf := &sbdb.LogicalFlow{Datapath: "dp1", Vpc: 3, Stage: "port_sec", Priority: 100, Match: "1",
		Actions: "next;", ExternalIDs: map[string]string{"source": "lflows.go:1"}}
	for _, c := range []struct {
		m  model.Model
		op ovsdb.Operation
	}{{pb, sbops.PortBindings().Insert(pb)}, {lean, sbops.PortBindings().Insert(lean)}, {lf, sbops.LogicalFlows().Insert(lf)}} {
		info, err := dbm.NewModelInfo(c.m)
		if err != nil {
			t.Fatal(err)
		}
		want, err := dbm.Mapper.NewRow(info)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := json.Marshal(c.op.Row)
		exp, _ := json.Marshal(want)
		var g, e map[string]any
		json.Unmarshal(got, &g)
		json.Unmarshal(exp, &e)
		delete(e, "_uuid") // the server picks the UUID; nothing in the transaction names the row
		if c.op.UUIDName != "" || c.op.UUID != "" {
			t.Errorf("%s: insert names its row (%q, %q)", c.op.Table, c.op.UUIDName, c.op.UUID)
		}
		for k, v := range e {
			if _, present := g[k]; !present && (reflect.DeepEqual(v, []any{"set", []any{}}) || reflect.DeepEqual(v, []any{"map", []any{}})) {
				continue // left out: the column's default
			}
			if !reflect.DeepEqual(g[k], v) {
				t.Errorf("%s column %s: direct %v, mapper %v", c.op.Table, k, g[k], v)
			}
		}
		for k := range g {
			if _, ok := e[k]; !ok && !reflect.DeepEqual(g[k], []any{"set", []any{}}) {
				t.Errorf("%s: direct insert writes %s, the mapper does not", c.op.Table, k)
			}
		}
	}
}
