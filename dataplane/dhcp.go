package dataplane

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// DHCP is what a port's DHCP answers say besides its address
// (bpf/stage_dhcp.h): hostd prepares it from the southbound, the data
// plane answers from it in the kernel.
type DHCP struct {
	Subnet   netip.Prefix // the mask, option 1
	Router   netip.Addr   // option 3
	MTU      int          // option 26
	DNS      []netip.Addr // option 6
	Domain   string       // option 15
	Hostname string       // option 12
	// Routes are classless static routes (option 121, RFC 3442), each
	// through Router; the default route is added, as a client that takes
	// 121 ignores option 3.
	Routes []netip.Prefix
	Lease  time.Duration // option 51; renewal (58) and rebinding (59) at 1/2 and 7/8
}

const (
	dhcpOptsLen  = 256
	dhcpLeaseLen = 18 // options 51, 58 and 59 come first: INFORM's answer blanks them
)

// Block encodes the options as the data plane copies them: lease
// options first (dhcpLeaseLen bytes), the rest, END, zeros to 256 bytes.
func (o DHCP) Block() ([]byte, error) {
	lease := dhcpv4.OptionsFromList(
		dhcpv4.OptIPAddressLeaseTime(o.Lease),
		dhcpv4.OptRenewTimeValue(o.Lease/2),
		dhcpv4.OptRebindingTimeValue(o.Lease/8*7))
	rest := dhcpv4.Options{}
	if o.Subnet.IsValid() {
		rest.Update(dhcpv4.OptSubnetMask(net.CIDRMask(o.Subnet.Bits(), 32)))
	}
	if o.Router.IsValid() {
		rest.Update(dhcpv4.OptRouter(o.Router.AsSlice()))
	}
	if len(o.DNS) > 0 {
		var ips []net.IP
		for _, a := range o.DNS {
			ips = append(ips, a.AsSlice())
		}
		rest.Update(dhcpv4.OptDNS(ips...))
	}
	if o.MTU > 0 {
		rest.Update(dhcpv4.OptGeneric(dhcpv4.OptionInterfaceMTU, []byte{byte(o.MTU >> 8), byte(o.MTU)}))
	}
	if o.Hostname != "" && len(o.Hostname) < 64 {
		rest.Update(dhcpv4.OptHostName(o.Hostname))
	}
	if o.Domain != "" && len(o.Domain) < 64 {
		rest.Update(dhcpv4.OptDomainName(o.Domain))
	}
	if len(o.Routes) > 0 && o.Router.IsValid() {
		var rs []*dhcpv4.Route
		for _, p := range append(append([]netip.Prefix{}, o.Routes...), netip.PrefixFrom(netip.IPv4Unspecified(), 0)) {
			p = p.Masked()
			rs = append(rs, &dhcpv4.Route{
				Dest:   &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 32)},
				Router: o.Router.AsSlice()})
		}
		opt := dhcpv4.OptClasslessStaticRoute(rs...)
		if n := len(opt.Value.ToBytes()); n > 255 {
			return nil, fmt.Errorf("DHCP: %d routes take %d bytes, more than option 121 holds", len(o.Routes), n)
		}
		rest.Update(opt)
	}
	b := append(lease.ToBytes(), rest.ToBytes()...)
	if len(b) != dhcpLeaseLen+len(rest.ToBytes()) {
		return nil, fmt.Errorf("DHCP lease options take %d bytes, want %d", len(b)-len(rest.ToBytes()), dhcpLeaseLen)
	}
	b = append(b, 255)
	if len(b) > dhcpOptsLen {
		return nil, fmt.Errorf("DHCP options take %d bytes, more than the %d a port's answer holds", len(b), dhcpOptsLen)
	}
	return append(b, make([]byte, dhcpOptsLen-len(b))...), nil
}
