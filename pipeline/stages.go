// Package pipeline declares the stages of Courier's distributed virtual
// router once, with stable names and numbers, for everything that speaks
// about them: northd stamps every logical flow with its stage, hostd
// compiles each stage's flows into the maps that stage reads, the C code
// runs one function per stage (numbered by the generated header
// dataplane/bpf/stages.h), and courier-trace prints one record per stage.
// It also holds the logical flow language (lang.go), the named drop
// reasons (drops.go), the counters (counters.go), the behaviours flows
// switch on (flags.go) and the vocabulary of trace records (trace.go).
//
// A stage's number and name never change meaning. A retired stage keeps
// its number; a new one takes the next.
package pipeline

// Datapath types a stage runs on.
const (
	DPVxnet = "vxnet"
	DPVPC   = "vpc"
)

// Direction says which packets a stage sees.
type Direction string

// Directions.
const (
	// FromPort: what a VM sends, on the host side of its port
	// (port_ingress).
	FromPort Direction = "from_port"
	// FromTunnel: what other hosts send, on the VXLAN device
	// (tunnel_ingress).
	FromTunnel Direction = "from_tunnel"
	// ToPort: on its way into a VM, from a local port or from the
	// tunnel (sg_ingress).
	ToPort Direction = "to_port"
)

// Directions lists them in the order a packet meets them.
var Directions = []Direction{FromPort, FromTunnel, ToPort}

// Stage is one step of the DVR pipeline.
type Stage struct {
	ID       int
	Name     string
	Dir      Direction
	Datapath string
	Doc      string
}

// Stage identifiers.
const (
	PortSec   = 0
	ARPRsp    = 1
	L2Lookup  = 2
	IPRoute   = 3
	DstLookup = 4
	ToHub     = 5
	TunAdmit  = 6
	TunLearn  = 7
	TunARP    = 8
	TunLookup = 9
	DHCP      = 10
	ICMPErr   = 11
	SGEgress  = 12
	SGIngress = 13
	EIPIn     = 14
	EIPOut    = 15
)

// Stages is the DVR pipeline, in the order a packet of each direction
// meets them. The schema's Logical_Flow.stage enum lists the same names
// (a test keeps them in step).
var Stages = []Stage{
	{PortSec, "port_sec", FromPort, DPVxnet,
		"Admit a frame from a VM port: a bound port, untagged, within its MTU; its source MAC, and its source IP for IPv4 and ARP, must be the port's own or one of its virtual IPs (a port with unknown addresses: a free address of its vxnet)."},
	{ARPRsp, "arp_rsp", FromPort, DPVxnet,
		"Answer ARP requests on the host: the gateway with the VPC's gateway MAC, known addresses from the bindings, unknown ones by one unicast to a hub; keep announcements on the host."},
	{L2Lookup, "l2_lookup", FromPort, DPVxnet,
		"Forward within the vxnet by destination IP and MAC; the gateway answers pings; a frame for the gateway MAC goes on to routing."},
	{IPRoute, "ip_route", FromPort, DPVPC,
		"Route between the VPC's vxnets and along its static routes in one hop: longest prefix wins, TTL-1, source MAC becomes the gateway's."},
	{DstLookup, "dst_lookup", FromPort, DPVPC,
		"Find the destination's host: a local port, a known or learned binding, else a hub."},
	{ToHub, "to_hub", FromPort, DPVPC,
		"Send a packet for a destination this host does not know to one of the VPC's hubs, chosen by flow hash among those answering probes, within the port's budget, unless a hub said lately that nobody has it."},
	{TunAdmit, "tun_admit", FromTunnel, DPVxnet,
		"Admit a packet from another host: a VNI this host serves, carrying IPv4, ARP or a learn message."},
	{TunLearn, "tun_learn", FromTunnel, DPVPC,
		"Take in a learn message: install a direct path a hub taught, forget one, note an address a hub says nobody has, answer or record a hub liveness probe."},
	{TunARP, "tun_arp", FromTunnel, DPVxnet,
		"ARP between hosts: deliver a hub's answer to the VM that asked; on a hub, answer from its bindings and teach the asker."},
	{TunLookup, "tun_lookup", FromTunnel, DPVPC,
		"Deliver to a local port; on a hub, complete the sender's route, forward to the destination's host and teach the sender, or tell it the destination is unknown; a packet for a VM no longer here goes to a hub, and its sender is told to forget."},
	{DHCP, "dhcp", FromPort, DPVxnet,
		"Answer a port's DHCP on its own host: its declared address, the vxnet's mask and gateway, the overlay MTU, DNS, domain, routes, lease and its name; never another address."},
	{ICMPErr, "icmp_err", FromPort, DPVxnet,
		"Tell the VM why its packet went no further, from its vxnet's gateway: time exceeded, destination unreachable, fragmentation needed with the path MTU; at most the port's budget of errors a second."},
	{SGEgress, "sg_egress", FromPort, DPVPC,
		"Security groups, on the sender's host: a packet of a tracked connection passes; a new one passes if an egress rule of one of the port's groups allows it (protocol, port range, a CIDR or the destination's group), and its connection is tracked; else it is dropped. The sender's identity goes with it to the destination's host."},
	{SGIngress, "sg_ingress", ToPort, DPVPC,
		"Security groups, on the receiver's host: a packet of a tracked connection passes; a new one passes if an ingress rule of one of the destination port's groups allows it (protocol, port range, a CIDR or the sender's group, by the identity it carries), and its connection is tracked; else it is dropped."},
	{EIPIn, "eip_in", FromTunnel, DPVPC,
		"A packet a gateway tunnelled for an EIP bound to a local port of the VPC: its destination becomes the port's address, statelessly (IPv4 and TCP/UDP checksums updated incrementally; an ICMP error's quoted packet translated too), then tun_lookup delivers it. A packet a gateway brought back for a connection a local port opened through SNAT: its destination address and port become the connection's own (an ICMP error's quoted packet too)."},
	{EIPOut, "eip_out", FromPort, DPVPC,
		"A packet for outside the VPC (no route) from a port with an EIP: its source becomes the EIP, statelessly, once the security groups passed it, and it goes to one of the EIP network's gateways, chosen by flow hash. From a port without an EIP in a VPC with SNAT: its source address and port become the connection's address and port of the port's SNAT blocks (the next free one for a new connection), and it goes the same way."},
}

// EnteredBy names, for a stage that a packet reaches only when an earlier
// stage sends it there, the action that does: such a stage is off the
// main line, and a stage's next; never falls into it.
var EnteredBy = map[int]string{
	DHCP:    "dhcp",
	ICMPErr: "icmp_error",
	// The driver runs the security group stages on every packet another
	// stage outputs to a VM: sg_egress on what a port sends, sg_ingress
	// on what a local port receives.
	SGEgress:  "output",
	SGIngress: "output",
	EIPOut:    "eip_out",
}

// ByName returns the stage named n.
func ByName(n string) (Stage, bool) {
	for _, s := range Stages {
		if s.Name == n {
			return s, true
		}
	}
	return Stage{}, false
}

// Of returns the stages of a direction, in order.
func Of(dir Direction) []Stage {
	var out []Stage
	for _, s := range Stages {
		if s.Dir == dir {
			out = append(out, s)
		}
	}
	return out
}
