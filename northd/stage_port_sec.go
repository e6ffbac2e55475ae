package northd

import "github.com/courier-sdn/courier/pipeline"

// port_sec: a port's frames carry its MAC, and its IPv4 and ARP its
// addresses (inport.addrs: its IPs and virtual IPs, resolved from its
// binding by the data plane).
func portSecFlows(b *flowBuilder, _ scope) {
	b.add(pipeline.PortSec, 100, "inport.security && eth.src != inport.mac", "drop(spoof_mac);")
	b.add(pipeline.PortSec, 100, "inport.security && arp && (arp.sha != inport.mac || arp.spa != inport.addrs)", "drop(spoof_ip);")
	b.add(pipeline.PortSec, 100, "inport.security && ip4 && ip4.src != inport.addrs", "drop(spoof_ip);")
	b.add(pipeline.PortSec, 90, "!arp && !ip4", "drop(unsupported_proto);")
	b.add(pipeline.PortSec, 0, "1", "next;")
}
