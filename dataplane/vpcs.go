package dataplane

import (
	"net/netip"
)

// A VPC's entry, as the programs read it: from the VPCs' map, and from
// the copy every vxnet entry of the VPC carries (vxnets.h), so that a
// packet's path, which holds its vxnet's entry from its first stage,
// needs no lookup of its VPC (#21: ~30 ns a packet on AMD EPYC with
// SRSO). Both are compiled here from the same State: a VPC whose flags
// change has its vxnets' entries rewritten in the same Apply.
//
// Beside the flags the logical flows set, the data plane derives one
// fact of its own from the routes: whether ip_route may route a
// destination with a binding to the binding's vxnet without the routes
// trie (VPC_D_ROUTE_BOUND, ~50 ns a routed packet). That holds when no
// static route lies inside a connected one (northd's CheckRoute refuses
// such routes; the data plane checks again rather than trust it) and
// every binding lies in a vxnet the VPC routes to: northd keeps ports'
// and virtual addresses inside their vxnets, port_sec an unknown port's;
// the local ports' and a hub's bindings' vxnets are checked here (not a
// HubTable's, which hostd fills from the same southbound as the routes),
// and purgeCache drops learned paths into a vxnet the VPC no longer
// routes to. Only destinations in
// the smallest prefix that holds all the VPC's vxnets try their binding
// first, so that what goes outside the VPC (EIPs, SNAT) pays nothing
// more; a VPC whose vxnets need 0.0.0.0/0 to hold them does without.
const (
	vpcDEntry      = 0x1 // VPC_D_ENTRY
	vpcDRouteBound = 0x2 // VPC_D_ROUTE_BOUND
)

// compileVPCs gives the VPCs' entries and their vxnets' copies of them.
func compileVPCs(s *State) (map[uint32]dvrVpc, map[uint32]dvrVxnet) {
	bound := routeBound(s)
	vpcs := map[uint32]dvrVpc{}
	for _, v := range s.VPCs {
		e := dvrVpc{GwMac: mac6(v.GwMAC), Dflags: vpcDEntry, Flags: v.Flags}
		if span, ok := bound[v.ID]; ok {
			e.Dflags |= vpcDRouteBound
			e.SpanLen, e.SpanNet = uint8(span.Bits()), be32(span.Addr())
		}
		vpcs[v.ID] = e
	}
	vxnets := map[uint32]dvrVxnet{}
	for _, v := range s.Vxnets {
		vxnets[v.VNI] = dvrVxnet{Vpc: v.VPC, Net: be32(v.CIDR.Masked().Addr()), Mask: maskBE(v.CIDR),
			GwIp: be32(v.GwIP), GwMac: mac6(v.GwMAC), Flags: v.Flags, Vpce: vpcs[v.VPC]}
	}
	return vpcs, vxnets
}

// routeBound gives the VPCs whose bound destinations may be routed by
// their bindings, each with the prefix that holds its vxnets (see
// above).
func routeBound(s *State) map[uint32]netip.Prefix {
	vnis := connectedVNIs(s.Routes)
	connected, static := map[uint32][]netip.Prefix{}, map[uint32][]netip.Prefix{}
	for _, r := range s.Routes {
		if r.Nexthop.IsValid() {
			static[r.VPC] = append(static[r.VPC], r.Prefix.Masked())
		} else {
			connected[r.VPC] = append(connected[r.VPC], r.Prefix.Masked())
		}
	}
	off := map[uint32]bool{}
	for _, p := range s.Ports {
		if !vnis[p.VPC][p.VNI] {
			off[p.VPC] = true
		}
	}
	for _, b := range s.Bindings {
		if !vnis[b.VPC][b.VNI] {
			off[b.VPC] = true
		}
	}
	span := map[uint32]netip.Prefix{}
	for vpc, cs := range connected {
		if off[vpc] || insideAny(static[vpc], cs) {
			continue
		}
		sp := cs[0]
		for _, c := range cs[1:] {
			sp = commonPrefix(sp, c)
		}
		if sp.Bits() > 0 {
			span[vpc] = sp
		}
	}
	return span
}

// insideAny says whether a static route lies inside (or is) one of the
// connected ones, which would take part of a vxnet from its connected
// route.
func insideAny(static, connected []netip.Prefix) bool {
	for _, st := range static {
		for _, c := range connected {
			if st.Overlaps(c) && st.Bits() >= c.Bits() {
				return true
			}
		}
	}
	return false
}

// connectedVNIs gives, by VPC, the vxnets its connected routes lead to.
func connectedVNIs(routes []Route) map[uint32]map[uint32]bool {
	out := map[uint32]map[uint32]bool{}
	for _, r := range routes {
		if r.Nexthop.IsValid() {
			continue
		}
		if out[r.VPC] == nil {
			out[r.VPC] = map[uint32]bool{}
		}
		out[r.VPC][r.VNI] = true
	}
	return out
}

// commonPrefix is the smallest IPv4 prefix that holds both a and b.
func commonPrefix(a, b netip.Prefix) netip.Prefix {
	bits := min(a.Bits(), b.Bits())
	x, y := host32(a.Addr()), host32(b.Addr())
	for bits > 0 && (x^y)>>(32-bits) != 0 {
		bits--
	}
	p, _ := a.Addr().Prefix(bits)
	return p
}
