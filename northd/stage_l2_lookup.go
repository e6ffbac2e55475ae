package northd

import "github.com/courier-sdn/courier/pipeline"

// l2_lookup: DHCP goes to the host's DHCP server; the gateway answers
// pings; frames for its MAC are routed; the vxnet's own addresses are
// delivered, or resolved by a hub.
func l2LookupFlows(b *flowBuilder, s scope) {
	cidr, gw, gwMAC := s.vx.cidr.String(), s.vx.gw.String(), s.vpc.gwMAC
	b.add(pipeline.L2Lookup, 120, "(ip4.dst == 255.255.255.255 || ip4.dst == "+gw+") && udp.src == 68 && udp.dst == 67", "dhcp;")
	b.add(pipeline.L2Lookup, 110, "eth.dst == "+gwMAC+" && ip4.dst == "+gw+" && icmp4.type == 8", "icmp_reply;")
	b.add(pipeline.L2Lookup, 100, "eth.dst == "+gwMAC, "next;")
	b.add(pipeline.L2Lookup, 90, "ip4.dst == "+cidr+" && dst.known", "output;")
	b.add(pipeline.L2Lookup, 80, "ip4.dst == "+cidr, "hub;")
	b.add(pipeline.L2Lookup, 0, "1", "drop(l2_unknown_dst);")
}
