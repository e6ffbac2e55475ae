package northd

import (
	"net"
	"strconv"
	"strings"

	"github.com/courier-sdn/courier/pipeline"
)

// dhcp: a port's DHCP is answered on its host with its own address and
// what its vxnet's options and its VPC's routes say (rules.DHCPOptions),
// as OVN's put_dhcp_opts; with DHCP off, refused by name.
func dhcpFlows(b *flowBuilder, s scope) {
	if s.vx.dhcp.Off {
		b.add(pipeline.DHCP, 0, "1", "drop(dhcp_unsupported);")
		return
	}
	b.add(pipeline.DHCP, 100, "udp.dst == 67", "dhcp_reply("+dhcpArgs(s)+");")
	b.add(pipeline.DHCP, 0, "1", "drop(dhcp_unsupported);")
}

// maxRoutesOpt is what option 121 holds.
const maxRoutesOpt = 255

// dhcpArgs are dhcp_reply's arguments for a vxnet: router, mask and
// lease always; DNS, domain and MTU when there are; the VPC's static
// routes as classless routes (through the gateway) when they fit the
// option (with the default route the client then needs).
func dhcpArgs(s scope) string {
	d := s.vx.dhcp
	args := []string{"router=" + s.vx.gw.String(),
		"netmask=" + net.IP(net.CIDRMask(s.vx.cidr.Bits(), 32)).String(),
		"lease=" + strconv.Itoa(d.Lease)}
	if d.MTU > 0 {
		args = append(args, "mtu="+strconv.Itoa(d.MTU))
	}
	if d.DNS != "" {
		args = append(args, "dns={"+d.DNS+"}")
	}
	if d.Domain != "" {
		args = append(args, "domain="+strconv.Quote(d.Domain))
	}
	var routes []string
	size := 1 + 4 // the default route
	for _, r := range s.vpc.routes {
		if r.err != "" || r.prefix.Bits() == 0 {
			continue
		}
		size += 1 + (r.prefix.Bits()+7)/8 + 4
		routes = append(routes, r.prefix.String())
	}
	if len(routes) > 0 && size <= maxRoutesOpt {
		args = append(args, "routes={"+strings.Join(routes, ", ")+"}")
	}
	return strings.Join(args, ", ")
}
