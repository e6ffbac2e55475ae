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

// physEIP is a local port's physical EIP, or false.
func physEIP(pb *sbdb.PortBinding, ifindex int) (dataplane.PhysEIP, bool) {
	if pb.Eip == nil || !isPhysical(pb) || len(pb.IPs) == 0 || ifindex <= 0 {
		return dataplane.PhysEIP{}, false
	}
	eip, err1 := netip.ParseAddr(*pb.Eip)
	addr, err2 := netip.ParseAddr(pb.IPs[0])
	if err1 != nil || err2 != nil {
		return dataplane.PhysEIP{}, false
	}
	return dataplane.PhysEIP{Ifindex: ifindex, VPC: uint32(pb.Vpc), EIP: eip, Addr: addr}, true
}

// chassisVTEPs are every chassis's VTEP, sorted: the only senders this
// host takes VXLAN from, and addresses no port with a physical EIP sends
// to (the physical network shares the hosts' segment). Nil, no list,
// when this host's own row is not among them: a southbound view without
// it is not whole, and a list made from it would cut off every host it
// lacks.
func chassisVTEPs(encap map[string]netip.Addr, me string) []netip.Addr {
	if _, ok := encap[me]; !ok {
		return nil
	}
	out := make([]netip.Addr, 0, len(encap))
	for _, a := range encap {
		if a.Is4() && !a.IsUnspecified() {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}
