package northd

import (
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/courier-sdn/courier/northd/rules"
	"github.com/courier-sdn/courier/pipeline"
)

// Identities: a port's set of security groups is a number, its identity,
// which the sending host writes into the VXLAN header (Group Based
// Policy, 16 bits) so that the receiving host can check "from group X"
// without knowing group X's members. Identities are per VPC (the VNI
// says which VPC a packet is in): each distinct set of groups that a port
// of the VPC is in gets one, 1 to pipeline.MaxIdentity (65534). A port's
// identity goes into its binding (Port_Binding.sg_identity), the VPC's
// table of identities into its datapath (Datapath.security_identities,
// "ID" -> "GROUP,GROUP").
// Hosts thus learn what an identity means from the VPC, never which ports
// hold it.
//
// Allocation is a function of the northbound, as VNIs are: a VPC's
// identities are recorded in its status (security_identities,
// "ID=GROUP,GROUP ID=..."), and read back as claims; then what this
// northd allocated before; then the lowest free number, sets in name
// order. An identity stays with its set as long as a port holds the set,
// so a packet in flight never changes meaning.
//
// The numbers above MaxIdentity are reserved (pipeline/limits.go):
// 65535 is the internet, what gateways stamp on what they tunnel in for
// EIPs. It is in no group, so a rule naming a group never admits the
// internet and a rule naming a prefix (0.0.0.0/0) does. northd never
// allocates it, and a claim of it (a status written by a northd from
// before it was reserved) is refused like any other out of range: the
// set gets the lowest free number, as a new one would.
//
// Cost: the node recomputes every port's set when a port's groups, a
// port's existence or the groups change; that is a pass over the ports
// (no allocation for unchanged sets), not over ports × groups.

const maxIdentity = pipeline.MaxIdentity

type identities struct {
	vpcs map[string]map[string]int // VPC UUID -> set key -> identity
	port map[string]int            // port UUID -> identity (0: open VPC)
	// What a port change needs to be handled alone (updatePorts): each
	// port's set key and VPC, and how many ports hold each set.
	keyOf, vpcOf map[string]string
	refs         map[string]map[string]int

	// tracked: ports whose identity changed, VPCs whose table changed
	changedPorts map[string]bool
	changedVPCs  map[string]bool
}

func newIdentities() *identities {
	return &identities{vpcs: map[string]map[string]int{}, port: map[string]int{},
		keyOf: map[string]string{}, vpcOf: map[string]string{}, refs: map[string]map[string]int{},
		changedPorts: map[string]bool{}, changedVPCs: map[string]bool{}}
}

func (id *identities) clearTracked() {
	id.changedPorts, id.changedVPCs = map[string]bool{}, map[string]bool{}
}

// portSet is the key of a port's set of groups in its VPC: the names of
// its accepted groups, sorted, comma-separated; the default group when it
// names none of them.
func portSet(groups []string, v *nbView, c *cVPC) string {
	var names []string
	for _, u := range groups {
		if g := v.sgs[u]; g != nil && v.sgVPC[u] == c.uuid {
			if cg := c.group(g.Name); cg != nil && cg.uuid == u {
				names = append(names, g.Name)
			}
		}
	}
	if len(names) == 0 {
		return rules.DefaultGroup
	}
	sort.Strings(names)
	return strings.Join(slices.Compact(names), ",")
}

// compileIdentities allocates every VPC's identities; prev (may be nil)
// is the previous result.
func compileIdentities(v *nbView, t *topology, prev *identities) *identities {
	out := newIdentities()
	for u := range v.ports {
		if vpcU, k, ok := portKey(v, t, u); ok {
			out.hold(u, vpcU, k)
		}
	}
	for vpcU, keys := range out.refs {
		var old map[string]int
		if prev != nil {
			old = prev.vpcs[vpcU]
		}
		out.vpcs[vpcU] = allocIdentities(slices.Sorted(maps.Keys(keys)), recordedIdentities(v, vpcU), old)
	}
	for u, k := range out.keyOf {
		out.port[u] = out.vpcs[out.vpcOf[u]][k]
	}
	if prev != nil {
		out.diff(prev)
		// Changes an earlier handler of the same run tracked are still
		// to be written.
		for u := range prev.changedPorts {
			out.changedPorts[u] = true
		}
		for u := range prev.changedVPCs {
			out.changedVPCs[u] = true
		}
	}
	return out
}

// portKey is port u's VPC and set key, if its VPC enforces groups.
func portKey(v *nbView, t *topology, u string) (vpcU, key string, ok bool) {
	p := v.ports[u]
	if p == nil {
		return "", "", false
	}
	vpcU = v.vxnetVPC[v.portVxnet[u]]
	c := t.vpcs[vpcU]
	if c == nil || c.open {
		return "", "", false
	}
	return vpcU, portSet(p.SecurityGroups, v, c), true
}

// hold records that port u holds set key in vpcU.
func (id *identities) hold(u, vpcU, key string) {
	id.keyOf[u], id.vpcOf[u] = key, vpcU
	if id.refs[vpcU] == nil {
		id.refs[vpcU] = map[string]int{}
	}
	id.refs[vpcU][key]++
}

// release forgets port u's set; it reports a set no port holds any more.
func (id *identities) release(u string) (vpcU, key string, gone bool) {
	key, held := id.keyOf[u]
	if !held {
		return "", "", false
	}
	vpcU = id.vpcOf[u]
	delete(id.keyOf, u)
	delete(id.vpcOf, u)
	if id.refs[vpcU][key]--; id.refs[vpcU][key] > 0 {
		return vpcU, key, false
	}
	delete(id.refs[vpcU], key)
	if len(id.refs[vpcU]) == 0 {
		delete(id.refs, vpcU)
	}
	return vpcU, key, true
}

