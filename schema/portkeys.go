package schema

import (
	"strings"

	"github.com/google/uuid"

	"github.com/courier-sdn/courier/schema/nbdb"
)

// A port's MAC and, for most ports, its IP are unique within its vxnet
// by two columns of the Port row itself (schema 1.8.0): mac_key and
// ip_key, each under a unique index. A key is "VXNET-UUID/ADDRESS" for
// an address the port holds alone in the vxnet (its MAC unless dynamic;
// its IP if it has exactly one fixed IP and no virtual IP), so two such
// ports in a vxnet cannot commit, whatever wrote them. OVSDB compares
// empty values as equal, so every other port holds a key of its own, a
// per-port scope (a fresh UUID, no slash), which clashes with nothing.
// The addresses a scoped ip_key leaves out (several fixed IPs, virtual
// IPs) are Address_Claim rows, as before 1.8.0; the two are checked
// against each other by the writers' waits (courier-nbctl, nbclient).

// AddressKey is the key of addr held alone in the vxnet with UUID vxnet.
func AddressKey(vxnet, addr string) string { return vxnet + "/" + addr }

// NewScope is a per-port scope: a key that clashes with no other.
func NewScope() string { return uuid.NewString() }

// IsScope says whether key is a per-port scope rather than an address's.
func IsScope(key string) bool { return key != "" && !strings.Contains(key, "/") }

// KeyedIP is the IP a port's ip_key holds, if it has one: its only IP,
// fixed, with no virtual IPs. Its other addresses are claims.
func KeyedIP(p *nbdb.Port) (string, bool) {
	if len(p.IPs) == 1 && p.IPs[0] != Dynamic && len(p.VirtualIPs) == 0 {
		return p.IPs[0], true
	}
	return "", false
}

// SetPortKeys gives p the keys of its addresses in the vxnet with UUID
// vxnet; a port without such an address keeps the scope it holds, or
// gets a new one.
func SetPortKeys(vxnet string, p *nbdb.Port) {
	p.MACKey = portKey(vxnet, p.MACKey, p.MAC, p.MAC != Dynamic)
	ip, ok := KeyedIP(p)
	p.IPKey = portKey(vxnet, p.IPKey, ip, ok)
}

func portKey(vxnet, old, addr string, keyed bool) string {
	switch {
	case keyed:
		return AddressKey(vxnet, addr)
	case IsScope(old):
		return old
	}
	return NewScope()
}

// ClaimedAddresses are the addresses of p that need Address_Claim rows,
// by kind ("ip", "vip"): the fixed IPs an ip_key does not hold, and the
// virtual IPs.
func ClaimedAddresses(p *nbdb.Port) (ips, vips []string) {
	if _, ok := KeyedIP(p); !ok {
		for _, ip := range p.IPs {
			if ip != Dynamic {
				ips = append(ips, ip)
			}
		}
	}
	return ips, p.VirtualIPs
}
