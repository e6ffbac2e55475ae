package northd

import "github.com/courier-sdn/courier/pipeline"

// icmp_err: a VM is told, by its vxnet's gateway, why its packet went no
// further (icmp_error(REASON) in an earlier stage), with the ICMP error
// that says so; anything else stays dropped under its reason.
func icmpErrFlows(b *flowBuilder, _ scope) {
	b.add(pipeline.ICMPErr, 100, `error == "ttl_exceeded"`, "icmp4_error(type=11, code=0);")
	b.add(pipeline.ICMPErr, 100, `error == "no_route"`, "icmp4_error(type=3, code=0);")
	b.add(pipeline.ICMPErr, 100, `error == "oversize"`, "icmp4_error(type=3, code=4, mtu=inport.mtu);")
	b.add(pipeline.ICMPErr, 0, "1", "drop;")
}
