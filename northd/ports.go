package northd

import (
	"fmt"
	"hash/fnv"
	"net/netip"
	"slices"
	"sort"

	"github.com/courier-sdn/courier/northd/rules"
	"github.com/courier-sdn/courier/schema"
	"github.com/courier-sdn/courier/schema/nbdb"
)

// Ports: every port is checked on its own (addresses inside its vxnet),
// then its claims on its MAC and IPs are settled against the other ports
// of the vxnet. A port that loses a claim is refused. Conflicts are settled
// as for vxnets: the incumbent wins, then the lowest name. A port is an
// incumbent if this northd accepted it before, or, for a port this northd
// has not compiled yet, if its status does not say it was refused. Virtual
// IPs may be shared by several ports (that is what they are for), but not
// with another port's fixed IP.
//
// Only refusals are written to a port's status (and cleared when they no
// longer hold): writing "ok" into 64,000 rows would double the cost of a
// bulk load. Once the statuses have settled, a northd that starts from
// scratch therefore decides every conflict as the running one did.
//
// Incremental processing works per claim: a changed port releases its old
// claims and takes its new ones, and only the ports that claim one of the
// same values are looked at again. A batch that touches most ports (a bulk
// load) is cheaper to compile from scratch, and the handler says so.

// Port tunnel keys: a port with fixed IPs is keyed by its lowest IP's
// offset in the vxnet (unique because IPs are, stable while the IP is, a
// pure function of the intent). A port whose addresses are unknown gets a
// key above 2^24 from a hash of its name, probing in name order.
const unknownKeyBase = 1 << 24
const unknownKeySpan = (1 << 31) - 1 - unknownKeyBase

// claimKey is a value a port claims in its vxnet: a MAC or an IPv4
// address, in numeric form so that the claim index hashes fast.
type claimKey struct {
	vx   int32
	kind uint8 // 'm': MAC, 'i': IP
	val  uint64
}

// cPort is a compiled port.
type cPort struct {
	uuid, name, vxnet string
	vx                int32
	mac               string
	ips, vips         []string
	key               int
	chassis           string // requested; "" for none
	migratingTo       string // a live migration's destination; "" for none
	security          bool
	learnedLimit      *int   // NB's, copied as is: hostd applies the default
	localErr          string // refused on its own merits
	allocErr          string // refused for want of a dynamic address (ipam.go)
	err               string // final: localErr, allocErr or a lost claim
	// claims: the fixed ones (MAC, IPs, virtual IPs), then nFixed on the
	// dynamic ones
	claims        []claimKey
	nFixed        int
	dynMAC, dynIP bool // mac, ips asked for "dynamic"
	vipVals       []uint64
}

func (p *cPort) valid() bool { return p.err == "" }

type portTable struct {
	ports  map[string]*cPort // by NB UUID
	claims map[claimKey][]string
	// ports of each vxnet, for vxnet changes
	byVxnet map[string]map[string]bool
	names   map[string]string // port name -> UUID
	vxIDs   map[string]int32  // vxnet UUID -> small id for claim keys

	// the mac_prefix (or its refusal) dynamic MACs were made with
	prefix string
	// how many ports of each vxnet have a dynamic address to allocate
	// (accepted on their own merits), so that vxnets without any cost
	// the allocator nothing
	nDynamic map[string]int

	changed map[string]bool // tracked: port UUIDs whose result changed
	gone    map[string]string
}

func newPortTable(sizeHint int) *portTable {
	return &portTable{ports: make(map[string]*cPort, sizeHint), claims: make(map[claimKey][]string, 2*sizeHint),
		byVxnet: map[string]map[string]bool{}, names: make(map[string]string, sizeHint), vxIDs: map[string]int32{},
		nDynamic: map[string]int{},
		changed:  map[string]bool{}, gone: map[string]string{}}
}

func (pt *portTable) clearTracked() {
	pt.changed = map[string]bool{}
	pt.gone = map[string]string{}
}

// acceptance says whether this northd accepted a port before, and whether
// it knew the port at all.
type acceptance func(u string) (accepted, known bool)

