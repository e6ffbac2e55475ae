package pipeline

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// DHCPReply is what a dhcp_reply action says, read back (hostd).
type DHCPReply struct {
	Router  netip.Addr
	Netmask int // prefix length
	Lease   int
	MTU     int
	DNS     []netip.Addr
	Domain  string
	Routes  []netip.Prefix
}

// ParseDHCPReply reads dhcp_reply's arguments.
func ParseDHCPReply(a Action) (DHCPReply, error) {
	var r DHCPReply
	var err error
	for _, x := range a.Args {
		v := x.Value
		switch x.Key {
		case "router":
			r.Router, err = netip.ParseAddr(v)
		case "netmask":
			ip := net.ParseIP(v).To4()
			if ip == nil {
				return r, fmt.Errorf("netmask %q", v)
			}
			ones, bits := net.IPMask(ip).Size()
			if bits == 0 {
				return r, fmt.Errorf("netmask %q is not a mask", v)
			}
			r.Netmask = ones
		case "lease":
			r.Lease, err = strconv.Atoi(v)
		case "mtu":
			r.MTU, err = strconv.Atoi(v)
		case "domain":
			r.Domain, err = strconv.Unquote(v)
		case "dns":
			for _, f := range SetItems(v) {
				var ip netip.Addr
				if ip, err = netip.ParseAddr(f); err != nil {
					break
				}
				r.DNS = append(r.DNS, ip)
			}
		case "routes":
			for _, f := range SetItems(v) {
				var p netip.Prefix
				if p, err = netip.ParsePrefix(f); err != nil {
					break
				}
				r.Routes = append(r.Routes, p)
			}
		default:
			return r, fmt.Errorf("unknown dhcp_reply argument %q", x.Key)
		}
		if err != nil {
			return r, fmt.Errorf("dhcp_reply %s=%s: %w", x.Key, v, err)
		}
	}
	if !r.Router.IsValid() || r.Netmask == 0 || r.Lease <= 0 {
		return r, fmt.Errorf("dhcp_reply needs router, netmask and lease")
	}
	return r, nil
}

// SetItems splits an action argument's set, {A, B}, into its items.
func SetItems(v string) []string {
	var out []string
	for _, f := range strings.Split(strings.Trim(v, "{}"), ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
