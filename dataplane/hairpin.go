package dataplane

import (
	"fmt"
	"net/netip"
)

// Hairpin (bpf/hairpin.h): every EIP of the VPCs this host takes part in,
// so that a local port with an EIP reaching another port's EIP of its VPC
// is translated and routed here, as VM to VM.

// VPCEIP is an EIP (public or physical) of a port of a VPC.
type VPCEIP struct {
	VPC  uint32
	EIP  netip.Addr
	Addr netip.Addr // the port's address
}

func (d *Datapath) vpcEIPsT() table[dvrVpcEipKey, uint32] {
	return table[dvrVpcEipKey, uint32]{d.objs.VpcEipsV1, "vpc_eips"}
}

func compileHairpin(s *State) (map[dvrVpcEipKey]uint32, error) {
	out := make(map[dvrVpcEipKey]uint32, len(s.VPCEIPs))
	for _, e := range s.VPCEIPs {
		if !e.EIP.Is4() || !e.Addr.Is4() {
			return nil, fmt.Errorf("EIP %s of VPC %d: bad addresses", e.EIP, e.VPC)
		}
		out[dvrVpcEipKey{Vpc: e.VPC, Eip: be32(e.EIP)}] = be32(e.Addr)
	}
	return out, nil
}
