package northd

import (
	"fmt"
	"net/netip"
	"reflect"
	"sort"

	"github.com/ovn-kubernetes/libovsdb/client"

	"github.com/courier-sdn/courier/northd/rules"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/ops/sbops"
	"github.com/courier-sdn/courier/schema/nbdb"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// External networks and their addresses (EIPs), compiled into the
// bindings of the ports they are bound to (Port_Binding.eip and
// eip_network): what a port's host needs to translate, and what a
// gateway of the network needs to find the host. They are few (public
// addresses, not ports), so any change recompiles all of them.
//
// Refusals, each in the row's status: a network whose prefixes are bad
// or overlap an earlier network's (by name); an EIP of a refused
// network, outside its network, or bound to a port that already has an
// EIP (the lower address keeps it) or that has no gateway path (refused
// itself, so its VPC's datapaths do not carry it, or without an IPv4
// address to translate to). Deciding the same everywhere needs only the
// northbound: no order of arrival matters.

// cExtnet is a compiled external network.
type cExtnet struct {
	uuid, name, kind string
	prefixes         []netip.Prefix
	err              string
}

// cEIP is a compiled EIP; err is set when it is refused.
type cEIP struct {
	uuid, addr, net string // net: the network's name
	kind            string // the network's kind
	port            string // bound port's UUID, "" if unbound
	err             string
}

// eipBinding is what a port's binding carries: the address, its
// network's name and kind (public: gateways carry it; physical: the
// port's host serves it on its underlay NIC).
type eipBinding struct{ addr, net, kind string }

type eipTable struct {
	nets   map[string]*cExtnet              // by NB UUID
	sbNets map[string]*sbdb.ExternalNetwork // accepted networks' southbound rows, by name
	eips   map[string]*cEIP                 // by NB UUID
	byPort map[string]eipBinding

	changedPorts map[string]bool // tracked: port UUIDs whose binding changed
}

func newEIPTable() *eipTable {
	return &eipTable{nets: map[string]*cExtnet{}, sbNets: map[string]*sbdb.ExternalNetwork{}, eips: map[string]*cEIP{}, byPort: map[string]eipBinding{},
		changedPorts: map[string]bool{}}
}

func (t *eipTable) clearTracked() { t.changedPorts = map[string]bool{} }

// compileEIPs compiles every network and EIP against the compiled ports;
// prev's bindings are compared to track what changed.
func compileEIPs(v *nbView, ports *portTable, prev *eipTable) *eipTable {
	t := newEIPTable()
	var nets []*nbdb.ExternalNetwork
	for _, n := range v.extnets {
		nets = append(nets, n)
	}
	sort.Slice(nets, func(i, j int) bool {
		if nets[i].Name != nets[j].Name {
			return nets[i].Name < nets[j].Name
		}
		return nets[i].UUID < nets[j].UUID
	})
	var accepted []*cExtnet
	for _, n := range nets {
		c := &cExtnet{uuid: n.UUID, name: n.Name, kind: n.Kind}
		t.nets[n.UUID] = c
		c.prefixes, c.err = checkExtnet(n, accepted)
		if c.err == "" {
			accepted = append(accepted, c)
			t.sbNets[n.Name] = &sbdb.ExternalNetwork{Name: n.Name, Kind: n.Kind, NextHop: n.NextHop}
		}
	}
	var eips []*cEIP
	for u, e := range v.eips {
		c := &cEIP{uuid: u, addr: e.Address}
		if e.Port != nil {
			c.port = *e.Port
		}
		t.eips[u] = c
		net := t.nets[v.eipNet[u]]
		switch {
		case net == nil:
			c.err = "the EIP belongs to no external network"
		case net.err != "":
			c.net, c.err = net.name, fmt.Sprintf("external network %s is refused", net.name)
		default:
			c.net, c.kind = net.name, net.kind
			if _, err := rules.CheckEIP(net.name, net.prefixes, e.Address); err != nil {
				c.err = err.Error()
			}
		}
		if c.err == "" && c.port != "" {
			eips = append(eips, c)
		}
	}
	// Bound ones: the lower address keeps a port bound twice.
	sort.Slice(eips, func(i, j int) bool {
		a, _ := netip.ParseAddr(eips[i].addr)
		b, _ := netip.ParseAddr(eips[j].addr)
		if a != b {
			return a.Less(b)
		}
		return eips[i].uuid < eips[j].uuid
	})
	for _, c := range eips {
		p := ports.ports[c.port]
		switch {
		case p == nil:
			c.err = "its port is not in any vxnet"
		case !p.valid():
			c.err = fmt.Sprintf("port %s is refused: it has no gateway path", p.name)
		case len(p.ips) == 0:
			c.err = fmt.Sprintf("port %s has no IPv4 address to translate to", p.name)
		case t.byPort[c.port] != (eipBinding{}):
			c.err = fmt.Sprintf("port %s already has EIP %s", p.name, t.byPort[c.port].addr)
		default:
			t.byPort[c.port] = eipBinding{addr: c.addr, net: c.net, kind: c.kind}
		}
	}
	for u, b := range t.byPort {
		if prev == nil || prev.byPort[u] != b {
			t.changedPorts[u] = true
		}
	}
	if prev != nil {
		for u := range prev.byPort {
			if _, ok := t.byPort[u]; !ok {
				t.changedPorts[u] = true
			}
		}
	}
	return t
}

func checkExtnet(n *nbdb.ExternalNetwork, accepted []*cExtnet) ([]netip.Prefix, string) {
	ps, err := rules.ParseExtnetCIDRs(n.Cidrs)
	if err != nil {
		return nil, err.Error()
	}
	if n.NextHop != nil {
		if err := rules.CheckNextHop(*n.NextHop); err != nil {
			return nil, "next hop: " + err.Error()
		}
	}
	for _, o := range accepted {
		for _, q := range o.prefixes {
			for _, p := range ps {
				if p.Overlaps(q) {
					return nil, fmt.Sprintf("%s overlaps %s of external network %s", p, q, o.name)
				}
			}
		}
	}
	return ps, ""
}

// sbNet is the southbound row of the accepted network name, or nil.
func (t *eipTable) sbNet(name string) *sbdb.ExternalNetwork { return t.sbNets[name] }

// extnetOwned are the SB External_Network columns northd writes; name
// is the key.
var extnetOwned = []string{"kind", "next_hop"}

// syncExtnets writes the SB External_Network rows of every dirty name.
func (n *compiler) syncExtnets(w *sbWriter, d *dirtySet) {
	syncKeyed(w, sbops.ExternalNetworks(), extnetOwned, d.extnets, n.eips.sbNet, n.sb.extnets)
}

func (t *eipTable) netStatus(u string) map[string]string {
	switch c := t.nets[u]; {
	case c == nil:
		return nil
	case c.err != "":
		return errStatus(c.err)
	}
	return okStatus()
}

func (t *eipTable) eipStatus(u string) map[string]string {
	switch c := t.eips[u]; {
	case c == nil:
		return nil
	case c.err != "":
		return errStatus(c.err)
	}
	return okStatus()
}

// writeEIPStatuses writes the statuses of dirty networks and EIPs.
func (n *compiler) writeEIPStatuses(c client.Client, d *dirtySet, add func(built, func()) error, refused *refusals) error {
	for _, u := range sortedSet(d.nbExtnet) {
		if row, want := n.nb.extnets[u], n.eips.netStatus(u); row != nil && want != nil && !reflect.DeepEqual(row.Status, want) {
			refused.note("External_Network", row.Name, row.Status, want)
			cp := *row
			cp.Status = want
			if err := add(op(ops.ByUUID(c, &cp).Update(&cp, &cp.Status)), func() { n.nb.extnets[u] = &cp }); err != nil {
				return err
			}
		}
	}
	for _, u := range sortedSet(d.nbEIP) {
		if row, want := n.nb.eips[u], n.eips.eipStatus(u); row != nil && want != nil && !reflect.DeepEqual(row.Status, want) {
			refused.note("EIP", row.Address, row.Status, want)
			cp := *row
			cp.Status = want
			if err := add(op(ops.ByUUID(c, &cp).Update(&cp, &cp.Status)), func() { n.nb.eips[u] = &cp }); err != nil {
				return err
			}
		}
	}
	return nil
}
