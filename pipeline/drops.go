package pipeline

// DropReason is why the data plane dropped a packet. Every drop goes
// through one path in the C code and is counted per reason; flows name
// reasons in drop(REASON). Numbers are stable: a retired reason keeps its
// number, a new one takes the next.
type DropReason struct {
	ID   int
	Name string
	Doc  string
}

// DropReasons lists every reason. ID 0 is never a drop.
var DropReasons = []DropReason{
	{1, "no_port", "frame from an interface that is not a bound port"},
	{2, "spoof_mac", "source MAC is not the port's"},
	{3, "spoof_ip", "source IP (or ARP sender) is not the port's nor one of its virtual IPs"},
	{4, "unsupported_proto", "neither IPv4 nor ARP"},
	{5, "ipv6", "IPv6 is not routed yet"},
	{6, "vlan", "VLAN-tagged frame from a VM port"},
	{7, "malformed", "truncated or inconsistent headers"},
	{8, "arp_unanswered", "ARP that is not a request for an address of the vxnet"},
	{9, "l2_unknown_dst", "destination outside the vxnet and not sent to the gateway"},
	{10, "no_route", "no route in the VPC for the destination"},
	{11, "ttl_exceeded", "TTL would reach zero"},
	{12, "no_hub", "destination unknown and the VPC has no hub"},
	{13, "unknown_vni", "tunnel packet for a VNI this host does not serve"},
	{14, "stale_from_hub", "a hub forwarded a packet for a VM that is not here"},
	{15, "learn_rejected", "learn message not from one of the VPC's hubs"},
	{16, "hub_miss", "the hub does not know the destination either"},
	{17, "redirect_failed", "the kernel refused the redirect"},
	{18, "oversize", "frame longer than the port's MTU"},
	{19, "learn_malformed", "learn message too short or of an unknown version"},
	{20, "l2_cross_vxnet", "L2 frame for an address of another vxnet"},
	{21, "loop", "packet would be sent back where it came from"},
	{22, "hub_budget", "the port sent more packets to hubs (unknown destinations) than its budget allows"},
	{23, "dst_unknown", "a hub said lately that the destination does not exist"},
	{24, "dhcp_unsupported", "a DHCP message Courier does not answer (or DHCP for this vxnet is off)"},
	{25, "dhcp_no_address", "DHCP from a port with no fixed address to offer"},
	{26, "sg_egress", "no egress rule of the sending port's security groups allows the connection (or no longer does)"},
	{27, "sg_ingress", "no ingress rule of the receiving port's security groups allows the connection (or no longer does)"},
	{28, "no_gateway", "the port's EIP belongs to an external network with no gateway"},
	{29, "gw_spoof", "a gateway got a packet from an EIP whose port is not on the host that sent it"},
	{30, "snat_exhausted", "a new connection from a port translated by SNAT found no free port in the port's blocks (its host asks for more before they run out)"},
	{31, "snat_untracked", "a packet from a port translated by SNAT that no connection maps: a later fragment whose first was not seen, an ICMP message other than an echo request, a protocol other than TCP, UDP and ICMP, or a TCP segment of no connection other than a SYN (a migrated port's, before its connections are handed over)"},
	{32, "snat_quota", "a port translated by SNAT opened as many connections as its host lets one port hold (courier-hostd --snat-port-quota), so that no VM takes the host's whole table"},
	{33, "snat_table_full", "the host's table of connections translated by SNAT is full: no new connection is mapped until a sweep frees entries"},
	{34, "gw_no_block", "a gateway got a packet for a SNAT address and a port of no block it knows (free, or not learned yet), or a later fragment whose first it did not see: it is not the gateway's own, and its stack would only send it back upstream"},
	{35, "mtu_exceeded", "a packet for a VM from outside the overlay (a gateway's upstream, a physical network), longer than the overlay's MTU, that may not be cut into fragments: with DF set (answered with ICMP fragmentation needed, within the device's ICMP budget), a GSO packet, or one with IP options"},
	{36, "phys_underlay", "a port with a physical EIP sent to a host's VTEP, this host's underlay address or its network's broadcast, or to a broadcast or multicast address: tenants never reach the hosts, whose VXLAN devices take a packet of any VNI and group from anyone"},
	{37, "unknown_vtep", "a VXLAN packet from an address that is no chassis's VTEP, or to an address of this host other than its VTEP (a broadcast, a multicast group, another of its addresses): a host takes tunnel traffic only from the southbound's hosts and gateways, sent to it, not from whatever else shares their segment"},
}

// DropByName returns the reason named n.
func DropByName(n string) (DropReason, bool) {
	for _, d := range DropReasons {
		if d.Name == n {
			return d, true
		}
	}
	return DropReason{}, false
}

// DropName returns the name of reason id, or "unknown".
func DropName(id int) string {
	for _, d := range DropReasons {
		if d.ID == id {
			return d.Name
		}
	}
	return "unknown"
}
