package northd

import "github.com/courier-sdn/courier/pipeline"

// arp_rsp: the gateway answers for itself, the host for the addresses it
// knows, a hub for the rest; nothing else is answered.
func arpRspFlows(b *flowBuilder, s scope) {
	cidr, gw := s.vx.cidr.String(), s.vx.gw.String()
	b.add(pipeline.ARPRsp, 110, "arp.op == 1 && arp.tpa == "+gw, "arp_reply("+s.vpc.gwMAC+");")
	b.add(pipeline.ARPRsp, 100, "arp.op == 1 && arp.tpa == "+cidr+" && dst.known", "arp_reply(dst.mac);")
	b.add(pipeline.ARPRsp, 90, "arp.op == 1 && arp.tpa == "+cidr, "hub;")
	b.add(pipeline.ARPRsp, 80, "arp", "drop(arp_unanswered);")
	b.add(pipeline.ARPRsp, 0, "1", "next;")
}
