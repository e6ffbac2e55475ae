package pipeline

import (
	"strconv"
	"strings"
)

// The DVR's stages are fixed-function: each implements a few behaviours,
// and a datapath's logical flows switch them on (hostd compiles the flows
// of each stage into these bits; the C code tests them). A vxnet's flags
// live in its vxnets map entry (VX_F_*), a VPC's in its vpcs entry
// (VPC_F_*). Bits never change meaning; a retired flag keeps its bit.

// Vxnet flags.
const (
	VxPsecMAC      uint32 = 0x01
	VxPsecIP       uint32 = 0x02
	VxARPGw        uint32 = 0x04
	VxARPProxy     uint32 = 0x08
	VxARPMissHub   uint32 = 0x10
	VxL2Route      uint32 = 0x20
	VxL2Output     uint32 = 0x40
	VxL2MissHub    uint32 = 0x80
	VxGwPing       uint32 = 0x100
	VxTunARPReply  uint32 = 0x200
	VxTunARPAnswer uint32 = 0x400
	VxDHCP         uint32 = 0x800
	VxICMPTTL      uint32 = 0x1000
	VxICMPUnreach  uint32 = 0x2000
	VxICMPFrag     uint32 = 0x4000
	VxMSSClamp     uint32 = 0x8000
)

// VPC flags.
const (
	VPCTTL          uint32 = 0x1
	VPCDstLocal     uint32 = 0x2
	VPCDstKnown     uint32 = 0x4
	VPCDstMissHub   uint32 = 0x8
	VPCHubUnknown   uint32 = 0x10
	VPCHubBudget    uint32 = 0x20
	VPCLearn        uint32 = 0x40
	VPCForget       uint32 = 0x80
	VPCLearnUnknown uint32 = 0x100
	VPCProbe        uint32 = 0x200
	VPCTunLocal     uint32 = 0x400
	VPCTunHub       uint32 = 0x800
	VPCTunStale     uint32 = 0x1000
	VPCSGEgress     uint32 = 0x2000
	VPCSGIngress    uint32 = 0x4000
	VPCEIPIn        uint32 = 0x8000
	VPCEIPOut       uint32 = 0x10000
	VPCSNATIn       uint32 = 0x20000
	VPCSNATOut      uint32 = 0x40000
)

// Flag documents one bit.
type Flag struct {
	Bit   uint32
	Name  string // C: VX_F_<NAME> or VPC_F_<NAME>
	Scope string // DPVxnet or DPVPC
	Stage int
	// Default: on for a datapath that has no flows for the stage at all
	// (a northd older than the stage), so that hosts can be upgraded
	// before the central services.
	Default bool
	Doc     string
}

