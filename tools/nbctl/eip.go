package nbctl

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/northd/rules"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema/nbdb"
	"github.com/courier-sdn/courier/tools/cmdline"
)

// External networks and their addresses (EIPs). A network is a root row
// holding its EIPs (strong references); an EIP names the port it is
// bound to (a weak reference, so deleting the port unbinds it), and
// binding or unbinding writes that one column. An address is unique
// across all networks (the schema's index); that a port has at most one
// EIP is checked here and again by northd, which refuses the later row.

var (
	tExtnet = nbdb.ExternalNetworkTable
	tEIP    = nbdb.EIPTable
)

func eipCommands() []*command {
	nets := []string{tExtnet, tEIP}
	withPorts := []string{tExtnet, tEIP, tVPC, tVxnet, tPort, tSNAT}
	return []*command{
		{Name: "extnet-add", Args: "NAME CIDR[,CIDR...]", Summary: "create an external network whose addresses can be bound to ports", Min: 2, Max: 2,
			Flags: []cmdline.Flag{
				{Name: "kind", Arg: "public|physical", Usage: "public: reached through gateway chassis; physical: the data centre's network"},
				{Name: "next-hop", Arg: "IP", Usage: "the upstream router the gateways forward to"},
				mayExist},
			Tables: nets, Run: cmdExtnetAdd},
		{Name: "extnet-del", Args: "NAME", Summary: "delete an external network and its EIPs (refused while one is bound or a VPC's SNAT uses it)", Min: 1, Max: 1,
			Flags: []cmdline.Flag{ifExists}, Tables: withPorts, Run: cmdExtnetDel},
		{Name: "extnet-list", Args: "", Summary: "list external networks", Max: 0,
			Tables: nets, Run: cmdExtnetList},
		{Name: "eip-add", Args: "EXTNET IP", Summary: "add an address of an external network, bound to a port with --port", Min: 2, Max: 2,
			Flags:  []cmdline.Flag{{Name: "port", Arg: "PORT", Usage: "bind it to this port"}, mayExist},
			Tables: withPorts, Run: cmdEIPAdd},
		{Name: "eip-bind", Args: "IP PORT", Summary: "bind an EIP to a port (refused if either is bound elsewhere)", Min: 2, Max: 2,
			Tables: withPorts, Run: cmdEIPBind},
		{Name: "eip-unbind", Args: "IP", Summary: "unbind an EIP from its port", Min: 1, Max: 1,
			Flags: []cmdline.Flag{ifExists}, Tables: nets, Run: cmdEIPUnbind},
		{Name: "eip-del", Args: "IP", Summary: "delete an EIP", Min: 1, Max: 1,
			Flags: []cmdline.Flag{ifExists}, Tables: nets, Run: cmdEIPDel},
		{Name: "eip-list", Args: "[EXTNET]", Summary: "list EIPs, of one external network or of all", Max: 1,
			Tables: withPorts, Run: cmdEIPList},
	}
}

// readExtnets reads every external network and EIP.
func (st *state) readExtnets(ctx context.Context) error {
	st.extnets, st.eips, st.eipNet = map[string]*nbdb.ExternalNetwork{}, map[string]*nbdb.EIP{}, map[string]*nbdb.ExternalNetwork{}
	nets, err := ops.List[nbdb.ExternalNetwork](ctx, st.c, nil)
	if err != nil {
		return err
	}
	eips, err := ops.List[nbdb.EIP](ctx, st.c, nil)
	if err != nil {
		return err
	}
	byUUID := map[string]*nbdb.EIP{}
	for _, e := range eips {
		byUUID[e.UUID] = e
	}
	for _, n := range nets {
		st.extnets[n.Name] = n
		for _, u := range n.Eips {
			if e := byUUID[u]; e != nil {
				st.eips[e.Address] = e
				st.eipNet[e.Address] = n
			}
		}
	}
	return nil
}

func (st *state) extnet(name string) (*nbdb.ExternalNetwork, error) {
	if n := st.extnets[name]; n != nil {
		return n, nil
	}
	return nil, fmt.Errorf("no external network named %q", name)
}

func (st *state) eip(addr string) (*nbdb.EIP, error) {
	if a, err := rules.ParseIP(addr); err == nil {
		addr = a.String()
	}
	if e := st.eips[addr]; e != nil {
		return e, nil
	}
	return nil, fmt.Errorf("no EIP %s", addr)
}

// eipOfPort is the EIP bound to a port, or nil.
func (st *state) eipOfPort(portUUID string) *nbdb.EIP {
	for _, e := range st.eips {
		if e.Port != nil && *e.Port == portUUID {
			return e
		}
	}
	return nil
}

