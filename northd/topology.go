package northd

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"

	"github.com/courier-sdn/courier/northd/rules"
	"github.com/courier-sdn/courier/schema/nbdb"
)

// Topology: VPCs, vxnets and routes, validated, with tunnel keys and VNIs.
//
// Key and VNI allocation must be a function of the northbound alone, so
// that any northd, restarted or fresh, compiles the same southbound: the
// allocated values are recorded in the rows' status (VPC status:tunnel_key,
// Vxnet status:vni) and read back as claims. Conflicts are settled the same
// way everywhere: the row whose status says it holds the value keeps it,
// then the one this northd compiled before, then the lowest name; a
// refused row's status says why.

const maxKey = 16777215

// cVPC is a compiled VPC.
type cVPC struct {
	uuid, name string
	key        int
	gwMAC      string
	vxnets     []string // accepted vxnet UUIDs, by name
	routes     []*cRoute
	open       bool      // no security groups enforced
	groups     []*cGroup // accepted groups by name, the default one included
}

// cVxnet is a compiled vxnet; err is set when it is refused.
type cVxnet struct {
	uuid, name, vpc string
	cidr            netip.Prefix
	gw              netip.Addr
	vni             int
	err             string
	dhcp            rules.DHCP // its DHCP options (Off when refused)
	dhcpErr         string     // why its DHCP options were refused
	// options:exclude_ips as written (parsed by the allocator, ipam.go),
	// and why it is refused: dynamic ports of the vxnet are then refused
	exclude, excludeErr string
}

// cRoute is a compiled static route.
type cRoute struct {
	uuid, vpc string
	prefix    netip.Prefix
	nexthop   netip.Addr
	vni       int // the vxnet the next hop is in
	err       string
}

type topology struct {
	vpcs   map[string]*cVPC   // by NB UUID
	vxnets map[string]*cVxnet // by NB UUID, refused ones included
	routes map[string]*cRoute
	// security groups and rules by NB UUID, refused ones included
	groups  map[string]*cGroup
	sgRules map[string]*cRule
	// southbound datapath name -> NB UUID
	vpcByDP, vxByDP map[string]string

	// tracked changes of the last compile
	changedVPCs   map[string]bool
	changedVxnets map[string]bool
	changedRoutes map[string]bool
	// changed VPCs of which only the security groups changed (their
	// rules, or whether the VPC is open): only the sg stages' flows of
	// their routing datapath follow (lflows.go)
	groupsOnlyVPCs map[string]bool
}

func newTopology() *topology {
	return &topology{vpcs: map[string]*cVPC{}, vxnets: map[string]*cVxnet{}, routes: map[string]*cRoute{},
		groups: map[string]*cGroup{}, sgRules: map[string]*cRule{},
		vpcByDP: map[string]string{}, vxByDP: map[string]string{}}
}

func (t *topology) clearTracked() {
	t.changedVPCs, t.changedVxnets, t.changedRoutes, t.groupsOnlyVPCs = nil, nil, nil, nil
}

func statusInt(status map[string]string, key string) int {
	n, err := strconv.Atoi(status[key])
	if err != nil || n < 1 || n > maxKey {
		return 0
	}
	return n
}

