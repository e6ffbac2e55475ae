package rules

import (
	"fmt"
	"net/netip"
	"strings"
)

// External networks and their addresses (EIPs). The checks are shared by
// courier-nbctl, which refuses a bad command before it is sent, and
// northd, which refuses a bad row written by anyone else.

// Kinds of external network.
const (
	ExtnetPublic   = "public"
	ExtnetPhysical = "physical"
)

// ParseExtnetCIDRs parses an external network's prefixes: IPv4, network
// address only, /8 to /32, not overlapping one another.
func ParseExtnetCIDRs(cidrs []string) ([]netip.Prefix, error) {
	if len(cidrs) == 0 {
		return nil, fmt.Errorf("an external network needs at least one CIDR")
	}
	var out []netip.Prefix
	for _, s := range cidrs {
		p, err := ParseRoutePrefix(s)
		if err != nil {
			return nil, err
		}
		if p.Bits() < 8 {
			return nil, fmt.Errorf("external network prefix %s is shorter than /8", p)
		}
		for _, q := range out {
			if q.Overlaps(p) {
				return nil, fmt.Errorf("external network prefixes %s and %s overlap", q, p)
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// SplitCIDRs splits a command line's "CIDR[,CIDR...]".
func SplitCIDRs(s string) []string {
	var out []string
	for _, c := range strings.Split(s, ",") {
		if c = strings.TrimSpace(c); c != "" {
			out = append(out, c)
		}
	}
	return out
}

// CheckNextHop checks an external network's upstream next hop: an IPv4
// address, any, since the upstream is outside its prefixes as often as
// inside.
func CheckNextHop(s string) error {
	_, err := ParseIP(s)
	return err
}

// CheckEIP checks that an EIP is a usable address of its network: inside
// one of its prefixes, and neither the network nor the broadcast address
// of a prefix longer than /31.
func CheckEIP(extnet string, prefixes []netip.Prefix, s string) (netip.Addr, error) {
	return checkExternalAddr("EIP", extnet, prefixes, s)
}

// checkExternalAddr checks an address given out of an external network
// (what names what kind of address, for the error).
func checkExternalAddr(what, extnet string, prefixes []netip.Prefix, s string) (netip.Addr, error) {
	a, err := ParseIP(s)
	if err != nil {
		return a, err
	}
	for _, p := range prefixes {
		if !p.Contains(a) {
			continue
		}
		if p.Bits() <= 30 && (a == p.Addr() || a == Broadcast(p)) {
			return a, fmt.Errorf("%s %s is the network or broadcast address of %s", what, a, p)
		}
		return a, nil
	}
	return a, fmt.Errorf("%s %s is outside external network %s (%s)", what, a, extnet, prefixList(prefixes))
}

func prefixList(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}