func cmdExtnetAdd(st *state, inv *cmdline.Invocation, _ *cmdline.Output) error {
	name := inv.Args[0]
	if err := checkName("external network", name); err != nil {
		return err
	}
	kind := inv.Value("kind")
	if kind != rules.ExtnetPublic && kind != rules.ExtnetPhysical {
		return fmt.Errorf("--kind %q: want public or physical", kind)
	}
	prefixes, err := rules.ParseExtnetCIDRs(rules.SplitCIDRs(inv.Args[1]))
	if err != nil {
		return err
	}
	n := &nbdb.ExternalNetwork{UUID: st.newName("extnet"), Name: name, Kind: kind}
	for _, p := range prefixes {
		n.Cidrs = append(n.Cidrs, p.String())
	}
	if nh := inv.Value("next-hop"); nh != "" {
		if err := rules.CheckNextHop(nh); err != nil {
			return fmt.Errorf("--next-hop: %w", err)
		}
		n.NextHop = &nh
	}
	if old := st.extnets[name]; old != nil {
		if inv.Has("may-exist") && old.Kind == n.Kind && strings.Join(old.Cidrs, ",") == strings.Join(n.Cidrs, ",") && sameStr(old.NextHop, n.NextHop) {
			return nil
		}
		return fmt.Errorf("external network %s already exists (%s %s)", name, old.Kind, strings.Join(old.Cidrs, ","))
	}
	for _, other := range st.extnets {
		for _, c := range other.Cidrs {
			q, err := netip.ParsePrefix(c)
			for _, p := range prefixes {
				if err == nil && q.Overlaps(p) {
					return fmt.Errorf("%s overlaps %s of external network %s", p, q, other.Name)
				}
			}
		}
	}
	st.extnets[name] = n
	return st.add(st.c.Create(n))
}

func cmdExtnetDel(st *state, inv *cmdline.Invocation, _ *cmdline.Output) error {
	n := st.extnets[inv.Args[0]]
	if n == nil {
		if inv.Has("if-exists") {
			return nil
		}
		return fmt.Errorf("no external network named %q", inv.Args[0])
	}
	var users []string
	for _, vpc := range st.vpcs {
		if s := st.snatOf(vpc); s != nil && s.ExternalNetwork == n.UUID {
			users = append(users, vpc.Name)
		}
	}
	if len(users) > 0 {
		sort.Strings(users)
		return fmt.Errorf("external network %s is the SNAT network of VPC %s: snat-del it first", n.Name, strings.Join(users, ", "))
	}
	for addr, e := range st.eips {
		if st.eipNet[addr] == n && e.Port != nil {
			return fmt.Errorf("EIP %s of %s is bound to port %s: eip-unbind it first", addr, n.Name, st.portName(*e.Port))
		}
	}
	if err := st.verify(n, n.UUID, &n.Eips); err != nil {
		return err
	}
	for addr := range st.eips {
		if st.eipNet[addr] == n {
			delete(st.eips, addr)
		}
	}
	delete(st.extnets, n.Name)
	return st.add(ops.ByUUID(st.c, n).Delete())
}

func cmdExtnetList(st *state, _ *cmdline.Invocation, out *cmdline.Output) error {
	var rows [][]any
	for _, n := range st.extnets {
		nh := ""
		if n.NextHop != nil {
			nh = *n.NextHop
		}
		rows = append(rows, []any{n.Name, n.Kind, strings.Join(n.Cidrs, ","), nh, len(n.Eips), statusText(n.Status)})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i][0].(string) < rows[j][0].(string) })
	out.Table([]string{"NAME", "KIND", "CIDRS", "NEXT_HOP", "EIPS", "STATUS"}, rows)
	return nil
}

// portName is a port's name by UUID, or the UUID if it is not read.
func (st *state) portName(u string) string {
	if p := st.portByUUID[u]; p != nil {
		return p.Name
	}
	return u
}

// bindable checks that port may take eip: it has no other EIP, and an
// address to translate to.
func (st *state) bindable(addr string, p *nbdb.Port) error {
	if other := st.eipOfPort(p.UUID); other != nil && other.Address != addr {
		return fmt.Errorf("port %s already has EIP %s: a port has at most one", p.Name, other.Address)
	}
	if len(p.IPs) == 0 {
		return fmt.Errorf("port %s has no IPv4 address to translate an EIP to", p.Name)
	}
	return nil
}

func cmdEIPAdd(st *state, inv *cmdline.Invocation, _ *cmdline.Output) error {
	n, err := st.extnet(inv.Args[0])
	if err != nil {
		return err
	}
	prefixes, err := rules.ParseExtnetCIDRs(n.Cidrs)
	if err != nil {
		return fmt.Errorf("external network %s: %w", n.Name, err)
	}
	a, err := rules.CheckEIP(n.Name, prefixes, inv.Args[1])
	if err != nil {
		return err
	}
	addr := a.String()
	if vpc := st.snatUser(addr, nil); vpc != "" {
		return fmt.Errorf("%s is a SNAT address of VPC %s", addr, vpc)
	}
	e := &nbdb.EIP{UUID: st.newName("eip"), Address: addr}
	if pn := inv.Value("port"); pn != "" {
		p, err := st.port(pn)
		if err != nil {
			return err
		}
		if err := st.bindable(addr, p); err != nil {
			return err
		}
		e.Port = &p.UUID
	}
	if old := st.eips[addr]; old != nil {
		if inv.Has("may-exist") && st.eipNet[addr] == n && sameStr(old.Port, e.Port) {
			return nil
		}
		return fmt.Errorf("EIP %s already exists in external network %s", addr, st.eipNet[addr].Name)
	}
	if err := st.verify(n, n.UUID, &n.Eips); err != nil {
		return err
	}
	st.eips[addr], st.eipNet[addr] = e, n
	return st.insertInto(n, &n.Eips, e, e.UUID)
}

