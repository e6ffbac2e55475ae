// Package pipeline declares the stages of Courier's distributed virtual
// router once, with stable names and numbers, for everything that speaks
// about them: northd stamps every logical flow with its stage, hostd
// compiles each stage's flows into the maps that stage reads, courier-trace
// walks them, and the C code gets the same numbers from the generated
// header dataplane/bpf/stages.h. It also holds the logical flow language
// (lang.go) and the named drop reasons (drops.go).
//
// A stage's number and name never change meaning. A retired stage keeps
// its number; a new one takes the next.
package pipeline

// Datapath types a stage runs on.
const (
	DPVxnet = "vxnet"
	DPVPC   = "vpc"
)

// Stage is one step of the DVR pipeline, in the order a packet from a VM
// port meets them.
type Stage struct {
	ID       int
	Name     string
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
)

// Stages is the DVR pipeline. The schema's Logical_Flow.stage enum lists
// the same names (a test keeps them in step).
var Stages = []Stage{
	{PortSec, "port_sec", DPVxnet,
		"Admit a frame from a VM port: its source MAC, and its source IP for IPv4 and ARP, must be the port's own or one of its virtual IPs."},
	{ARPRsp, "arp_rsp", DPVxnet,
		"Answer ARP requests on the host: the gateway with the VPC's gateway MAC, known addresses from the bindings, unknown ones by one unicast to a hub."},
	{L2Lookup, "l2_lookup", DPVxnet,
		"Forward within the vxnet by destination IP and MAC; a frame for the gateway MAC goes on to routing."},
	{IPRoute, "ip_route", DPVPC,
		"Route between the VPC's vxnets and along its static routes in one hop: longest prefix wins, TTL-1, source MAC becomes the gateway's."},
	{DstLookup, "dst_lookup", DPVPC,
		"Find the destination's host: a local port, a known or learned binding, else one of the VPC's hubs chosen by flow hash."},
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
