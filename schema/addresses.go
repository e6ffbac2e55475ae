package schema

import (
	"strings"

	"github.com/courier-sdn/courier/schema/nbdb"
)

// Dynamic is the word a Port's mac, or the only member of its ips, holds
// to ask northd for an address; northd writes what it allocated into the
// port's dynamic_addresses ("MAC IP...", as OVN's
// Logical_Switch_Port.dynamic_addresses).
const Dynamic = "dynamic"

// PortAddresses are a port's MAC and IPs as the network uses them: in
// place of the word dynamic, what northd allocated, or the word itself
// until northd has written it. allocated says every dynamic address is
// known.
func PortAddresses(p *nbdb.Port) (mac string, ips []string, allocated bool) {
	mac, ips = p.MAC, p.IPs
	var f []string
	if p.DynamicAddresses != nil {
		f = strings.Fields(*p.DynamicAddresses)
	}
	if mac == Dynamic && len(f) > 0 {
		mac = f[0]
	}
	if len(ips) == 1 && ips[0] == Dynamic && len(f) > 1 {
		ips = f[1:]
	}
	return mac, ips, mac != Dynamic && !(len(ips) == 1 && ips[0] == Dynamic)
}
