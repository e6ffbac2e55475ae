package rules

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// DefaultMACPrefix is the first three octets of dynamic MACs when
// NB_Global has no options:mac_prefix: locally administered, unicast,
// outside GatewayMACPrefix.
const DefaultMACPrefix = "0a:58:00"

// ParseMACPrefix parses NB_Global options:mac_prefix, three octets
// ("0a:58:c0") that must leave the MACs under them unicast and outside
// the gateway range. It returns the canonical lower-case form.
func ParseMACPrefix(s string) (string, error) {
	hw, err := net.ParseMAC(s + ":00:00:01")
	if err != nil || strings.Count(s, ":") != 2 {
		return "", fmt.Errorf("mac_prefix %q is not three octets (want xx:xx:xx)", s)
	}
	if hw[0]&1 == 1 {
		return "", fmt.Errorf("mac_prefix %s would make multicast MACs", s)
	}
	if hw[0] == GatewayMACPrefix[0] && hw[1] == GatewayMACPrefix[1] && hw[2] == GatewayMACPrefix[2] {
		return "", fmt.Errorf("mac_prefix %s is reserved for gateway MACs", s)
	}
	return hw.String()[:8], nil
}

// IPRange is an inclusive range of IPv4 addresses.
type IPRange struct{ Lo, Hi netip.Addr }

// Contains reports whether a is in the range.
func (r IPRange) Contains(a netip.Addr) bool { return r.Lo.Compare(a) <= 0 && a.Compare(r.Hi) <= 0 }

// ExcludeIPs parses a vxnet's options:exclude_ips, OVN's
// other_config:exclude_ips: addresses and LO..HI ranges separated by
// spaces (or commas), each inside the vxnet's CIDR. northd never
// allocates a dynamic address from them; fixed IPs may still use them.
func ExcludeIPs(vxnet string, p netip.Prefix, s string) ([]IPRange, error) {
	var out []IPRange
	for _, w := range strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' }) {
		lo, hi, isRange := strings.Cut(w, "..")
		if !isRange {
			hi = lo
		}
		a, err := ParseIP(lo)
		if err != nil {
			return nil, fmt.Errorf("options:exclude_ips: %v", err)
		}
		b, err := ParseIP(hi)
		if err != nil {
			return nil, fmt.Errorf("options:exclude_ips: %v", err)
		}
		if !p.Contains(a) || !p.Contains(b) {
			return nil, fmt.Errorf("options:exclude_ips: %s is outside vxnet %s's CIDR %s", w, vxnet, p)
		}
		if b.Less(a) {
			return nil, fmt.Errorf("options:exclude_ips: range %s ends before it starts", w)
		}
		out = append(out, IPRange{a, b})
	}
	return out, nil
}
