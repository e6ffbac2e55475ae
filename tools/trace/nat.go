package trace

import (
	"fmt"
	"net/netip"

	"github.com/courier-sdn/courier/pipeline"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// What eip_out does beyond its flows, as the data plane does it
// (dataplane/bpf/hairpin.h, phys.h): a port reaching an EIP of its own
// VPC, with an EIP of its own or without, is a hairpin, routed on its
// own host to the EIP's port as VM to VM; a port whose EIP is of a
// physical network leaves from its host's underlay NIC, with no gateway.

// hairpinNAT is a hairpin's translation, made once sg_egress passed the
// packet: to the EIP's port's address, and from the sender's EIP if it
// has one (src; the receiver then sees it with no identity, as what a
// gateway brings), else from the sender's own address and identity.
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
		return nil, e.hairpin(step, to, netip.MustParseAddr(*in.Eip))
	}
	if physical(in) {
		if end := e.physRefused(step); end != nil {
			return end, -1
		}
		step.Verdict, step.Detail = "output", fmt.Sprintf("source translated to the port's physical-network IP %s; sent from "+
			"this host's underlay NIC onto %s, no gateway", deref(in.Eip), deref(in.EipNetwork))
		return &walkEnd{action: "output"}, -1
	}
	step.Verdict, step.Detail = "output", fmt.Sprintf("source translated to the port's EIP %s, to a gateway of %s",
		deref(in.Eip), deref(in.EipNetwork))
	return &walkEnd{action: "output"}, -1
}

// hairpin routes the packet to the port to, whose EIP it is addressed
// to, from a sender whose own EIP is own (invalid: none, its address
// kept). It returns the stage the walk goes on with.
func (e *env) hairpin(step *Step, to *sbdb.PortBinding, own netip.Addr) int {
	addr := netip.MustParseAddr(to.IPs[0])
	e.internet = true // sg_egress sees what the VM sent: to an address outside
	e.target, e.p.target = addr, addr
	if dp := e.w.dps[to.Datapath]; dp != nil {
		e.p.dvni = dp.TunnelKey
	}
	e.p.hairpin = &hairpinNAT{src: own, dst: addr}
	from := "from " + own.String()
	if !own.IsValid() {
		from = "its source kept (the sender has no EIP; its host translates the replies back from the EIP)"
	}
	step.Verdict = "next"
	step.Detail = fmt.Sprintf("a hairpin: %s is the EIP of %s (%s) in this VPC; routed to it on this host as VM to VM, "+
		"translated once sg_egress passed it, to %s, %s: no gateway", e.p.addr("ip4.dst"), to.LogicalPort, addr, addr, from)
	return pipeline.DstLookup
}

// privateHairpin is eip_out for a port without an EIP: to an EIP of its
// VPC, a hairpin, whichever flow matched (the data plane decides it
// before them, as for a port with an EIP). It returns the stage the walk
// goes on with, or -1 when it is no hairpin.
func (e *env) privateHairpin(st pipeline.Stage, step *Step) int {
	if st.ID != pipeline.EIPOut || e.w.inport == nil || e.w.inport.Eip != nil {
		return -1
	}
	to := e.w.vpcEIP(e.p.addr("ip4.dst"))
	if to == nil {
		return -1
	}
	return e.hairpin(step, to, netip.Addr{})
}

// translate makes a hairpin's translation once sg_egress let it go.
func (p *packet) translate() {
	if p.hairpin == nil {
		return
	}
	if p.hairpin.src.IsValid() {
		p.setAddr("ip4.src", p.hairpin.src)
		p.outside = true
	}
	p.setAddr("ip4.dst", p.hairpin.dst)
	p.hairpin = nil
}

// physRefused is where phys_route stops what a port with a physical EIP
// sends outside its VPC (bpf/phys.h): to a broadcast or multicast
// address, or to a host's VTEP. A host also refuses its own underlay
// addresses and their subnets' broadcast, which only its data plane
// knows (--chassis runs the real program).
func (e *env) physRefused(step *Step) *walkEnd {
	dst := e.p.addr("ip4.dst")
	if dst.IsMulticast() || dst == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		step.Verdict, step.Reason = "drop", "phys_underlay"
		step.Detail = fmt.Sprintf("dropped: %s would reach every host of the segment at once (phys_underlay)", dst)
		return &walkEnd{action: "drop", reason: step.Reason}
	}
	for _, c := range e.w.chassis {
		if c.EncapIP == dst.String() {
			step.Verdict, step.Reason = "drop", "phys_underlay"
			step.Detail = fmt.Sprintf("dropped: %s is %s's VTEP, and no port reaches the hosts (phys_underlay)", dst, c.Name)
			return &walkEnd{action: "drop", reason: step.Reason}
		}
	}
	return nil
}