// compileTopology compiles every VPC, vxnet and route of the view. prev is
// the previous result (its allocations count as claims), or nil.
func compileTopology(v *nbView, prev *topology) *topology {
	t := newTopology()
	allocVPCKeys(v, prev, t)
	vnis := allocVNIs(v, prev)

	for vpcUUID, vpc := range v.vpcs {
		c := t.vpcs[vpcUUID]
		// Vxnets: those already accepted first, then by name; a vxnet is
		// refused if its addresses are bad, it lost its VNI, or it overlaps
		// one accepted before it.
		var vxs []*nbdb.Vxnet
		for u := range v.vpcVxnets[vpcUUID] {
			if vx := v.vxnets[u]; vx != nil {
				vxs = append(vxs, vx)
			}
		}
		sort.Slice(vxs, func(i, j int) bool {
			ai, aj := vxs[i].Status["state"] == "ok", vxs[j].Status["state"] == "ok"
			if ai != aj {
				return ai
			}
			return vxs[i].Name < vxs[j].Name
		})
		accepted := map[string]netip.Prefix{}
		var subnets []rules.Subnet
		for _, vx := range vxs {
			cv := &cVxnet{uuid: vx.UUID, name: vx.Name, vpc: vpcUUID}
			t.vxnets[vx.UUID] = cv
			cv.err = checkVxnet(vx, cv)
			if d, err := rules.DHCPOptions(vx.Options, vpc.Name); err != nil {
				// A bad option turns the vxnet's DHCP off, not the vxnet.
				cv.dhcp, cv.dhcpErr = rules.DHCP{Off: true}, err.Error()
			} else {
				cv.dhcp = d
			}
			if cv.err == "" {
				cv.exclude = vx.Options["exclude_ips"]
				if _, err := rules.ExcludeIPs(vx.Name, cv.cidr, cv.exclude); err != nil {
					cv.excludeErr = err.Error()
				}
			}
			if cv.err == "" {
				if r := vnis[vx.UUID]; r.err != "" {
					cv.err = r.err
				} else {
					cv.vni = r.vni
				}
			}
			if cv.err == "" {
				if o := rules.Overlap(cv.cidr, accepted); o != "" {
					cv.err = fmt.Sprintf("CIDR %s overlaps vxnet %s (%s) in VPC %s", cv.cidr, o, accepted[o], vpc.Name)
				}
			}
			if cv.err == "" {
				accepted[vx.Name] = cv.cidr
				subnets = append(subnets, rules.Subnet{Name: vx.Name, CIDR: cv.cidr, Gateway: cv.gw})
				c.vxnets = append(c.vxnets, vx.UUID)
			}
		}
		sort.Slice(c.vxnets, func(i, j int) bool { return t.vxnets[c.vxnets[i]].name < t.vxnets[c.vxnets[j]].name })
		t.vpcByDP[vpcDP(c.name)] = c.uuid
		for _, u := range c.vxnets {
			t.vxByDP[vxnetDP(t.vxnets[u].name)] = u
		}
		compileRoutes(v, t, c, vpc, subnets)
		compileGroups(v, t, c, vpc)
	}
	if prev != nil {
		t.diff(prev)
	}
	return t
}

func checkVxnet(vx *nbdb.Vxnet, cv *cVxnet) string {
	p, err := rules.ParseCIDR(vx.Cidr)
	if err != nil {
		return err.Error()
	}
	cv.cidr = p
	cv.gw = rules.DefaultGateway(p)
	if vx.Gateway != nil {
		gw, err := rules.ParseIP(*vx.Gateway)
		if err != nil {
			return "gateway: " + err.Error()
		}
		if err := rules.CheckGateway(vx.Name, p, gw); err != nil {
			return err.Error()
		}
		cv.gw = gw
	}
	return ""
}

