package dataplane

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/courier-sdn/courier/pipeline"
)

// State is everything the data plane of one host should hold: hostd
// computes it from the southbound and hands it to Apply.
type State struct {
	Ports  []Port
	Vxnets []Vxnet
	VPCs   []VPC
	Routes []Route
	Hubs   []Hubs
	// Bindings are a hub's full table of the VPCs it serves (empty on
	// other hosts).
	Bindings []Binding
	// HubTable, when set, is the hub's table instead of Bindings, kept
	// by the caller across Applies: only its changes are written.
	HubTable *BindingTable
	// Locals are addresses held on this host beyond the ports' fixed IPs:
	// virtual IPs a local port took over, learned addresses of ports with
	// unknown addresses.
	Locals []Local
	// SG are the security groups of the VPCs that enforce them.
	SG []SGVPC
	// Interfaces are VM interfaces (host-side ifindexes) whose ports are
	// not programmed yet. The DVR is attached to them ahead of time, and
	// drops what they send (no_port) until their port is: attaching a
	// tcx program waits for an RCU grace period, 10-15 ms that would
	// otherwise be paid when the port is declared.
	Interfaces []int
	// EIPs of local ports, and the gateways of their networks (eip.go).
	EIPs        []EIP
	EIPGateways []EIPGateways
	// SNATPorts are local ports translated by their VPC's SNAT (snat.go);
	// their networks' gateways are in EIPGateways too.
	SNATPorts []SNATPort
	// Gateway, on a chassis that serves external networks.
	Gateway *Gateway
	// PhysEIPs are local ports' EIPs of physical networks, served on
	// the underlay NIC (phys.go); Underlay is its ifindex (0: none, and
	// phys_ingress is not attached).
	PhysEIPs []PhysEIP
	// VTEPs are every chassis's VTEP, from the southbound (vteps.go):
	// tun_admit takes VXLAN only from them, and no port with a physical
	// EIP sends to them (phys_route reads the same map; phys.go refuses
	// the underlay NIC's own addresses besides). Nil: no list, VXLAN
	// from anyone, no host's VTEP refused to physical EIPs (a data plane
	// driven without a southbound: tests, tools).
	VTEPs    []netip.Addr
	Underlay int
	// UnderlayMTU is the VMs' MTU, for what comes in by the underlay
	// NIC for a physical EIP: a longer packet is cut into fragments, or
	// answered with fragmentation needed if DF is set. 0: none is.
	UnderlayMTU int
	// VPCEIPs are every EIP of the VPCs this host takes part in, for
	// hairpins (hairpin.go).
	VPCEIPs []VPCEIP
	// VPCEIPsKey names VPCEIPs' content: when set and the same as the
	// last successful Apply's, Apply takes the list as unchanged and
	// neither compiles nor compares it (a VPC's EIPs can be as many as
	// its VMs, and every host of the VPC holds them all). "" compares.
	VPCEIPsKey string
}

// Port is a VM port on this host.
type Port struct {
	Ifindex  int
	Name     string // the logical port, for logs
	VNI      uint32
	VPC      uint32
	MAC      net.HardwareAddr
	MTU      int
	Security bool
	Unknown  bool // addresses unknown: report what it uses
	// Tap: the interface is a hypervisor's tap (a QEMU guest), not the
	// host side of a veth; the DVR delivers out of it rather than into a
	// peer. hostd sets it from the link's type (IsTap).
	Tap bool
	// Migrating: a live migration's destination, prepared before its
	// guest resumes here. Its frames are checked and its DVR answers
	// it, but its addresses are not delivered to it (the guest still
	// runs on the source), and its first RARP or ARP is reported
	// (EventResumed) for hostd to bind it here.
	Migrating bool
	IPs       []netip.Addr // fixed
	VIPs      []netip.Addr // it may send from these, and announce them
	TunnelKey uint32
	// DHCP is what its DHCP answers say; with no fixed IP or no DHCP,
	// DHCP from it is dropped (dhcp_no_address).
	DHCP *DHCP
	// Identity is its set of security groups (0: none, an open VPC).
	Identity uint32
}

