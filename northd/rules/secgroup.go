package rules

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Security groups, with AWS's and OpenStack's meaning: a group is a set of
// allow rules; a port in several groups is allowed what any of them
// allows; what no rule allows is refused, except replies of an allowed
// connection (groups are stateful). A rule says a direction (ingress: to
// the port; egress: from it), a protocol (tcp, udp, icmp or any), for tcp
// and udp an optional destination port range, and the remote end: a CIDR
// or another group of the same VPC (its members, by identity).

// DefaultGroup is the name of a VPC's default group: a port that names no
// group is in it. Unless the VPC declares one of its own by that name, it
// allows all egress and ingress from its own members.
const DefaultGroup = "default"

// SGRule is a security group rule, checked.
type SGRule struct {
	Ingress  bool
	Proto    string // tcp, udp, icmp, any
	PortMin  int    // 0: every port
	PortMax  int
	CIDR     netip.Prefix // valid unless Group is set
	Group    string       // the remote group's NB UUID
	HasGroup bool
}

// IPProto is the rule's IP protocol number, 0 for any.
func (r SGRule) IPProto() int {
	switch r.Proto {
	case "tcp":
		return 6
	case "udp":
		return 17
	case "icmp":
		return 1
	}
	return 0
}

// CheckSGRule checks a rule's columns: a port range only for tcp and udp,
// min <= max, and exactly one remote (a CIDR or a group).
func CheckSGRule(proto string, portMin, portMax *int, cidr, group *string) (SGRule, error) {
	r := SGRule{Proto: proto}
	switch proto {
	case "tcp", "udp", "icmp", "any":
	default:
		return r, fmt.Errorf("protocol %q: want tcp, udp, icmp or any", proto)
	}
	if portMin != nil || portMax != nil {
		if proto != "tcp" && proto != "udp" {
			return r, fmt.Errorf("a port range needs protocol tcp or udp, not %s", proto)
		}
		if portMin == nil || portMax == nil {
			return r, fmt.Errorf("a port range needs both port_min and port_max")
		}
		if *portMin < 1 || *portMax > 65535 || *portMin > *portMax {
			return r, fmt.Errorf("port range %d-%d: want 1 <= min <= max <= 65535", *portMin, *portMax)
		}
		r.PortMin, r.PortMax = *portMin, *portMax
	}
	switch {
	case cidr != nil && group != nil:
		return r, fmt.Errorf("a rule has one remote: a CIDR or a group, not both")
	case cidr != nil:
		p, err := ParseRoutePrefix(*cidr)
		if err != nil {
			return r, fmt.Errorf("remote: %w", err)
		}
		r.CIDR = p
	case group != nil:
		r.Group, r.HasGroup = *group, true
	default:
		return r, fmt.Errorf("the rule has no remote: its remote group was deleted, or it names neither a CIDR nor a group")
	}
	return r, nil
}

// CheckGroupName: a group's name is written in flows and in identity
// records, separated by commas and spaces.
func CheckGroupName(name string) error {
	if name == "" || strings.ContainsAny(name, ",= \t\n\"\\") {
		return fmt.Errorf("security group name %q: no commas, '=', quotes, backslashes or spaces", name)
	}
	return nil
}

// ParsePortRange reads "PORT" or "PORT-PORT".
func ParsePortRange(s string) (int, int, error) {
	lo, hi, ok := strings.Cut(s, "-")
	if !ok {
		hi = lo
	}
	a, err1 := strconv.Atoi(lo)
	b, err2 := strconv.Atoi(hi)
	if err1 != nil || err2 != nil || a < 1 || b > 65535 || a > b {
		return 0, 0, fmt.Errorf("port range %q: want PORT or MIN-MAX, 1 to 65535", s)
	}
	return a, b, nil
}
