// Package rules holds the checks on northbound intent that the schema
// cannot express: address syntax, an IP inside its vxnet, overlapping
// vxnets, reserved MACs. northd applies them to every row (and refuses
// the row, with the sentence returned here in its status column);
// courier-nbctl applies the same functions first, so that an operator gets
// the message before anything is written. Every error is one sentence
// naming the offending value.
package rules

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// Vxnet prefix lengths: a vxnet needs room for its gateway and at least
// one port; anything wider than /8 would not fit the 24-bit port keys.
const (
	MinVxnetPrefix = 8
	MaxVxnetPrefix = 29
)

// ParseIP parses a dotted-quad IPv4 address.
func ParseIP(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return netip.Addr{}, fmt.Errorf("%q is not an IPv4 address", s)
	}
	return a, nil
}

// ParseCIDR parses a vxnet CIDR, which must name its network address
// (10.0.1.0/24, not 10.0.1.5/24) and have a usable size.
func ParseCIDR(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is4() {
		return netip.Prefix{}, fmt.Errorf("%q is not an IPv4 CIDR", s)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("CIDR %s has host bits set; did you mean %s?", s, p.Masked())
	}
	if p.Bits() < MinVxnetPrefix || p.Bits() > MaxVxnetPrefix {
		return netip.Prefix{}, fmt.Errorf("CIDR %s: a vxnet's prefix length must be between /%d and /%d", s, MinVxnetPrefix, MaxVxnetPrefix)
	}
	return p, nil
}

// ParseRoutePrefix parses a route destination (any IPv4 prefix, /0 to
// /32, network address only).
func ParseRoutePrefix(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is4() {
		return netip.Prefix{}, fmt.Errorf("%q is not an IPv4 prefix", s)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("route prefix %s has host bits set; did you mean %s?", s, p.Masked())
	}
	return p, nil
}

// GatewayMACPrefix is reserved: every VPC's distributed gateway MAC is
// 0a:c0:00 followed by the VPC's 24-bit tunnel key, so no port may use a
// MAC that starts with it.
var GatewayMACPrefix = [3]byte{0x0a, 0xc0, 0x00}

// GatewayMAC is the distributed gateway MAC of the VPC with tunnel key k:
// the same on every host, locally administered, unicast.
func GatewayMAC(vpcKey int) string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", GatewayMACPrefix[0], GatewayMACPrefix[1],
		GatewayMACPrefix[2], byte(vpcKey>>16), byte(vpcKey>>8), byte(vpcKey))
}

// ParseMAC parses a port's MAC: six colon-separated octets, unicast, not
// zero, not in the gateway range. It returns the canonical lower-case form.
func ParseMAC(s string) (string, error) {
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 || strings.Count(s, ":") != 5 {
		return "", fmt.Errorf("%q is not a MAC address (want xx:xx:xx:xx:xx:xx)", s)
	}
	if hw[0]&1 == 1 {
		return "", fmt.Errorf("MAC %s is a multicast address", s)
	}
	if hw.String() == "00:00:00:00:00:00" {
		return "", fmt.Errorf("MAC %s is all zeros", s)
	}
	if hw[0] == GatewayMACPrefix[0] && hw[1] == GatewayMACPrefix[1] && hw[2] == GatewayMACPrefix[2] {
		return "", fmt.Errorf("MAC %s is in 0a:c0:00:00:00:00/24, reserved for gateway MACs", s)
	}
	return hw.String(), nil
}

// DefaultGateway is the first host address of a vxnet.
func DefaultGateway(p netip.Prefix) netip.Addr { return p.Addr().Next() }

// Broadcast is the last address of a prefix.
func Broadcast(p netip.Prefix) netip.Addr {
	a := p.Addr().As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v |= (1 << (32 - p.Bits())) - 1
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// isHost reports whether a is a usable host address of p.
func isHost(p netip.Prefix, a netip.Addr) bool {
	return p.Contains(a) && a != p.Addr() && a != Broadcast(p)
}

// CheckGateway checks a vxnet's gateway address.
func CheckGateway(vxnet string, p netip.Prefix, gw netip.Addr) error {
	if !isHost(p, gw) {
		return fmt.Errorf("gateway %s is not a host address of vxnet %s's CIDR %s", gw, vxnet, p)
	}
	return nil
}

// CheckPortIP checks that ip can be a port's (or virtual) address in a
// vxnet: a host address of the CIDR other than the gateway.
func CheckPortIP(vxnet string, p netip.Prefix, gw, ip netip.Addr) error {
	if !p.Contains(ip) {
		return fmt.Errorf("IP %s is outside vxnet %s's CIDR %s", ip, vxnet, p)
	}
	if !isHost(p, ip) {
		return fmt.Errorf("IP %s is the network or broadcast address of vxnet %s", ip, vxnet)
	}
	if ip == gw {
		return fmt.Errorf("IP %s is vxnet %s's gateway", ip, vxnet)
	}
	return nil
}

// Overlap reports the first vxnet of others whose CIDR overlaps p, or "".
func Overlap(p netip.Prefix, others map[string]netip.Prefix) string {
	best := ""
	for name, o := range others {
		if o.Overlaps(p) && (best == "" || name < best) {
			best = name
		}
	}
	return best
}

// Offset is ip's host offset inside p (10.0.1.5 in 10.0.1.0/24 is 5).
// northd uses it as the port's tunnel key: unique in the vxnet because IPs
// are, stable while the IP is, and a pure function of the intent.
func Offset(p netip.Prefix, ip netip.Addr) int {
	a, b := p.Addr().As4(), ip.As4()
	va := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	vb := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	return int(vb - va)
}

// Subnet is what route checks need to know of a vxnet.
type Subnet struct {
	Name    string
	CIDR    netip.Prefix
	Gateway netip.Addr
}

// CheckRoute checks a VPC static route: its next hop must be a host
// address of one of the VPC's vxnets (the route is one hop, resolved in
// the VPC), and its prefix must not lie inside a vxnet, which is routed
// directly.
func CheckRoute(vpc string, prefix netip.Prefix, nexthop netip.Addr, subnets []Subnet) error {
	reachable := false
	for _, s := range subnets {
		if CheckPortIP(s.Name, s.CIDR, s.Gateway, nexthop) == nil {
			reachable = true
		}
		if s.CIDR.Overlaps(prefix) && prefix.Bits() >= s.CIDR.Bits() {
			return fmt.Errorf("route prefix %s lies inside vxnet %s (%s), which is routed directly", prefix, s.Name, s.CIDR)
		}
	}
	if !reachable {
		return fmt.Errorf("next hop %s is not a host address in any vxnet of VPC %s", nexthop, vpc)
	}
	return nil
}
