package northd

import "github.com/courier-sdn/courier/pipeline"

// tun_arp: a hub's answer reaches the VM that asked; a hub answers from
// its bindings and teaches the asker, or tells it nobody has the address.
func tunARPFlows(b *flowBuilder, _ scope) {
	b.add(pipeline.TunARP, 100, "arp.op == 2 && dst.local", "output;")
	b.add(pipeline.TunARP, 90, "arp.op == 1 && chassis.hub && dst.known", "arp_reply(dst.mac); teach;")
	b.add(pipeline.TunARP, 80, "arp.op == 1 && chassis.hub", "tell_unknown;")
	b.add(pipeline.TunARP, 70, "arp", "drop(arp_unanswered);")
	b.add(pipeline.TunARP, 0, "1", "next;")
}
