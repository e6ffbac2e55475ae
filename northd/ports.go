package northd

import (
	"fmt"
	"hash/fnv"
	"net/netip"
	"sort"

	"github.com/courier-sdn/courier/northd/rules"
	"github.com/courier-sdn/courier/schema/nbdb"
)

// Ports: every port is checked on its own (addresses inside its vxnet),
// then its claims on its MAC and IPs are settled against the other ports
// of the vxnet. A port that loses a claim is refused. Conflicts are settled
// as for vxnets: the port already accepted (status ok, or compiled before)
// wins, then the lowest name. Virtual IPs may be shared by several ports
// (that is what they are for), but not with another port's fixed IP.
//
// Incremental processing works per claim: a changed port releases its old
// claims and takes its new ones, and only the ports that claim one of the
// same values are looked at again.

// Port tunnel keys: a port with fixed IPs is keyed by its lowest IP's
// offset in the vxnet (unique because IPs are, stable while the IP is, a
// pure function of the intent). A port whose addresses are unknown gets a
// key above 2^24 from a hash of its name, probing in name order.
const unknownKeyBase = 1 << 24
const unknownKeySpan = (1 << 31) - 1 - unknownKeyBase

type claimKey struct {
	vxnet string
	kind  byte // 'm': MAC, 'i': IP
	value string
}

// cPort is a compiled port.
type cPort struct {
	uuid, name, vxnet string
	mac               string
	ips, vips         []string
	key               int
	chassis           string // requested; "" for none
	security          bool
	localErr          string // refused on its own merits
	err               string // final: localErr or a lost claim
	claims            []claimKey
}

func (p *cPort) valid() bool { return p.err == "" }

type portTable struct {
	ports  map[string]*cPort // by NB UUID
	claims map[claimKey]map[string]bool
	// ports of each vxnet, for vxnet changes
	byVxnet map[string]map[string]bool
	names   map[string]string // port name -> UUID

	changed map[string]bool // tracked: port UUIDs whose result changed
	gone    map[string]string
}

func newPortTable() *portTable {
	return &portTable{ports: map[string]*cPort{}, claims: map[claimKey]map[string]bool{},
		byVxnet: map[string]map[string]bool{}, names: map[string]string{}, changed: map[string]bool{}, gone: map[string]string{}}
}

func (pt *portTable) clearTracked() {
	pt.changed = map[string]bool{}
	pt.gone = map[string]string{}
}