func cmdEIPBind(st *state, inv *cmdline.Invocation, _ *cmdline.Output) error {
	e, err := st.eip(inv.Args[0])
	if err != nil {
		return err
	}
	p, err := st.port(inv.Args[1])
	if err != nil {
		return err
	}
	if e.Port != nil && *e.Port == p.UUID {
		return nil
	}
	if e.Port != nil {
		return fmt.Errorf("EIP %s is bound to port %s: eip-unbind it first", e.Address, st.portName(*e.Port))
	}
	if err := st.bindable(e.Address, p); err != nil {
		return err
	}
	// Decided from the EIP's port being unset: fail if it changed.
	if err := st.verify(e, e.UUID, &e.Port); err != nil {
		return err
	}
	e.Port = &p.UUID
	return st.add(ops.ByUUID(st.c, e).Update(e, &e.Port))
}

func cmdEIPUnbind(st *state, inv *cmdline.Invocation, _ *cmdline.Output) error {
	e, err := st.eip(inv.Args[0])
	if err != nil {
		if inv.Has("if-exists") {
			return nil
		}
		return err
	}
	if e.Port == nil {
		return nil
	}
	e.Port = nil
	return st.add(ops.ByUUID(st.c, e).Update(e, &e.Port))
}

func cmdEIPDel(st *state, inv *cmdline.Invocation, _ *cmdline.Output) error {
	e, err := st.eip(inv.Args[0])
	if err != nil {
		if inv.Has("if-exists") {
			return nil
		}
		return err
	}
	n := st.eipNet[e.Address]
	delete(st.eips, e.Address)
	return st.add(ops.ByUUID(st.c, n).Mutate(n, model.Mutation{
		Field: &n.Eips, Mutator: ovsdb.MutateOperationDelete, Value: []string{e.UUID}}))
}

func cmdEIPList(st *state, inv *cmdline.Invocation, out *cmdline.Output) error {
	var only *nbdb.ExternalNetwork
	if len(inv.Args) == 1 {
		n, err := st.extnet(inv.Args[0])
		if err != nil {
			return err
		}
		only = n
	}
	var rows [][]any
	for addr, e := range st.eips {
		n := st.eipNet[addr]
		if only != nil && n != only {
			continue
		}
		port := ""
		if e.Port != nil {
			port = st.portName(*e.Port)
		}
		rows = append(rows, []any{addr, n.Name, port, statusText(e.Status)})
	}
	sort.Slice(rows, func(i, j int) bool {
		a, _ := netip.ParseAddr(rows[i][0].(string))
		b, _ := netip.ParseAddr(rows[j][0].(string))
		return a.Less(b)
	})
	out.Table([]string{"ADDRESS", "EXTNET", "PORT", "STATUS"}, rows)
	return nil
}

// eipAddress is the address of the EIP bound to a port, or "".
func (st *state) eipAddress(portUUID string) string {
	if e := st.eipOfPort(portUUID); e != nil {
		return e.Address
	}
	return ""
}

// showExtnetsText is show's text for the external networks, after the
// VPCs: each with its EIPs and the ports they are bound to.
func (st *state) showExtnetsText() string {
	var b strings.Builder
	names := make([]string, 0, len(st.extnets))
	for name := range st.extnets {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		n := st.extnets[name]
		nh := ""
		if n.NextHop != nil {
			nh = ", next hop " + *n.NextHop
		}
		fmt.Fprintf(&b, "extnet %s (%s, %s%s)%s\n", n.Name, n.Kind, strings.Join(n.Cidrs, ","), nh, errText(errOf(n.Status)))
		var addrs []netip.Addr
		for addr := range st.eips {
			if st.eipNet[addr] == n {
				addrs = append(addrs, netip.MustParseAddr(addr))
			}
		}
		sort.Slice(addrs, func(i, j int) bool { return addrs[i].Less(addrs[j]) })
		for _, a := range addrs {
			e := st.eips[a.String()]
			to := "unbound"
			if e.Port != nil {
				to = "-> port " + st.portName(*e.Port)
			}
			fmt.Fprintf(&b, "    eip %s %s%s\n", a, to, errText(errOf(e.Status)))
		}
	}
	return b.String()
}