// updatePorts applies the changes of some ports' groups (or existence)
// alone, without a pass over every port: what compileIdentities would
// compute from this state, as long as each VPC's recorded identities are
// its current ones (the full compile prefers a recorded claim); it
// reports false, changing nothing, when one is not.
func (id *identities) updatePorts(v *nbView, t *topology, ports []string) bool {
	type change struct{ vpcU, key string }
	now := map[string]change{}
	touched := map[string]bool{}
	for _, u := range ports {
		c := change{}
		vpcU, key, ok := portKey(v, t, u)
		if ok {
			c = change{vpcU, key}
		}
		if old := (change{id.vpcOf[u], id.keyOf[u]}); old == c {
			continue
		}
		now[u] = c
		touched[id.vpcOf[u]], touched[c.vpcU] = true, true
	}
	delete(touched, "")
	for vpcU := range touched {
		if !maps.Equal(recordedIdentities(v, vpcU), id.vpcs[vpcU]) {
			return false
		}
	}
	for _, u := range slices.Sorted(maps.Keys(now)) {
		if vpcU, key, gone := id.release(u); gone {
			delete(id.vpcs[vpcU], key)
			if len(id.vpcs[vpcU]) == 0 {
				delete(id.vpcs, vpcU)
			}
			id.changedVPCs[vpcU] = true
		}
		if c := now[u]; c.vpcU != "" {
			id.hold(u, c.vpcU, c.key)
		}
	}
	for vpcU := range touched {
		id.allocNew(vpcU)
	}
	for u, c := range now {
		n := id.vpcs[c.vpcU][c.key]
		if _, had := id.port[u]; c.vpcU == "" {
			if had {
				delete(id.port, u)
				id.changedPorts[u] = true
			}
			continue
		}
		if old, had := id.port[u]; !had || old != n {
			id.port[u] = n
			id.changedPorts[u] = true
		}
	}
	return true
}

// allocNew numbers the sets of vpcU that have none yet, as
// allocIdentities would: the lowest free numbers, in key order.
func (id *identities) allocNew(vpcU string) {
	var fresh []string
	for k := range id.refs[vpcU] {
		if _, ok := id.vpcs[vpcU][k]; !ok {
			fresh = append(fresh, k)
		}
	}
	if len(fresh) == 0 {
		return
	}
	if id.vpcs[vpcU] == nil {
		id.vpcs[vpcU] = map[string]int{}
	}
	used := map[int]bool{}
	for _, n := range id.vpcs[vpcU] {
		used[n] = true
	}
	next := 1
	for _, k := range slices.Sorted(slices.Values(fresh)) {
		for used[next] {
			next++
		}
		if next > maxIdentity {
			break // more distinct sets than identities: these stay unknown (0)
		}
		id.vpcs[vpcU][k], used[next] = next, true
	}
	if len(id.vpcs[vpcU]) == 0 {
		delete(id.vpcs, vpcU)
	}
	id.changedVPCs[vpcU] = true
}

// allocIdentities numbers sets: a recorded claim, else the previous
// number, else the lowest free one.
func allocIdentities(keys []string, recorded, old map[string]int) map[string]int {
	ids := map[string]int{}
	used := map[int]bool{}
	for _, claims := range []map[string]int{recorded, old} {
		for _, k := range keys {
			if n, ok := claims[k]; ok && ids[k] == 0 && n >= 1 && n <= maxIdentity && !used[n] {
				ids[k], used[n] = n, true
			}
		}
	}
	next := 1
	for _, k := range keys {
		if ids[k] != 0 {
			continue
		}
		for used[next] {
			next++
		}
		if next > maxIdentity {
			break // more distinct sets than identities: these stay unknown (0)
		}
		ids[k], used[next] = next, true
	}
	return ids
}

// recordedIdentities reads a VPC's status:security_identities.
func recordedIdentities(v *nbView, vpcU string) map[string]int {
	vpc := v.vpcs[vpcU]
	if vpc == nil {
		return nil
	}
	out := map[string]int{}
	for _, f := range strings.Fields(vpc.Status["security_identities"]) {
		n, k, ok := strings.Cut(f, "=")
		if id, err := strconv.Atoi(n); ok && err == nil {
			out[k] = id
		}
	}
	return out
}

// identityRecord is what a VPC's status records, and identityTable what
// its datapath carries.
func (id *identities) identityRecord(vpcU string) string {
	var parts []string
	for k, n := range id.vpcs[vpcU] {
		parts = append(parts, strconv.Itoa(n)+"="+k)
	}
	sort.Slice(parts, func(i, j int) bool {
		a, _ := strconv.Atoi(strings.SplitN(parts[i], "=", 2)[0])
		b, _ := strconv.Atoi(strings.SplitN(parts[j], "=", 2)[0])
		return a < b
	})
	return strings.Join(parts, " ")
}

func (id *identities) identityTable(vpcU string) map[string]string {
	ids := id.vpcs[vpcU]
	if len(ids) == 0 {
		return nil
	}
	out := make(map[string]string, len(ids))
	for k, n := range ids {
		out[strconv.Itoa(n)] = k
	}
	return out
}

func (id *identities) diff(prev *identities) {
	for u, n := range id.port {
		if prev.port[u] != n {
			id.changedPorts[u] = true
		}
	}
	for u := range prev.port {
		if _, ok := id.port[u]; !ok {
			id.changedPorts[u] = true
		}
	}
	for u, m := range id.vpcs {
		if !maps.Equal(prev.vpcs[u], m) {
			id.changedVPCs[u] = true
		}
	}
	for u := range prev.vpcs {
		if _, ok := id.vpcs[u]; !ok {
			id.changedVPCs[u] = true
		}
	}
}