// Vxnet is one subnet of a VPC.
type Vxnet struct {
	VNI   uint32
	VPC   uint32
	CIDR  netip.Prefix
	GwIP  netip.Addr
	GwMAC net.HardwareAddr
	Flags uint32 // pipeline.Vx*
}

// VPC is a VPC's routing datapath.
type VPC struct {
	ID    uint32
	GwMAC net.HardwareAddr
	Flags uint32 // pipeline.VPC*
}

// Route sends a VPC's prefix to a vxnet (connected) or to a next hop in
// one.
type Route struct {
	VPC     uint32
	Prefix  netip.Prefix
	VNI     uint32
	Nexthop netip.Addr // invalid for a connected route
}

// Hubs are the VTEPs of a VPC's hubs.
type Hubs struct {
	VPC   uint32
	VTEPs []netip.Addr
}

// Binding is where an address of a VPC lives (hubs only).
type Binding struct {
	VPC  uint32
	IP   netip.Addr
	VTEP netip.Addr
	VNI  uint32
	MAC  net.HardwareAddr
}

// Local is an address held by a local port beyond its fixed IPs.
type Local struct {
	VPC     uint32
	IP      netip.Addr
	Ifindex int
}

// ---- conversions to the C layouts ----

// be32 is an address as C's __be32 reads it on this (little-endian) host.
func be32(a netip.Addr) uint32 {
	b := a.As4()
	return binary.LittleEndian.Uint32(b[:])
}

// be32Or0 is be32 of a, or 0 (none) for an invalid a.
func be32Or0(a netip.Addr) uint32 {
	if !a.IsValid() {
		return 0
	}
	return be32(a)
}

func fromBE32(v uint32) netip.Addr {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

// host32 is an address in host byte order (VTEPs).
func host32(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

func fromHost32(v uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

func mac6(m net.HardwareAddr) [6]uint8 {
	var out [6]uint8
	copy(out[:], m)
	return out
}

func macString(m [6]uint8) string { return net.HardwareAddr(m[:]).String() }

func maskBE(p netip.Prefix) uint32 {
	m := uint32(0)
	if p.Bits() > 0 {
		m = ^uint32(0) << (32 - p.Bits())
	}
	return bits.ReverseBytes32(m)
}

func routeKey(vpc uint32, p netip.Prefix) dvrRouteKey {
	return dvrRouteKey{Prefixlen: 32 + uint32(p.Bits()), Vpc: bits.ReverseBytes32(vpc), Ip: be32(p.Masked().Addr())}
}

func (p dvrPort) String() string {
	var fl []string
	if p.Flags&portSecurity != 0 {
		fl = append(fl, "security")
	}
	if p.Flags&portUnknown != 0 {
		fl = append(fl, "unknown")
	}
	if len(fl) == 0 {
		fl = []string{"-"}
	}
	return fmt.Sprintf("vni %d vpc %d mac %s mtu %d flags %s key %d", p.Vni, p.Vpc, macString(p.Mac), p.Mtu, strings.Join(fl, "|"), p.TunnelKey)
}

func (v dvrVxnet) String() string {
	ones := bits.OnesCount32(v.Mask)
	return fmt.Sprintf("vpc %d %s/%d gw %s %s flags %s", v.Vpc, fromBE32(v.Net), ones, fromBE32(v.GwIp), macString(v.GwMac),
		pipeline.FlagNames(pipeline.DPVxnet, v.Flags))
}

func (c dvrCachedEp) String() string {
	return fmt.Sprintf("%s vni %d mac %s hits %d", fromHost32(c.Vtep), c.Vni, macString(c.Mac), c.Hits)
}

func hubsString(h dvrHubs) string {
	var s []string
	for i := 0; i < int(h.N) && i < len(h.Vtep); i++ {
		s = append(s, fromHost32(h.Vtep[i]).String())
	}
	return strings.Join(s, ",")
}

func sortedAddrs(a []netip.Addr) []netip.Addr {
	out := slices.Clone(a)
	slices.SortFunc(out, func(x, y netip.Addr) int { return x.Compare(y) })
	return out
}
