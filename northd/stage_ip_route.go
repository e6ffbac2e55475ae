package northd

import (
	"fmt"

	"github.com/courier-sdn/courier/pipeline"
)

// ip_route: a connected route per vxnet and the VPC's static routes,
// longest prefix first (a connected route outranks a static one of the
// same length), every route above the catch-all, a default route
// (0.0.0.0/0) included. A packet whose TTL would reach zero, or that
// has no route, is answered with the ICMP error that says so
// (icmp_err); without a route, a port with an EIP reaches outside the
// VPC (eip_out), which answers the others with that error.
func ipRouteFlows(b *flowBuilder, s scope) {
	b.add(pipeline.IPRoute, 65000, "ip.ttl <= 1", "icmp_error(ttl_exceeded);")
	for _, u := range s.vpc.vxnets {
		vx := s.t.vxnets[u]
		b.add(pipeline.IPRoute, 2*vx.cidr.Bits()+2, "ip4.dst == "+vx.cidr.String(),
			fmt.Sprintf("ttl_dec; eth.src = %s; route(vni=%d);", s.vpc.gwMAC, vx.vni))
	}
	for _, r := range s.vpc.routes {
		b.add(pipeline.IPRoute, 2*r.prefix.Bits()+1, "ip4.dst == "+r.prefix.String(),
			fmt.Sprintf("ttl_dec; eth.src = %s; route(nexthop=%s, vni=%d);", s.vpc.gwMAC, r.nexthop, r.vni))
	}
	b.add(pipeline.IPRoute, 0, "1", "eip_out;")
}