// compilePorts compiles every port from scratch; prev (may be nil) is the
// previous table, whose decisions make incumbents.
func compilePorts(v *nbView, t *topology, prev *portTable) *portTable {
	pt := newPortTable(len(v.ports))
	if prev != nil {
		pt.vxIDs = prev.vxIDs
	}
	pt.prefix = prefixKey(v)
	for u := range v.ports {
		pt.load(v, t, u)
	}
	for vx := range pt.byVxnet {
		pt.allocate(v, t, vx)
		pt.assignUnknownKeys(vx)
	}
	// Compiling from scratch (prev nil), a northd knows no port and goes
	// by the statuses; recompiling, it knows which it accepted, and that
	// a port absent from prev is new.
	accepted := func(u string) (bool, bool) {
		if prev == nil || len(prev.ports) == 0 {
			return false, false // no memory: go by the statuses
		}
		p := prev.ports[u]
		return p != nil && p.valid(), true
	}
	for u, p := range pt.ports {
		pt.settle(v, accepted, p)
		pt.changed[u] = true
	}
	if prev != nil {
		for u, p := range prev.ports {
			if pt.ports[u] == nil {
				pt.gone[u] = p.name
			}
		}
	}
	return pt
}

// update recompiles the given ports (changed in the NB or in a changed
// vxnet) and every port that shares a claim with them.
func (pt *portTable) update(v *nbView, t *topology, uuids map[string]bool) {
	affected := map[claimKey]bool{}
	vxnets := map[string]bool{}
	// Which ports were accepted before this update decides conflicts, so
	// record it before anything changes.
	type prior struct{ accepted, known bool }
	before := make(map[string]prior, len(uuids))
	for u := range uuids {
		// A port this northd sees appear is known, and not accepted.
		before[u] = prior{known: true}
		if old := pt.ports[u]; old != nil {
			before[u] = prior{old.valid(), true}
			for _, k := range old.claims {
				affected[k] = true
			}
			pt.unload(old)
			vxnets[old.vxnet] = true
		}
	}
	for u := range uuids {
		if p := pt.load(v, t, u); p != nil {
			for _, k := range p.claims {
				affected[k] = true
			}
			vxnets[p.vxnet] = true
		}
	}
	resettle := make(map[string]bool, len(uuids))
	for u := range uuids {
		resettle[u] = true
	}
	for k := range affected {
		for _, u := range pt.claims[k] {
			resettle[u] = true
		}
	}
	moved := map[string]bool{}
	for vx := range vxnets {
		for _, u := range pt.allocate(v, t, vx) {
			resettle[u], moved[u] = true, true
		}
		for _, u := range pt.assignUnknownKeys(vx) {
			resettle[u] = true
		}
	}
	for u := range resettle {
		if _, ok := before[u]; !ok {
			if p := pt.ports[u]; p != nil {
				before[u] = prior{p.valid(), true}
			}
		}
	}
	accepted := func(u string) (bool, bool) { b := before[u]; return b.accepted, b.known }
	for u := range resettle {
		p := pt.ports[u]
		if p == nil {
			continue
		}
		old := *p
		pt.settle(v, accepted, p)
		if uuids[u] || moved[u] || !samePort(&old, p) {
			pt.changed[u] = true
		}
	}
	for u := range uuids {
		if pt.ports[u] == nil {
			pt.changed[u] = true
		}
	}
}

// unload forgets a port and its claims.
func (pt *portTable) unload(p *cPort) {
	for _, k := range p.claims {
		pt.unclaim(k, p.uuid)
	}
	if p.localErr == "" && (p.dynMAC || p.dynIP) {
		if pt.nDynamic[p.vxnet]--; pt.nDynamic[p.vxnet] == 0 {
			delete(pt.nDynamic, p.vxnet)
		}
	}
	if m := pt.byVxnet[p.vxnet]; m != nil {
		delete(m, p.uuid)
		if len(m) == 0 {
			delete(pt.byVxnet, p.vxnet)
		}
	}
	delete(pt.ports, p.uuid)
	if pt.names[p.name] == p.uuid {
		delete(pt.names, p.name)
	}
	pt.gone[p.uuid] = p.name
}

