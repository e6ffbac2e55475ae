package northd

import "github.com/courier-sdn/courier/pipeline"

// port_sec: a port's frames carry its MAC, and its IPv4 and ARP its
// addresses (inport.addrs: its IPs and virtual IPs, resolved from its
// binding by the data plane); a DHCP client without an address yet may
// ask for one. A frame bigger than the path carries is answered with
// the MTU it needs (icmp_err), and TCP SYNs get an MSS the path carries.
func portSecFlows(b *flowBuilder, _ scope) {
	b.add(pipeline.PortSec, 110, "pkt.too_big", "icmp_error(oversize);")
	b.add(pipeline.PortSec, 100, "inport.security && eth.src != inport.mac", "drop(spoof_mac);")
	b.add(pipeline.PortSec, 100, "inport.security && arp && (arp.sha != inport.mac || arp.spa != inport.addrs)", "drop(spoof_ip);")
	b.add(pipeline.PortSec, 95, "ip4.src == 0.0.0.0 && udp.src == 68 && udp.dst == 67", "next;")
	b.add(pipeline.PortSec, 90, "inport.security && ip4 && ip4.src != inport.addrs", "drop(spoof_ip);")
	b.add(pipeline.PortSec, 80, "!arp && !ip4", "drop(unsupported_proto);")
	b.add(pipeline.PortSec, 10, "tcp.syn", "clamp_mss; next;")
	b.add(pipeline.PortSec, 0, "1", "next;")
}
