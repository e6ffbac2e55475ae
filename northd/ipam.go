package northd

import (
	"fmt"
	"hash/fnv"
	"net/netip"
	"sort"
	"strings"

	"github.com/courier-sdn/courier/northd/rules"
)

// Dynamic addresses (issue #13). A port whose mac is "dynamic", or whose
// only IP is "dynamic", gets them from northd, per vxnet, after every
// port of the vxnet is loaded and before claims are settled:
//
//   - What is never handed out: any MAC or IP another port of the vxnet
//     claims as its own (fixed or virtual, refused or not), the network,
//     broadcast and gateway addresses, and the vxnet's
//     options:exclude_ips.
//   - A recorded claim is kept: the port's dynamic_addresses, which
//     northd writes back, if what it says is still free (ports in name
//     order, so two ports recording the same address keep it for the
//     lower name). This is what makes addresses survive restarts and
//     failover, and what keeps a running VM's address when other ports
//     come and go: an allocation depends only on the northbound,
//     dynamic_addresses included, never on the order changes arrived in.
//   - The others get, in name order, the lowest free IP, and a MAC
//     made of NB_Global options:mac_prefix (default rules.DefaultMACPrefix)
//     and 24 bits hashed from the port's name, probing upwards past used
//     ones. A MAC from the name, not from the IP, stays when the IP moves.
//   - A fixed port that takes an address a dynamic port holds wins (as a
//     fixed MAC or IP always does in OVN's IPAM): the dynamic port moves
//     to the lowest free address, deterministically.
//   - No free IP (or a bad mac_prefix or exclude_ips) refuses the
//     dynamic port with a sentence in its status; nothing is half-applied.
//     A refused port's dynamic_addresses is left as it was, so that once
//     the mistake is repaired the ports get their old addresses back
//     rather than the order of repair deciding who gets which.
//
// The allocation is a function of the vxnet's ports, so the ports node
// reallocates a vxnet whenever one of its ports or the vxnet itself
// changes (portTable.update), and a change of mac_prefix recomputes all.
// MACs are unique per vxnet, the L2 domain: another vxnet's VMs see only
// the gateway MAC.

// macPrefix reads NB_Global options:mac_prefix.
func macPrefix(v *nbView) (prefix, err string) {
	raw := ""
	if v.global != nil {
		raw = v.global.Options["mac_prefix"]
	}
	if raw == "" {
		return rules.DefaultMACPrefix, ""
	}
	p, e := rules.ParseMACPrefix(raw)
	if e != nil {
		return "", "NB_Global options:" + e.Error()
	}
	return p, ""
}

// prefixKey identifies the mac_prefix a compile used.
func prefixKey(v *nbView) string {
	p, err := macPrefix(v)
	return p + "|" + err
}

// recorded is what a port's dynamic_addresses says: "MAC [IP...]".
func recorded(s *string) (mac string, ip netip.Addr) {
	if s == nil {
		return "", netip.Addr{}
	}
	f := strings.Fields(*s)
	if len(f) > 0 {
		mac = f[0]
	}
	if len(f) > 1 {
		ip, _ = netip.ParseAddr(f[1])
	}
	return mac, ip
}

// ipFree reports whether a may be handed out in vxnet cv.
func ipFree(cv *cVxnet, excl []rules.IPRange, used map[uint64]bool, a netip.Addr) bool {
	if !a.Is4() || !cv.cidr.Contains(a) || a == cv.cidr.Addr() || a == rules.Broadcast(cv.cidr) || a == cv.gw ||
		used[ipValue(a)] {
		return false
	}
	for _, r := range excl {
		if r.Contains(a) {
			return false
		}
	}
	return true
}

// allocate gives the dynamic ports of vxnet vx their addresses and
// returns those whose addresses or refusal changed.
func (pt *portTable) allocate(v *nbView, t *topology, vx string) []string {
	if pt.nDynamic[vx] == 0 {
		return nil
	}
	var dyn []*cPort
	for u := range pt.byVxnet[vx] {
		if p := pt.ports[u]; p.localErr == "" && (p.dynMAC || p.dynIP) {
			dyn = append(dyn, p)
		}
	}
	if len(dyn) == 0 {
		return nil
	}
	sort.Slice(dyn, func(i, j int) bool { return dyn[i].name < dyn[j].name })
	type was struct {
		mac, ip, err string
	}
	before := make([]was, len(dyn))
	for i, p := range dyn {
		before[i] = was{p.mac, strings.Join(p.ips, " "), p.allocErr}
		pt.dropDynamic(p)
	}
	pool := pt.pool(v, t.vxnets[vx])
	for _, p := range dyn {
		pool.check(p)
	}
	// Recorded claims first, then fresh ones.
	for _, p := range dyn {
		pool.keep(p, v.ports[p.uuid].DynamicAddresses)
	}
	for _, p := range dyn {
		pool.fresh(p)
	}
	var changed []string
	for i, p := range dyn {
		pt.takeDynamic(p, pool.cv)
		if now := (was{p.mac, strings.Join(p.ips, " "), p.allocErr}); now != before[i] {
			changed = append(changed, p.uuid)
		}
	}
	return changed
}

