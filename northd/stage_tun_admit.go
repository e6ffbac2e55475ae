package northd

import "github.com/courier-sdn/courier/pipeline"

// tun_admit: from the tunnel come IPv4, ARP and learn messages.
func tunAdmitFlows(b *flowBuilder, _ scope) {
	b.add(pipeline.TunAdmit, 100, "ip6", "drop(ipv6);")
	b.add(pipeline.TunAdmit, 90, "!ip4 && !arp && !learn", "drop(unsupported_proto);")
	b.add(pipeline.TunAdmit, 0, "1", "next;")
}
