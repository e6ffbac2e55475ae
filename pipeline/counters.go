package pipeline

// Counter is one of the data plane's packet counters (the stats map).
// Numbers are stable, as for drop reasons: a retired counter keeps its
// number, a new one takes the next.
type Counter struct {
	ID   int
	Name string
	Doc  string
}

// Counters lists every counter, in the order of their numbers.
var Counters = []Counter{
	{0, "port_rx", "frames from VM ports"},
	{1, "tunnel_rx", "packets from the VXLAN device"},
	{2, "local_tx", "delivered to a local port"},
	{3, "remote_tx", "sent straight to the destination's host"},
	{4, "hub_tx", "sent to a hub: the destination was unknown"},
	{5, "arp_reply", "ARP requests (and gateway pings) answered on the host"},
	{6, "arp_to_hub", "ARP requests sent to a hub"},
	{7, "cache_hit", "learned path cache hits"},
	{8, "cache_miss", "learned path cache misses"},
	{9, "cache_stale", "cache entries past their refresh interval"},
	{10, "hub_forward", "hub: forwarded for another host"},
	{11, "hub_arp_reply", "hub: answered an encapsulated ARP request"},
	{12, "learn_sent", "hub: learn messages sent"},
	{13, "learn_installed", "learn messages accepted and installed"},
	{14, "forget_sent", "forget messages sent (stale destination)"},
	{15, "forget_applied", "forget messages that removed an entry"},
	{16, "announce", "address announcements seen from ports"},
	{17, "learn_skipped", "learn messages neither built nor handed to hostd (its queue full)"},
	{18, "announce_limited", "announcements not passed to hostd: the port is over its budget"},
	{19, "unknown_sent", "hub: told a sender that a destination is unknown"},
	{20, "unknown_installed", "destinations a hub said are unknown, now dropped here for a moment"},
	{21, "probe_answered", "hub: liveness probes answered"},
	{22, "probe_reply", "liveness probe replies from a hub recorded"},
	{23, "hub_down_skipped", "packets sent to another hub because the chosen one did not answer probes"},
	{24, "dhcp_reply", "DHCP offers, acks and naks sent"},
	{25, "icmp_error", "ICMP errors sent to a port"},
	{26, "icmp_limited", "ICMP errors not sent: the port is over its budget"},
	{27, "mss_clamped", "TCP SYNs whose MSS was lowered to fit the path MTU"},
	{28, "learn_via_hostd", "learn messages hostd sent for the kernel: the packet that led to them (merged by GRO) could not become them"},
	{29, "ct_new", "connections a security group rule allowed, now tracked"},
	{30, "ct_revalidated", "tracked connections checked again against changed rules or identities"},
	{31, "gw_down", "gateway: packets for an EIP tunnelled to its port's host"},
	{32, "gw_up", "gateway: packets from an EIP sent upstream"},
	{33, "ct_pickup", "TCP connections picked up mid-stream at a port new on this host (a migrated VM's), their reply direction allowed"},
	{34, "ct_related", "ICMP errors (unreachable, time exceeded, parameter problem) passed as about a connection tracked at the port"},
	{35, "snat_new", "connections given an address and a port of their port's SNAT blocks"},
	{36, "snat_in", "packets gateways brought back for connections translated by SNAT, translated to the port's address and port"},
	{37, "hairpin_back", "replies to a port without an EIP that called an EIP of its VPC (a hairpin), their source translated back to that EIP"},
	{38, "fragmented", "packets for a VM from outside the overlay (a gateway's upstream, a physical network) longer than the overlay's MTU, without DF, cut into fragments as a router between the two would (counted once a cut)"},
	{39, "encap_device", "packets for another host that the VXLAN device encapsulated, not the programs: not IPv4, VLAN-tagged, no route out of the underlay interface, a packet or segment over its MTU, or already encapsulated"},
}

// CounterNames are the counters' names indexed by number.
func CounterNames() []string {
	out := make([]string, len(Counters))
	for i, c := range Counters {
		out[i] = c.Name
	}
	return out
}