// addrPool is what one vxnet's allocation may hand out.
type addrPool struct {
	cv                *cVxnet
	excl              []rules.IPRange
	prefix, prefixErr string
	usedMAC, usedIP   map[uint64]bool
	next              netip.Addr // no lower IP is free
}

// pool starts from the claims of the vxnet's ports (dynamic ones dropped).
func (pt *portTable) pool(v *nbView, cv *cVxnet) *addrPool {
	a := &addrPool{cv: cv, usedMAC: map[uint64]bool{}, usedIP: map[uint64]bool{}, next: cv.cidr.Addr().Next()}
	for u := range pt.byVxnet[cv.uuid] {
		for _, k := range pt.ports[u].claims {
			if k.kind == 'm' {
				a.usedMAC[k.val] = true
			} else {
				a.usedIP[k.val] = true
			}
		}
	}
	a.prefix, a.prefixErr = macPrefix(v)
	a.excl, _ = rules.ExcludeIPs(cv.name, cv.cidr, cv.exclude)
	return a
}

// check refuses a port that asks for what cannot be allocated.
func (a *addrPool) check(p *cPort) {
	p.allocErr = ""
	switch {
	case p.dynMAC && a.prefixErr != "":
		p.allocErr = a.prefixErr
	case p.dynIP && a.cv.excludeErr != "":
		p.allocErr = fmt.Sprintf("vxnet %s's %s", a.cv.name, a.cv.excludeErr)
	}
}

// keep gives a port what its dynamic_addresses records, if still free.
func (a *addrPool) keep(p *cPort, rec *string) {
	if p.allocErr != "" {
		return
	}
	mac, ip := recorded(rec)
	if p.dynMAC && strings.HasPrefix(mac, a.prefix+":") {
		if m, err := rules.ParseMAC(mac); err == nil && !a.usedMAC[macValue(m)] {
			p.mac = m
			a.usedMAC[macValue(m)] = true
		}
	}
	if p.dynIP && ipFree(a.cv, a.excl, a.usedIP, ip) {
		p.ips = []string{ip.String()}
		a.usedIP[ipValue(ip)] = true
	}
}

// fresh gives a port what keep did not: the lowest free IP (ports come in
// name order, so the search never goes back) and a MAC from its name.
func (a *addrPool) fresh(p *cPort) {
	if p.allocErr != "" {
		return
	}
	if p.dynMAC && p.mac == "" {
		p.mac = freeMAC(a.prefix, p.name, a.usedMAC)
	}
	if p.dynIP && len(p.ips) == 0 {
		for a.cv.cidr.Contains(a.next) && !ipFree(a.cv, a.excl, a.usedIP, a.next) {
			a.next = a.next.Next()
		}
		if !a.cv.cidr.Contains(a.next) {
			p.allocErr = fmt.Sprintf("no free IP left in vxnet %s for a dynamic address", a.cv.name)
			return
		}
		p.ips = []string{a.next.String()}
		a.usedIP[ipValue(a.next)] = true
	}
}

// freeMAC is prefix followed by 24 bits hashed from the port's name, the
// first free one upwards.
func freeMAC(prefix, name string, used map[uint64]bool) string {
	h := fnv.New32a()
	h.Write([]byte(name))
	base := macValue(prefix) << 24
	s := uint64(h.Sum32()) & 0xffffff
	for i := 0; i < 1<<24 && used[base|s]; i++ {
		s = (s + 1) & 0xffffff
	}
	used[base|s] = true
	v := base | s
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", byte(v>>40), byte(v>>32), byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// dropDynamic forgets a port's dynamic addresses and their claims.
func (pt *portTable) dropDynamic(p *cPort) {
	for _, k := range p.claims[p.nFixed:] {
		pt.unclaim(k, p.uuid)
	}
	p.claims = p.claims[:p.nFixed]
	if p.dynMAC {
		p.mac = ""
	}
	if p.dynIP {
		p.ips, p.key = nil, 0
	}
}

// takeDynamic records a port's dynamic addresses as claims.
func (pt *portTable) takeDynamic(p *cPort, cv *cVxnet) {
	if p.allocErr != "" {
		if p.dynMAC {
			p.mac = ""
		}
		p.ips = nil
		return
	}
	if p.dynMAC {
		k := claimKey{p.vx, 'm', macValue(p.mac)}
		p.claims = append(p.claims, k)
		pt.claims[k] = append(pt.claims[k], p.uuid)
	}
	if p.dynIP {
		a := netip.MustParseAddr(p.ips[0])
		k := claimKey{p.vx, 'i', ipValue(a)}
		p.claims = append(p.claims, k)
		pt.claims[k] = append(pt.claims[k], p.uuid)
		p.key = rules.Offset(cv.cidr, a)
	}
}

// dynamicAddresses is what a valid port's dynamic_addresses should say:
// its MAC and IPs, nothing for a port with no dynamic address. (A refused
// port keeps what it had: compiler.portDynamic.)
func (p *cPort) dynamicAddresses() *string {
	if !(p.dynMAC || p.dynIP) {
		return nil
	}
	s := strings.Join(append([]string{p.mac}, p.ips...), " ")
	return &s
}
