package hostd

import (
	"net/netip"
	"slices"

	"github.com/courier-sdn/courier/dataplane"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// Physical-network EIPs (#15): a port's EIP whose network is of kind
// physical (Port_Binding.eip_kind) is served by the port's host on its
// underlay NIC, the interface holding its VTEP address: the data plane
// answers ARP for it there, translates what comes in and sends what the
// port addresses outside its VPC out of that NIC, and announces the
// address (gratuitous ARP) when it starts serving it. No gateway takes
// part, so none is looked up for its network.

// isPhysical says whether a binding's EIP is of a physical network.
func isPhysical(pb *sbdb.PortBinding) bool {
	return pb.EipKind != nil && *pb.EipKind == sbdb.PortBindingEipKindPhysical
}

// physEIP is a local port's physical EIP, or false; nets are the
// physical networks' prefixes (physNets), where the port may send.
func physEIP(pb *sbdb.PortBinding, ifindex int, nets map[string][]netip.Prefix) (dataplane.PhysEIP, bool) {
	if pb.Eip == nil || !isPhysical(pb) || len(pb.IPs) == 0 || ifindex <= 0 {
		return dataplane.PhysEIP{}, false
	}
	eip, err1 := netip.ParseAddr(*pb.Eip)
	addr, err2 := netip.ParseAddr(pb.IPs[0])
	if err1 != nil || err2 != nil {
		return dataplane.PhysEIP{}, false
	}
	e := dataplane.PhysEIP{Ifindex: ifindex, VPC: uint32(pb.Vpc), EIP: eip, Addr: addr}
	if pb.EipNetwork != nil {
		e.Dests = nets[*pb.EipNetwork]
	}
	return e, true
}

// physNets are the physical networks' prefixes, by name. A prefix that
// does not parse is left out (northd writes only those it accepted), so
// the port sends less, never more.
func physNets(rows []*sbdb.ExternalNetwork) map[string][]netip.Prefix {
	nets := map[string][]netip.Prefix{}
	for _, n := range rows {
		if n.Kind != sbdb.ExternalNetworkKindPhysical {
			continue
		}
		var ps []netip.Prefix
		for _, c := range n.Cidrs {
			if p, err := netip.ParsePrefix(c); err == nil && p.Addr().Is4() {
				ps = append(ps, p.Masked())
			}
		}
		slices.SortFunc(ps, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
		nets[n.Name] = ps
	}
	return nets
}