// Flags lists every bit.
var Flags = []Flag{
	{VxPsecMAC, "psec_mac", DPVxnet, PortSec, false, "drop(spoof_mac): a port's frames must carry its MAC"},
	{VxPsecIP, "psec_ip", DPVxnet, PortSec, false, "drop(spoof_ip): a port's IPv4 and ARP must come from its addresses"},
	{VxARPGw, "arp_gw", DPVxnet, ARPRsp, false, "answer ARP for the gateway with the VPC's gateway MAC"},
	{VxARPProxy, "arp_proxy", DPVxnet, ARPRsp, false, "answer ARP for known addresses of the vxnet"},
	{VxARPMissHub, "arp_miss_hub", DPVxnet, ARPRsp, false, "send ARP for unknown addresses to a hub"},
	{VxL2Route, "l2_route", DPVxnet, L2Lookup, false, "frames for the gateway MAC go on to routing"},
	{VxL2Output, "l2_output", DPVxnet, L2Lookup, false, "deliver to known destinations of the vxnet"},
	{VxL2MissHub, "l2_miss_hub", DPVxnet, L2Lookup, false, "send frames for unknown destinations to a hub"},
	{VxGwPing, "gw_ping", DPVxnet, L2Lookup, false, "the gateway answers pings"},
	{VxTunARPReply, "tun_arp_reply", DPVxnet, TunARP, true, "deliver a hub's ARP answer to the local VM that asked"},
	{VxTunARPAnswer, "tun_arp_answer", DPVxnet, TunARP, true, "a hub answers encapsulated ARP requests from its bindings"},
	{VxDHCP, "dhcp", DPVxnet, DHCP, true, "answer the ports' DHCP on their host"},
	{VxICMPTTL, "icmp_ttl", DPVxnet, ICMPErr, true, "time exceeded when routing would take the TTL to zero"},
	{VxICMPUnreach, "icmp_unreach", DPVxnet, ICMPErr, true, "destination unreachable when the VPC has no route"},
	{VxICMPFrag, "icmp_frag", DPVxnet, ICMPErr, true, "fragmentation needed, with the path MTU, for a packet too big"},
	{VxMSSClamp, "mss_clamp", DPVxnet, PortSec, false, "clamp the MSS of a port's TCP SYNs to what the path MTU carries"},
	{VPCTTL, "ttl", DPVPC, IPRoute, false, "drop(ttl_exceeded) when routing would take the TTL to zero"},
	{VPCDstLocal, "dst_local", DPVPC, DstLookup, false, "deliver to local destinations"},
	{VPCDstKnown, "dst_known", DPVPC, DstLookup, false, "send to known or learned remote destinations"},
	{VPCDstMissHub, "dst_miss_hub", DPVPC, DstLookup, false, "send unknown destinations to a hub"},
	{VPCHubUnknown, "hub_unknown", DPVPC, ToHub, true, "drop(dst_unknown) what a hub said lately nobody has"},
	{VPCHubBudget, "hub_budget", DPVPC, ToHub, true, "drop(hub_budget) beyond the port's budget of packets to hubs"},
	{VPCLearn, "learn", DPVPC, TunLearn, true, "install direct paths the VPC's hubs teach"},
	{VPCForget, "forget", DPVPC, TunLearn, true, "forget a path when a hub or the host it points to says so"},
	{VPCLearnUnknown, "learn_unknown", DPVPC, TunLearn, true, "note addresses a hub says nobody has"},
	{VPCProbe, "probe", DPVPC, TunLearn, true, "a hub answers liveness probes; replies from hubs are recorded"},
	{VPCTunLocal, "tun_local", DPVPC, TunLookup, true, "deliver tunnel packets to local ports"},
	{VPCTunHub, "tun_hub", DPVPC, TunLookup, true, "a hub forwards for other hosts, teaches senders, and tells them of unknown destinations"},
	{VPCTunStale, "tun_stale", DPVPC, TunLookup, true, "a packet for a VM no longer here goes to a hub and its sender is told to forget"},
	{VPCSGEgress, "sg_egress", DPVPC, SGEgress, false, "drop(sg_egress): what a port sends must be allowed by its groups' egress rules or a tracked connection"},
	{VPCSGIngress, "sg_ingress", DPVPC, SGIngress, false, "drop(sg_ingress): what a port receives must be allowed by its groups' ingress rules or a tracked connection"},
	{VPCEIPIn, "eip_in", DPVPC, EIPIn, false, "translate what gateways tunnel for the EIPs of local ports to the ports' addresses"},
	{VPCEIPOut, "eip_out", DPVPC, IPRoute, false, "send what a port with an EIP addresses outside the VPC to the eip_out stage"},
	{VPCSNATIn, "snat_in", DPVPC, EIPIn, false, "translate back what gateways tunnel for connections of local ports translated by SNAT"},
	{VPCSNATOut, "snat_out", DPVPC, EIPOut, false, "translate what a port without an EIP sends outside the VPC to its VPC's SNAT addresses, within the port's blocks"},
}

// FlagsOf lists the flags of a scope (DPVxnet or DPVPC).
func FlagsOf(scope string) []Flag {
	var out []Flag
	for _, f := range Flags {
		if f.Scope == scope {
			out = append(out, f)
		}
	}
	return out
}

// DefaultFlags are the bits of a scope's stage that are on when the
// datapath has no flows for that stage.
func DefaultFlags(scope string, stage int) uint32 {
	var v uint32
	for _, f := range Flags {
		if f.Scope == scope && f.Stage == stage && f.Default {
			v |= f.Bit
		}
	}
	return v
}

// FlagNames renders a flag word by name: "psec_mac|psec_ip", with the
// hex of unknown bits appended.
func FlagNames(scope string, v uint32) string {
	var parts []string
	for _, f := range FlagsOf(scope) {
		if v&f.Bit != 0 {
			parts = append(parts, f.Name)
			v &^= f.Bit
		}
	}
	if v != 0 {
		parts = append(parts, "0x"+strconv.FormatUint(uint64(v), 16))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, "|")
}

// AllFlags is every bit of a scope: every behaviour on.
func AllFlags(scope string) uint32 {
	var v uint32
	for _, f := range FlagsOf(scope) {
		v |= f.Bit
	}
	return v
}
