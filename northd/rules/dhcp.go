package rules

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// A vxnet's DHCP, from its options column (as OVN's DHCP_Options):
//
//	dhcp=false            no DHCP answers in this vxnet
//	dns_servers=A[,B...]  option 6 (default: none; Courier runs no resolver)
//	domain_name=NAME      option 15 (default: the VPC's name + ".internal")
//	lease_time=SECONDS    option 51 (default 43200, 12 hours)
//	mtu=N                 option 26 (default: the overlay MTU of the port's host)
//
// The address, mask, router, hostname (the port's name) and classless
// routes (the VPC's static routes) are not options: they follow from the
// port, the vxnet and the VPC.
type DHCP struct {
	Off    bool
	DNS    string // "A, B": as the flow prints it
	Domain string
	Lease  int // seconds
	MTU    int // 0: the host's
}

// DefaultLease is a lease's length when the vxnet does not say.
const DefaultLease = 12 * time.Hour

// DHCPOptions reads a vxnet's DHCP options; vpc names the default domain.
// An error names the option and value at fault.
func DHCPOptions(opts map[string]string, vpc string) (DHCP, error) {
	d := DHCP{Lease: int(DefaultLease / time.Second)}
	if isDNSName(vpc) {
		d.Domain = strings.ToLower(vpc) + ".internal"
	}
	if v, ok := opts["dhcp"]; ok {
		switch v {
		case "true":
		case "false":
			d.Off = true
		default:
			return d, fmt.Errorf("options:dhcp=%q: want true or false", v)
		}
	}
	if v, ok := opts["dns_servers"]; ok {
		var ips []string
		for _, f := range strings.FieldsFunc(strings.Trim(v, "{}"), func(r rune) bool { return r == ',' || r == ' ' }) {
			a, err := netip.ParseAddr(f)
			if err != nil || !a.Is4() || a.IsUnspecified() || a.IsMulticast() {
				return d, fmt.Errorf("options:dns_servers: %q is not a DNS server's IPv4 address", f)
			}
			ips = append(ips, a.String())
		}
		if len(ips) > 8 {
			return d, fmt.Errorf("options:dns_servers: %d servers, at most 8", len(ips))
		}
		d.DNS = strings.Join(ips, ", ")
	}
	if v, ok := opts["domain_name"]; ok {
		if v != "" && !isDNSName(v) {
			return d, fmt.Errorf("options:domain_name=%q is not a domain name", v)
		}
		d.Domain = strings.ToLower(v)
	}
	if v, ok := opts["lease_time"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 60 || n > 1<<30 {
			return d, fmt.Errorf("options:lease_time=%q: want seconds, 60 or more", v)
		}
		d.Lease = n
	}
	if v, ok := opts["mtu"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 576 || n > 9000 {
			return d, fmt.Errorf("options:mtu=%q: want 576 to 9000", v)
		}
		d.MTU = n
	}
	return d, nil
}

// isDNSName: dot-separated labels of letters, digits and inner hyphens,
// short enough for option 15.
func isDNSName(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, c := range l {
			if !(c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
				return false
			}
		}
	}
	return true
}