func compileRoutes(v *nbView, t *topology, c *cVPC, vpc *nbdb.VPC, subnets []rules.Subnet) {
	var rs []*nbdb.Route
	for _, u := range v.routesOf(c.uuid) {
		if r := v.routes[u]; r != nil {
			rs = append(rs, r)
		}
	}
	sort.Slice(rs, func(i, j int) bool {
		ai, aj := rs[i].Status["state"] == "ok", rs[j].Status["state"] == "ok"
		if ai != aj {
			return ai
		}
		if rs[i].Prefix != rs[j].Prefix {
			return rs[i].Prefix < rs[j].Prefix
		}
		if rs[i].Nexthop != rs[j].Nexthop {
			return rs[i].Nexthop < rs[j].Nexthop
		}
		return rs[i].UUID < rs[j].UUID
	})
	seen := map[netip.Prefix]string{}
	for _, r := range rs {
		cr := &cRoute{uuid: r.UUID, vpc: c.uuid}
		t.routes[r.UUID] = cr
		p, err := rules.ParseRoutePrefix(r.Prefix)
		if err != nil {
			cr.err = err.Error()
			continue
		}
		nh, err := rules.ParseIP(r.Nexthop)
		if err != nil {
			cr.err = "next hop: " + err.Error()
			continue
		}
		cr.prefix, cr.nexthop = p, nh
		if err := rules.CheckRoute(vpc.Name, p, nh, subnets); err != nil {
			cr.err = err.Error()
			continue
		}
		if other, dup := seen[p]; dup {
			cr.err = fmt.Sprintf("VPC %s already routes %s via %s", vpc.Name, p, other)
			continue
		}
		seen[p] = nh.String()
		for _, s := range subnets {
			if s.CIDR.Contains(nh) {
				for _, u := range c.vxnets {
					if t.vxnets[u].name == s.Name {
						cr.vni = t.vxnets[u].vni
					}
				}
			}
		}
		c.routes = append(c.routes, cr)
	}
	sort.Slice(c.routes, func(i, j int) bool { return c.routes[i].prefix.String() < c.routes[j].prefix.String() })
}

// allocVPCKeys gives every VPC a tunnel key: its recorded one, else the one
// it had, else the lowest free key (in name order).
func allocVPCKeys(v *nbView, prev *topology, t *topology) {
	var vpcs []*nbdb.VPC
	for _, vpc := range v.vpcs {
		vpcs = append(vpcs, vpc)
	}
	sort.Slice(vpcs, func(i, j int) bool { return vpcs[i].Name < vpcs[j].Name })
	used := map[int]bool{}
	var need []*nbdb.VPC
	claim := func(vpc *nbdb.VPC, k int) bool {
		if k == 0 || used[k] {
			return false
		}
		used[k] = true
		t.vpcs[vpc.UUID] = &cVPC{uuid: vpc.UUID, name: vpc.Name, key: k, gwMAC: rules.GatewayMAC(k)}
		return true
	}
	for _, vpc := range vpcs {
		if !claim(vpc, statusInt(vpc.Status, "tunnel_key")) {
			need = append(need, vpc)
		}
	}
	var still []*nbdb.VPC
	for _, vpc := range need {
		k := 0
		if prev != nil && prev.vpcs[vpc.UUID] != nil {
			k = prev.vpcs[vpc.UUID].key
		}
		if !claim(vpc, k) {
			still = append(still, vpc)
		}
	}
	next := 1
	for _, vpc := range still {
		for used[next] {
			next++
		}
		claim(vpc, next)
	}
}

type vniResult struct {
	vni int
	err string
}

