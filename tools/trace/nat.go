package trace

import (
	"fmt"
	"net/netip"

	"github.com/courier-sdn/courier/pipeline"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// What eip_out does beyond its flows, as the data plane does it
// (dataplane/bpf/hairpin.h, phys.h): a port with an EIP reaching an EIP
// of its own VPC is a hairpin, routed on its own host to the EIP's port
// as VM to VM; a port whose EIP is of a physical network leaves from its
// host's underlay NIC, with no gateway.

// hairpinNAT is a hairpin's translation, made once sg_egress passed the
// packet: the receiver sees it from the sender's EIP, to its own address,
// with no identity (as what a gateway brings).
type hairpinNAT struct {
	src, dst netip.Addr
}

// vpcEIP is the binding of the VPC whose EIP is a, or nil.
func (w *world) vpcEIP(a netip.Addr) *sbdb.PortBinding {
	for _, b := range w.bindings {
		if b.Eip != nil && *b.Eip == a.String() && b.EipVpc != nil && *b.EipVpc == w.vpc.TunnelKey && len(b.IPs) > 0 {
			return b
		}
	}
	return nil
}

// physical says whether a binding's EIP is of a physical network.
func physical(pb *sbdb.PortBinding) bool {
	return pb.EipKind != nil && *pb.EipKind == sbdb.PortBindingEipKindPhysical
}

// eipOut is eip_snat's step for a port with an EIP: a hairpin, the
// physical network, or a gateway. It returns how the walk ends, or the
// stage it goes on with.
func (e *env) eipOut(step *Step) (*walkEnd, int) {
	in := e.w.inport
	e.internet = true // sg_egress sees what the VM sent: to an address outside
	if to := e.w.vpcEIP(e.p.addr("ip4.dst")); to != nil {
		addr := netip.MustParseAddr(to.IPs[0])
		own := netip.MustParseAddr(*in.Eip)
		e.target, e.p.target = addr, addr
		if dp := e.w.dps[to.Datapath]; dp != nil {
			e.p.dvni = dp.TunnelKey
		}
		e.p.hairpin = &hairpinNAT{src: own, dst: addr}
		step.Detail = fmt.Sprintf("a hairpin: %s is the EIP of %s (%s) in this VPC; routed to it on this host as VM to VM, "+
			"translated once sg_egress passed it, from %s to %s: no gateway", e.p.addr("ip4.dst"), to.LogicalPort, addr, own, addr)
		return nil, pipeline.DstLookup
	}
	if physical(in) {
		step.Verdict, step.Detail = "output", fmt.Sprintf("source translated to the port's physical-network IP %s; sent from "+
			"this host's underlay NIC onto %s, no gateway", deref(in.Eip), deref(in.EipNetwork))
		return &walkEnd{action: "output"}, -1
	}
	step.Verdict, step.Detail = "output", fmt.Sprintf("source translated to the port's EIP %s, to a gateway of %s",
		deref(in.Eip), deref(in.EipNetwork))
	return &walkEnd{action: "output"}, -1
}

// translate makes a hairpin's translation once sg_egress let it go.
func (p *packet) translate() {
	if p.hairpin == nil || p.outside {
		return
	}
	p.setAddr("ip4.src", p.hairpin.src)
	p.setAddr("ip4.dst", p.hairpin.dst)
	p.outside = true
}