// compilePorts compiles every port from scratch.
func compilePorts(v *nbView, t *topology, prev *portTable) *portTable {
	pt := newPortTable()
	for u := range v.ports {
		pt.load(v, t, u)
	}
	for vx := range pt.byVxnet {
		pt.assignUnknownKeys(vx)
	}
	accepted := func(u string) bool {
		if prev == nil {
			return false
		}
		p := prev.ports[u]
		return p != nil && p.valid()
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
	before := map[string]bool{}
	for u := range uuids {
		before[u] = false // a port that did not exist was not accepted
		if old := pt.ports[u]; old != nil {
			before[u] = old.valid()
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
	resettle := map[string]bool{}
	for u := range uuids {
		resettle[u] = true
	}
	for k := range affected {
		for u := range pt.claims[k] {
			resettle[u] = true
		}
	}
	for vx := range vxnets {
		for _, u := range pt.assignUnknownKeys(vx) {
			resettle[u] = true
		}
	}
	for u := range resettle {
		if _, ok := before[u]; !ok {
			if p := pt.ports[u]; p != nil {
				before[u] = p.valid()
			}
		}
	}
	accepted := func(u string) bool { return before[u] }
	for u := range resettle {
		p := pt.ports[u]
		if p == nil {
			continue
		}
		old := *p
		pt.settle(v, accepted, p)
		if uuids[u] || !samePort(&old, p) {
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
		if m := pt.claims[k]; m != nil {
			delete(m, p.uuid)
			if len(m) == 0 {
				delete(pt.claims, k)
			}
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

// load checks a port on its own and records its claims. It returns nil if
// the port no longer exists.
func (pt *portTable) load(v *nbView, t *topology, u string) *cPort {
	np := v.ports[u]
	if np == nil {
		return nil
	}
	delete(pt.gone, u)
	p := &cPort{uuid: u, name: np.Name, vxnet: v.portVxnet[u], security: np.PortSecurity == nil || *np.PortSecurity}
	if np.RequestedChassis != nil {
		p.chassis = *np.RequestedChassis
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
	p.localErr = p.checkAddrs(np, cv)
	if p.localErr != "" {
		return p
	}
	p.claims = append(p.claims, claimKey{p.vxnet, 'm', p.mac})
	for _, ip := range p.ips {
		p.claims = append(p.claims, claimKey{p.vxnet, 'i', ip})
	}
	for _, ip := range p.vips {
		p.claims = append(p.claims, claimKey{p.vxnet, 'i', ip})
	}
	for _, k := range p.claims {
		if pt.claims[k] == nil {
			pt.claims[k] = map[string]bool{}
		}
		pt.claims[k][u] = true
	}
	if len(p.ips) > 0 {
		a, _ := netip.ParseAddr(p.ips[0])
		p.key = rules.Offset(cv.cidr, a)
	}
	return p
}

func (p *cPort) checkAddrs(np *nbdb.Port, cv *cVxnet) string {
	mac, err := rules.ParseMAC(np.MAC)
	if err != nil {
		return err.Error()
	}
	p.mac = mac
	seen := map[netip.Addr]bool{}
	parse := func(list []string, what string) ([]string, string) {
		var addrs []netip.Addr
		for _, s := range list {
			a, err := rules.ParseIP(s)
			if err != nil {
				return nil, what + ": " + err.Error()
			}
			if err := rules.CheckPortIP(cv.name, cv.cidr, cv.gw, a); err != nil {
				return nil, err.Error()
			}
			if seen[a] {
				return nil, fmt.Sprintf("IP %s is given twice", a)
			}
			seen[a] = true
			addrs = append(addrs, a)
		}
		sort.Slice(addrs, func(i, j int) bool { return addrs[i].Less(addrs[j]) })
		out := make([]string, len(addrs))
		for i, a := range addrs {
			out[i] = a.String()
		}
		return out, ""
	}
	var msg string
	if p.ips, msg = parse(np.IPs, "fixed IP"); msg != "" {
		return msg
	}
	if p.vips, msg = parse(np.VirtualIPs, "virtual IP"); msg != "" {
		return msg
	}
	return ""
}

// settle decides whether p wins all its claims. accepted says which ports
// this northd had accepted before; with the NB status it makes a port an
// incumbent.
func (pt *portTable) settle(v *nbView, accepted func(string) bool, p *cPort) {
	p.err = p.localErr
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
	isVIP := func(q *cPort, ip string) bool {
		for _, x := range q.vips {
			if x == ip {
				return true
			}
		}
		return false
	}
	for _, k := range p.claims {
		for o := range pt.claims[k] {
			if o == p.uuid {
				continue
			}
			q := pt.ports[o]
			if k.kind == 'm' {
				if better(o, p.uuid) {
					p.err = fmt.Sprintf("MAC %s is already used by port %s in its vxnet", k.value, q.name)
					return
				}
				continue
			}
			pv, qv := isVIP(p, k.value), isVIP(q, k.value)
			switch {
			case pv && qv: // a shared virtual IP
			case pv && !qv:
				p.err = fmt.Sprintf("virtual IP %s is the fixed IP of port %s", k.value, q.name)
				return
			case !pv && !qv && better(o, p.uuid):
				p.err = fmt.Sprintf("IP %s is already used by port %s in its vxnet", k.value, q.name)
				return
			}
		}
	}
}

func incumbent(v *nbView, accepted func(string) bool, u string) bool {
	if np := v.ports[u]; np != nil && np.Status["state"] == "ok" {
		return true
	}
	return accepted(u)
}

// assignUnknownKeys gives the ports of vxnet vx that have no fixed IP
// their keys, and returns those whose key changed.
func (pt *portTable) assignUnknownKeys(vx string) []string {
	var unknown []*cPort
	for u := range pt.byVxnet[vx] {
		if p := pt.ports[u]; p.localErr == "" && len(p.ips) == 0 {
			unknown = append(unknown, p)
		}
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
	if a.err != b.err || a.key != b.key || a.mac != b.mac || a.chassis != b.chassis || a.security != b.security ||
		a.vxnet != b.vxnet || a.name != b.name || len(a.ips) != len(b.ips) || len(a.vips) != len(b.vips) {
		return false
	}
	for i := range a.ips {
		if a.ips[i] != b.ips[i] {
			return false
		}
	}
	for i := range a.vips {
		if a.vips[i] != b.vips[i] {
			return false
		}
	}
	return true
}