// allocVNIs settles every vxnet's VNI across all VPCs (VNIs identify the
// vxnet on the wire, so they are global).
func allocVNIs(v *nbView, prev *topology) map[string]vniResult {
	var vxs []*nbdb.Vxnet
	for _, vx := range v.vxnets {
		vxs = append(vxs, vx)
	}
	sort.Slice(vxs, func(i, j int) bool { return vxs[i].Name < vxs[j].Name })
	out := map[string]vniResult{}
	owner := map[int]*nbdb.Vxnet{}
	take := func(vx *nbdb.Vxnet, n int) {
		owner[n] = vx
		out[vx.UUID] = vniResult{vni: n}
	}
	wants := func(vx *nbdb.Vxnet) int {
		if vx.Vni != nil {
			return *vx.Vni
		}
		return 0
	}
	// 1. a recorded VNI that matches the request (or there is none)
	for _, vx := range vxs {
		n := statusInt(vx.Status, "vni")
		if n != 0 && vx.Status["state"] == "ok" && (wants(vx) == 0 || wants(vx) == n) && owner[n] == nil {
			take(vx, n)
		}
	}
	// 2. what this northd compiled before
	if prev != nil {
		for _, vx := range vxs {
			if _, done := out[vx.UUID]; done {
				continue
			}
			if p := prev.vxnets[vx.UUID]; p != nil && p.err == "" && p.vni != 0 &&
				(wants(vx) == 0 || wants(vx) == p.vni) && owner[p.vni] == nil {
				take(vx, p.vni)
			}
		}
	}
	// 3. requests, lowest name first
	for _, vx := range vxs {
		if _, done := out[vx.UUID]; done || wants(vx) == 0 {
			continue
		}
		n := wants(vx)
		if o := owner[n]; o != nil {
			out[vx.UUID] = vniResult{err: fmt.Sprintf("VNI %d is already used by vxnet %s", n, o.Name)}
			continue
		}
		take(vx, n)
	}
	// 4. allocation, lowest free VNI, skipping every requested one
	requested := map[int]bool{}
	for _, vx := range vxs {
		if n := wants(vx); n != 0 {
			requested[n] = true
		}
	}
	next := 1
	for _, vx := range vxs {
		if _, done := out[vx.UUID]; done {
			continue
		}
		for owner[next] != nil || requested[next] {
			next++
		}
		if next > maxKey {
			out[vx.UUID] = vniResult{err: "no free VNI left"}
			continue
		}
		take(vx, next)
	}
	return out
}

// diff records what changed between prev and t.
func (t *topology) diff(prev *topology) {
	t.changedVPCs, t.changedVxnets, t.changedRoutes = map[string]bool{}, map[string]bool{}, map[string]bool{}
	t.groupsOnlyVPCs = map[string]bool{}
	for u, c := range t.vpcs {
		p := prev.vpcs[u]
		if p != nil && sameVPC(p, c) {
			continue
		}
		t.changedVPCs[u] = true
		if p != nil && sameShape(p, c) {
			t.groupsOnlyVPCs[u] = true
		}
	}
	for u := range prev.vpcs {
		if t.vpcs[u] == nil {
			t.changedVPCs[u] = true
		}
	}
	for u, c := range t.vxnets {
		p := prev.vxnets[u]
		if p == nil || *p != *c || t.changedVPCs[c.vpc] && t.vpcs[c.vpc].key != keyOf(prev, c.vpc) {
			t.changedVxnets[u] = true
		}
	}
	for u := range prev.vxnets {
		if t.vxnets[u] == nil {
			t.changedVxnets[u] = true
		}
	}
	for u, c := range t.routes {
		if p := prev.routes[u]; p == nil || *p != *c {
			t.changedRoutes[u] = true
		}
	}
	for u := range prev.routes {
		if t.routes[u] == nil {
			t.changedRoutes[u] = true
		}
	}
}

func keyOf(t *topology, vpc string) int {
	if c := t.vpcs[vpc]; c != nil {
		return c.key
	}
	return 0
}

func sameVPC(a, b *cVPC) bool { return sameShape(a, b) && sameGroups(a, b) }

// sameShape: the VPC is the same but for its security groups.
func sameShape(a, b *cVPC) bool {
	if a.key != b.key || a.name != b.name || a.gwMAC != b.gwMAC || len(a.vxnets) != len(b.vxnets) || len(a.routes) != len(b.routes) {
		return false
	}
	for i := range a.vxnets {
		if a.vxnets[i] != b.vxnets[i] {
			return false
		}
	}
	for i := range a.routes {
		if *a.routes[i] != *b.routes[i] {
			return false
		}
	}
	return true
}

// accepted returns the vxnet if it was accepted (compiled), else nil.
func (t *topology) accepted(vxUUID string) *cVxnet {
	if cv := t.vxnets[vxUUID]; cv != nil && cv.err == "" {
		return cv
	}
	return nil
}