// unclaim removes port u from the claimants of k.
func (pt *portTable) unclaim(k claimKey, u string) {
	cl := pt.claims[k]
	if i := slices.Index(cl, u); i >= 0 {
		cl = slices.Delete(cl, i, i+1)
	}
	if len(cl) == 0 {
		delete(pt.claims, k)
	} else {
		pt.claims[k] = cl
	}
}

func macValue(mac string) uint64 {
	var v uint64
	for i := 0; i < len(mac); i++ {
		c := mac[i]
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | uint64(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | uint64(c-'a'+10)
		}
	}
	return v
}

func ipValue(a netip.Addr) uint64 {
	b := a.As4()
	return uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])
}

// load checks a port on its own and records its claims. It returns nil if
// the port no longer exists.
func (pt *portTable) load(v *nbView, t *topology, u string) *cPort {
	np := v.ports[u]
	if np == nil {
		return nil
	}
	delete(pt.gone, u)
	p := &cPort{uuid: u, name: np.Name, vxnet: v.portVxnet[u], security: np.PortSecurity == nil || *np.PortSecurity,
		learnedLimit: np.LearnedLimit}
	if np.RequestedChassis != nil {
		p.chassis = *np.RequestedChassis
	}
	if np.MigrationDestination != nil {
		p.migratingTo = *np.MigrationDestination
	}
	pt.ports[u] = p
	pt.names[p.name] = u
	if pt.byVxnet[p.vxnet] == nil {
		pt.byVxnet[p.vxnet] = map[string]bool{}
	}
	pt.byVxnet[p.vxnet][u] = true
	cv := t.vxnets[p.vxnet]
	switch {
	case p.vxnet == "" || cv == nil:
		p.localErr = "port belongs to no vxnet"
		return p
	case cv.err != "":
		p.localErr = fmt.Sprintf("its vxnet %s is refused", cv.name)
		return p
	}
	vxID, ok := pt.vxIDs[p.vxnet]
	if !ok {
		vxID = int32(len(pt.vxIDs) + 1)
		pt.vxIDs[p.vxnet] = vxID
	}
	p.vx = vxID
	ips, vips, msg := p.checkAddrs(np, cv)
	if msg != "" {
		p.localErr = msg
		return p
	}
	p.claims = make([]claimKey, 0, 2+len(ips)+len(vips))
	if !p.dynMAC {
		p.claims = append(p.claims, claimKey{vxID, 'm', macValue(p.mac)})
	}
	for _, a := range ips {
		p.claims = append(p.claims, claimKey{vxID, 'i', ipValue(a)})
	}
	for _, a := range vips {
		p.claims = append(p.claims, claimKey{vxID, 'i', ipValue(a)})
		p.vipVals = append(p.vipVals, ipValue(a))
	}
	for _, k := range p.claims {
		pt.claims[k] = append(pt.claims[k], u)
	}
	p.nFixed = len(p.claims)
	if p.dynMAC || p.dynIP {
		pt.nDynamic[p.vxnet]++
	}
	if len(ips) > 0 {
		p.key = rules.Offset(cv.cidr, ips[0])
	}
	return p
}

// checkAddrs checks a port's MAC and addresses; it returns them sorted,
// or the sentence that refuses the port.
func (p *cPort) checkAddrs(np *nbdb.Port, cv *cVxnet) (ips, vips []netip.Addr, msg string) {
	if np.MAC == schema.Dynamic {
		p.dynMAC = true
	} else {
		mac, err := rules.ParseMAC(np.MAC)
		if err != nil {
			return nil, nil, err.Error()
		}
		p.mac = mac
	}
	fixed := np.IPs
	if slices.Contains(np.IPs, schema.Dynamic) {
		if len(np.IPs) > 1 {
			return nil, nil, "IP 'dynamic' cannot be combined with fixed IPs"
		}
		p.dynIP, fixed = true, nil
	}
	seen := make(map[netip.Addr]bool, len(np.IPs)+len(np.VirtualIPs))
	parse := func(list []string, what string) ([]netip.Addr, []string, string) {
		addrs := make([]netip.Addr, 0, len(list))
		for _, s := range list {
			a, err := rules.ParseIP(s)
			if err != nil {
				return nil, nil, what + ": " + err.Error()
			}
			if err := rules.CheckPortIP(cv.name, cv.cidr, cv.gw, a); err != nil {
				return nil, nil, err.Error()
			}
			if seen[a] {
				return nil, nil, fmt.Sprintf("IP %s is given twice", a)
			}
			seen[a] = true
			addrs = append(addrs, a)
		}
		slices.SortFunc(addrs, func(a, b netip.Addr) int { return a.Compare(b) })
		out := make([]string, len(addrs))
		for i, a := range addrs {
			out[i] = a.String()
		}
		return addrs, out, ""
	}
	if ips, p.ips, msg = parse(fixed, "fixed IP"); msg != "" {
		return nil, nil, msg
	}
	if vips, p.vips, msg = parse(np.VirtualIPs, "virtual IP"); msg != "" {
		return nil, nil, msg
	}
	return ips, vips, ""
}

