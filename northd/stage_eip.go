package northd

import "github.com/courier-sdn/courier/pipeline"

// eip_in: what a gateway tunnels for the EIP of a local port is
// translated to the port's address, and what it brings back for a
// connection a local port opened through SNAT to the connection's own
// address and port; then tun_lookup delivers it.
func eipInFlows(b *flowBuilder, _ scope) {
	b.add(pipeline.EIPIn, 100, "ip4 && dst.eip", "eip_dnat;")
	b.add(pipeline.EIPIn, 90, "ip4 && dst.snat", "unsnat;")
	b.add(pipeline.EIPIn, 0, "1", "next;")
}

// eip_out: what ip_route found no route for leaves through a gateway if
// its port has an EIP, or else if its VPC has SNAT addresses (southd's
// SNAT_Block rows say which ports, hostd's data plane which
// connections); else the VM is told there is no route.
func eipOutFlows(b *flowBuilder, _ scope) {
	b.add(pipeline.EIPOut, 100, "inport.eip && eip.gateway", "eip_snat;")
	b.add(pipeline.EIPOut, 90, "inport.eip", "drop(no_gateway);")
	b.add(pipeline.EIPOut, 80, "inport.snat && snat.gateway", "snat;")
	b.add(pipeline.EIPOut, 70, "inport.snat", "drop(no_gateway);")
	b.add(pipeline.EIPOut, 0, "1", "icmp_error(no_route);")
}