// settle decides whether p wins all its claims.
func (pt *portTable) settle(v *nbView, accepted acceptance, p *cPort) {
	p.err = p.localErr
	if p.err == "" {
		p.err = p.allocErr
	}
	if p.err != "" {
		return
	}
	better := func(a, b string) bool { // does port a take precedence over b?
		ia, ib := incumbent(v, accepted, a), incumbent(v, accepted, b)
		if ia != ib {
			return ia
		}
		return pt.ports[a].name < pt.ports[b].name
	}
	for _, k := range p.claims {
		cl := pt.claims[k]
		if len(cl) == 1 {
			continue // the common case: nobody else claims it
		}
		for _, o := range cl {
			if o == p.uuid {
				continue
			}
			q := pt.ports[o]
			if k.kind == 'm' {
				if better(o, p.uuid) {
					p.err = fmt.Sprintf("MAC %s is already used by port %s in its vxnet", p.mac, q.name)
					return
				}
				continue
			}
			pv, qv := slices.Contains(p.vipVals, k.val), slices.Contains(q.vipVals, k.val)
			ip := netip.AddrFrom4([4]byte{byte(k.val >> 24), byte(k.val >> 16), byte(k.val >> 8), byte(k.val)})
			switch {
			case pv && qv: // a shared virtual IP
			case pv && !qv:
				p.err = fmt.Sprintf("virtual IP %s is the fixed IP of port %s", ip, q.name)
				return
			case !pv && !qv && better(o, p.uuid):
				p.err = fmt.Sprintf("IP %s is already used by port %s in its vxnet", ip, q.name)
				return
			}
		}
	}
}

// incumbent: a port this northd knows is one if it accepted it; a port it
// does not know yet is one unless its status says it was refused.
func incumbent(v *nbView, accepted acceptance, u string) bool {
	if a, known := accepted(u); known {
		return a
	}
	np := v.ports[u]
	return np != nil && np.Status["state"] != "error"
}

// assignUnknownKeys gives the ports of vxnet vx that have no fixed IP
// their keys, and returns those whose key changed.
func (pt *portTable) assignUnknownKeys(vx string) []string {
	var unknown []*cPort
	for u := range pt.byVxnet[vx] {
		if p := pt.ports[u]; p.localErr == "" && !p.dynIP && len(p.ips) == 0 {
			unknown = append(unknown, p)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Slice(unknown, func(i, j int) bool { return unknown[i].name < unknown[j].name })
	used := map[int]bool{}
	var changed []string
	for _, p := range unknown {
		h := fnv.New32a()
		h.Write([]byte(p.name))
		k := unknownKeyBase + int(h.Sum32()%unknownKeySpan)
		for used[k] {
			k++
			if k >= unknownKeyBase+unknownKeySpan {
				k = unknownKeyBase
			}
		}
		used[k] = true
		if p.key != k {
			p.key = k
			changed = append(changed, p.uuid)
		}
	}
	return changed
}

func samePort(a, b *cPort) bool {
	return a.err == b.err && a.key == b.key && a.mac == b.mac && a.chassis == b.chassis && a.security == b.security &&
		sameInt(a.learnedLimit, b.learnedLimit) &&
		a.vxnet == b.vxnet && a.name == b.name && slices.Equal(a.ips, b.ips) && slices.Equal(a.vips, b.vips)
}
