package nbctl

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/northd/rules"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema"
	"github.com/courier-sdn/courier/schema/nbdb"
	"github.com/courier-sdn/courier/tools/cmdline"
	"github.com/courier-sdn/courier/tools/dbcmd"
)

func checkName(kind, name string) error {
	if !validName(name) {
		return fmt.Errorf("%s name %q: use 1 to 64 letters, digits, '_', '.', ':' or '-', starting with a letter or digit", kind, name)
	}
	return nil
}

// validName says whether name matches ^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$,
// without a regexp: compiled at start it cost every invocation, and
// matched it cost a chain of thousands of port-adds.
func validName(name string) bool {
	if len(name) == 0 || len(name) > 64 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case i > 0 && (c == '_' || c == '.' || c == ':' || c == '-'):
		default:
			return false
		}
	}
	return true
}

var (
	mayExist = cmdline.Flag{Name: "may-exist", Usage: "do nothing if it already exists as given (an error says what differs)"}
	ifExists = cmdline.Flag{Name: "if-exists", Usage: "do nothing if it does not exist"}
	tNB      = nbdb.NBGlobalTable
	tVPC     = nbdb.VPCTable
	tVxnet   = nbdb.VxnetTable
	tPort    = nbdb.PortTable
	tRoute   = nbdb.RouteTable
)

type command = cmdline.Command[*state]

func commands() []*command {
	cmds := []*command{
		{Name: "init", Args: "", Summary: "create the NB_Global row if it is missing", Max: 0,
			Tables: []string{tNB}, Run: cmdInit},
		{Name: "show", Args: "[VPC]", Summary: "print VPCs with their vxnets, ports and routes as a tree (-f json: structured), or draw them", Max: 1,
			Flags: []cmdline.Flag{{Name: "format", Arg: "text|dot|svg", Usage: "dot: a Graphviz graph; svg: drawn by Graphviz's dot"},
				{Name: "runtime", Usage: "with dot or svg, also draw the chassis each port is bound to"}},
			Tables: []string{tVPC, tVxnet, tPort, tRoute, tSG, tSGRule, tExtnet, tEIP, tSNAT}, Run: cmdShow},
		{Name: "sync", Args: "", Summary: "with --wait, wait until everything before it has reached SB (or the hosts)", Max: 0,
			Tables: []string{tNB}, Run: func(*state, *cmdline.Invocation, *cmdline.Output) error { return nil }},

		{Name: "vpc-add", Args: "VPC", Summary: "create a VPC", Min: 1, Max: 1,
			Flags: []cmdline.Flag{{Name: "open", Usage: "no security groups: every port may send and receive anything (default: a port in no group is in the VPC's default group)"},
				mayExist}, Tables: []string{tVPC}, Run: cmdVPCAdd},
		{Name: "vpc-del", Args: "VPC", Summary: "delete a VPC with its vxnets, ports and routes", Min: 1, Max: 1,
			Flags: []cmdline.Flag{ifExists}, Tables: []string{tVPC}, Run: cmdVPCDel},
		{Name: "vpc-list", Args: "", Summary: "list VPCs", Max: 0,
			Tables: []string{tVPC}, Run: cmdVPCList},

		{Name: "vxnet-add", Args: "VPC VXNET CIDR", Summary: "create a vxnet (a subnet with its own VNI) in a VPC", Min: 3, Max: 3,
			Flags: []cmdline.Flag{
				{Name: "gateway", Arg: "IP", Usage: "gateway address (default: the CIDR's first host)"},
				{Name: "vni", Arg: "N", Usage: "VXLAN network identifier, 1 to 16777215 (default: allocated by northd)"},
				mayExist},
			Tables: []string{tVPC, tVxnet}, Run: cmdVxnetAdd},
		{Name: "vxnet-del", Args: "VXNET", Summary: "delete a vxnet and its ports", Min: 1, Max: 1,
			Flags: []cmdline.Flag{ifExists}, Tables: []string{tVPC, tVxnet}, Run: cmdVxnetDel},
		{Name: "vxnet-list", Args: "[VPC]", Summary: "list vxnets, of one VPC or of all", Max: 1,
			Tables: []string{tVPC, tVxnet}, Run: cmdVxnetList},

		{Name: "port-add", Args: "VXNET PORT [MAC|dynamic] [IP...|dynamic|unknown]",
			Summary: "create a VM port; a MAC or IP left out or 'dynamic' is allocated by northd (shown by port-list, show " +
				"and get Port PORT dynamic_addresses), IP 'unknown' is learned from the port's traffic", Min: 2, Max: 19,
			Flags: []cmdline.Flag{
				{Name: "vip", Arg: "IP", Repeat: true, Usage: "a virtual IP the port may hold (repeatable)"},
				{Name: "chassis", Arg: "NAME", Usage: "the chassis that should host the port"},
				{Name: "no-port-security", Usage: "let the port send from any MAC and IP"},
				learnedLimitFlag,
				mayExist},
			Tables: []string{tVPC, tVxnet, tPort}, Rows: portAddRows, Run: cmdPortAdd},
		{Name: "port-del", Args: "PORT", Summary: "delete a port", Min: 1, Max: 1,
			Flags: []cmdline.Flag{ifExists}, Tables: []string{tVxnet, tPort}, Rows: namedPort(0), Run: cmdPortDel},
		{Name: "port-set", Args: "PORT", Summary: "change a port's addresses, virtual IPs, chassis or port security", Min: 1, Max: 1,
			Flags: []cmdline.Flag{
				{Name: "mac", Arg: "MAC", Usage: "new MAC, or 'dynamic'"},
				{Name: "ips", Arg: "IP[,IP...]", Usage: "new fixed IPs, 'dynamic' or 'unknown'"},
				{Name: "vips", Arg: "IP[,IP...]", Usage: "new virtual IPs, or 'none'"},
				{Name: "chassis", Arg: "NAME", Usage: "requested chassis, or 'none'"},
				{Name: "migrating-to", Arg: "NAME", Usage: "the chassis a live migration takes the port to (prepared there, bound on the guest's RARP), or 'none' when it ends"},
				{Name: "port-security", Arg: "on|off", Usage: "enforce the port's MAC and IPs"},
				{Name: "sg", Arg: "SG[,SG...]", Usage: "the port's security groups, of its VPC; empty: the VPC's default group"},
				learnedLimitFlag},
			Tables: []string{tVPC, tVxnet, tPort, tSG}, Rows: namedPort(0), Run: cmdPortSet},
		{Name: "port-list", Args: "[VXNET]", Summary: "list ports, of one vxnet or of all", Max: 1,
			Tables: []string{tVxnet, tPort}, Rows: portListRows, Run: cmdPortList},

		{Name: "route-add", Args: "VPC PREFIX NEXTHOP", Summary: "add a static route; NEXTHOP must be an address in one of the VPC's vxnets", Min: 3, Max: 3,
			Flags: []cmdline.Flag{mayExist}, Tables: []string{tVPC, tVxnet, tRoute}, Run: cmdRouteAdd},
		{Name: "route-del", Args: "VPC PREFIX", Summary: "delete a static route", Min: 2, Max: 2,
			Flags: []cmdline.Flag{ifExists}, Tables: []string{tVPC, tRoute}, Run: cmdRouteDel},
		{Name: "route-list", Args: "VPC", Summary: "list a VPC's static routes", Min: 1, Max: 1,
			Tables: []string{tVPC, tRoute}, Run: cmdRouteList},
	}
	cmds = append(append(append(cmds, sgCommands()...), connCommands()...), hubCommands()...)
	cmds = append(cmds, eipCommands()...)
	cmds = append(cmds, claimSyncCommand())
	cmds = append(cmds, snatCommands()...)
	return append(cmds, dbcmd.Commands(func(st *state) (*dbcmd.DB, error) { return st.generic() })...)
}

func cmdInit(st *state, _ *cmdline.Invocation, _ *cmdline.Output) error {
	if st.global != nil {
		return nil
	}
	st.global = &nbdb.NBGlobal{UUID: st.newName("global")}
	return st.add(st.c.Create(st.global))
}

func cmdVPCAdd(st *state, inv *cmdline.Invocation, _ *cmdline.Output) error {
	name := inv.Args[0]
	if err := checkName("VPC", name); err != nil {
		return err
	}
	if old := st.vpcs[name]; old != nil {
		if inv.Has("may-exist") {
			var d diffs
			if isOpen := old.Open != nil && *old.Open; isOpen != inv.Has("open") {
				d.add("openness (open)", strconv.FormatBool(isOpen), strconv.FormatBool(inv.Has("open")))
			}
			return d.err("VPC", name)
		}
		return fmt.Errorf("VPC %s already exists", name)
	}
	vpc := &nbdb.VPC{UUID: st.newName("vpc"), Name: name}
	if inv.Has("open") {
		open := true
		vpc.Open = &open
	}
	st.vpcs[name] = vpc
	return st.add(st.c.Create(vpc))
}

func cmdVPCDel(st *state, inv *cmdline.Invocation, _ *cmdline.Output) error {
	vpc := st.vpcs[inv.Args[0]]
	if vpc == nil {
		if inv.Has("if-exists") {
			return nil
		}
		return fmt.Errorf("no VPC named %q", inv.Args[0])
	}
	// The VPC is a root row: deleting it drops its vxnets, ports and
	// routes, which only it references.
	for _, vx := range st.vxnetsOf(vpc) {
		for _, p := range st.portsOf(vx) {
			delete(st.ports, p.Name)
			st.releasePort(vx, p.Name)
		}
		delete(st.vxnets, vx.Name)
	}
	delete(st.vpcs, vpc.Name)
	return st.add(ops.ByUUID(st.c, vpc).Delete())
}

func cmdVPCList(st *state, _ *cmdline.Invocation, out *cmdline.Output) error {
	var rows [][]any
	for _, v := range st.vpcs {
		rows = append(rows, []any{v.Name, optInt(v.Status["tunnel_key"]), len(v.Vxnets), len(v.Routes), statusText(v.Status)})
	}
	out.Table([]string{"NAME", "TUNNEL_KEY", "VXNETS", "ROUTES", "STATUS"}, rows)
	return nil
}

func cmdVxnetAdd(st *state, inv *cmdline.Invocation, _ *cmdline.Output) error {
	vpcName, name, cidr := inv.Args[0], inv.Args[1], inv.Args[2]
	vpc, err := st.vpc(vpcName)
	if err != nil {
		return err
	}
	if err := checkName("vxnet", name); err != nil {
		return err
	}
	if old := st.vxnets[name]; old != nil {
		if !inv.Has("may-exist") {
			return fmt.Errorf("vxnet %s already exists", name)
		}
		var d diffs
		if ov := st.vxnetVPC[old.UUID]; ov != vpc {
			d.add("VPC", nameOf(ov), vpc.Name)
		}
		if p, err := rules.ParseCIDR(cidr); err != nil || p.String() != old.Cidr {
			d.add("CIDR", old.Cidr, cidr)
		}
		_, gw, _ := gatewayOf(old)
		if g := inv.Value("gateway"); g != "" && g != gw.String() {
			d.add("gateway", gw.String(), g)
		}
		if v := inv.Value("vni"); v != "" && v != num(old.Vni) {
			d.add("VNI", num(old.Vni), v)
		}
		return d.err("vxnet", name)
	}
	p, err := rules.ParseCIDR(cidr)
	if err != nil {
		return err
	}
	vx := &nbdb.Vxnet{UUID: st.newName("vxnet"), Name: name, Cidr: p.String()}
	gw := rules.DefaultGateway(p)
	if g := inv.Value("gateway"); g != "" {
		if gw, err = rules.ParseIP(g); err != nil {
			return err
		}
		if err := rules.CheckGateway(name, p, gw); err != nil {
			return err
		}
		s := gw.String()
		vx.Gateway = &s
	}
	others := map[string]netip.Prefix{}
	for _, o := range st.vxnetsOf(vpc) {
		if op, err := rules.ParseCIDR(o.Cidr); err == nil {
			others[o.Name] = op
		}
	}
	if o := rules.Overlap(p, others); o != "" {
		return fmt.Errorf("CIDR %s overlaps vxnet %s (%s) in VPC %s", p, o, others[o], vpc.Name)
	}
	if v := inv.Value("vni"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 16777215 {
			return fmt.Errorf("VNI %q is not between 1 and 16777215", v)
		}
		for _, o := range st.vxnets {
			if vniOf(o) == n {
				return fmt.Errorf("VNI %d is already used by vxnet %s", n, o.Name)
			}
		}
		vx.Vni = &n
	}
	st.vxnets[name] = vx
	st.vxnetVPC[vx.UUID] = vpc
	if err := st.verify(vpc, vpc.UUID, &vpc.Vxnets); err != nil {
		return err
	}
	if err := st.insertInto(vpc, &vpc.Vxnets, vx, vx.UUID); err != nil {
		return err
	}
	st.fixUUID(vx.UUID)
	return nil
}

func cmdVxnetDel(st *state, inv *cmdline.Invocation, _ *cmdline.Output) error {
	vx := st.vxnets[inv.Args[0]]
	if vx == nil {
		if inv.Has("if-exists") {
			return nil
		}
		return fmt.Errorf("no vxnet named %q", inv.Args[0])
	}
	vpc := st.vxnetVPC[vx.UUID]
	for _, p := range st.portsOf(vx) {
		delete(st.ports, p.Name)
		st.releasePort(vx, p.Name)
	}
	delete(st.vxnets, vx.Name)
	if vpc == nil {
		return nil // an orphan is garbage-collected by the server
	}
	if err := st.verify(vpc, vpc.UUID, &vpc.Vxnets); err != nil {
		return err
	}
	// Unreferenced, the vxnet and its ports are garbage-collected.
	return st.add(ops.ByUUID(st.c, vpc).Mutate(vpc, model.Mutation{
		Field: &vpc.Vxnets, Mutator: ovsdb.MutateOperationDelete, Value: []string{vx.UUID}}))
}

func cmdVxnetList(st *state, inv *cmdline.Invocation, out *cmdline.Output) error {
	var only *nbdb.VPC
	if len(inv.Args) == 1 {
		var err error
		if only, err = st.vpc(inv.Args[0]); err != nil {
			return err
		}
	}
	var rows [][]any
	for _, vx := range st.vxnets {
		vpc := st.vxnetVPC[vx.UUID]
		if only != nil && vpc != only {
			continue
		}
		var vpcName, vni any
		if vpc != nil {
			vpcName = vpc.Name
		}
		_, gw, _ := gatewayOf(vx)
		if n := vniOf(vx); n > 0 {
			vni = n
		}
		rows = append(rows, []any{vx.Name, vpcName, vx.Cidr, gw.String(), vni, len(vx.Ports), statusText(vx.Status)})
	}
	out.Table([]string{"NAME", "VPC", "CIDR", "GATEWAY", "VNI", "PORTS", "STATUS"}, rows)
	return nil
}

// portAddrs checks a port's fixed and virtual IPs against its vxnet.
// Whether another port holds them is the claims' to say (claimPort, and
// the server at commit).
func portAddrs(vx *nbdb.Vxnet, ips, vips []string) ([]string, []string, error) {
	p, gw, err := gatewayOf(vx)
	if err != nil {
		return nil, nil, err
	}
	var outIPs, outVIPs []string
	seen := map[string]bool{}
	for _, s := range ips {
		if s == "unknown" || s == schema.Dynamic {
			if len(ips) > 1 {
				return nil, nil, fmt.Errorf("'%s' cannot be combined with fixed IPs", s)
			}
			if s == schema.Dynamic {
				outIPs = []string{s}
			}
			break
		}
		ip, err := rules.ParseIP(s)
		if err != nil {
			return nil, nil, fmt.Errorf("%v, 'dynamic' or 'unknown'", err)
		}
		if err := rules.CheckPortIP(vx.Name, p, gw, ip); err != nil {
			return nil, nil, err
		}
		if seen[ip.String()] {
			return nil, nil, fmt.Errorf("IP %s is given twice", ip)
		}
		seen[ip.String()] = true
		outIPs = append(outIPs, ip.String())
	}
	for _, s := range vips {
		ip, err := rules.ParseIP(s)
		if err != nil {
			return nil, nil, err
		}
		if err := rules.CheckPortIP(vx.Name, p, gw, ip); err != nil {
			return nil, nil, err
		}
		if seen[ip.String()] {
			return nil, nil, fmt.Errorf("IP %s is given twice", ip)
		}
		seen[ip.String()] = true
		outVIPs = append(outVIPs, ip.String())
	}
	return outIPs, outVIPs, nil
}

func cmdPortAdd(st *state, inv *cmdline.Invocation, _ *cmdline.Output) error {
	vxName, name, macArg, ipArgs := inv.Args[0], inv.Args[1], schema.Dynamic, []string{schema.Dynamic}
	if len(inv.Args) > 2 {
		macArg = inv.Args[2]
	}
	if len(inv.Args) > 3 {
		ipArgs = inv.Args[3:]
	}
	vx, err := st.vxnet(vxName)
	if err != nil {
		return err
	}
	if err := checkName("port", name); err != nil {
		return err
	}
	if old := st.ports[name]; old != nil {
		if !inv.Has("may-exist") {
			return fmt.Errorf("port %s already exists", name)
		}
		return st.samePort(old, vx, macArg, ipArgs, inv)
	}
	mac, err := parseMAC(macArg)
	if err != nil {
		return err
	}
	ips, vips, err := portAddrs(vx, splitList(ipArgs), inv.Values("vip"))
	if err != nil {
		return err
	}
	port := &nbdb.Port{UUID: st.newName("port"), Name: name, MAC: mac, IPs: ips, VirtualIPs: vips}
	if err := st.claimPort(vx, port); err != nil {
		return err
	}
	if c := inv.Value("chassis"); c != "" {
		if err := checkName("chassis", c); err != nil {
			return err
		}
		port.RequestedChassis = &c
	}
	if inv.Has("no-port-security") {
		f := false
		port.PortSecurity = &f
	}
	if inv.Has("learned-limit") {
		if port.LearnedLimit, err = parseLearnedLimit(inv.Value("learned-limit")); err != nil {
			return err
		}
	}
	// No wait on the vxnet's port set: nothing was decided from it (the
	// name index and the claims refuse a clash at commit).
	st.ports[name] = port
	st.portByUUID[port.UUID] = port
	if st.touched != nil {
		st.touched[name] = true
	}
	st.portVxnet[port.UUID] = vx
	vx.Ports = append(vx.Ports, port.UUID)
	if st.compact != nil && compactable(port) { // encoded at commit (compact.go)
		st.compact.add(vx, port)
		return nil
	}
	// Built by ops.Table, not libovsdb's mapper, which cost half the
	// CPU of a chain of thousands of port-adds.
	st.ops = append(st.ops, portT().Insert(port), ovsdb.Operation{Op: ovsdb.OperationMutate, Table: tVxnet,
		Where: ops.WhereUUID(vx.UUID), Mutations: []ovsdb.Mutation{{Column: "ports", Mutator: ovsdb.MutateOperationInsert,
			Value: ovsdb.OvsSet{GoSet: []any{ovsdb.UUID{GoUUID: port.UUID}}}}}})
	return nil
}

// portT writes Port rows.
// (planned when first used: parsing the schema at start cost every
// invocation a millisecond).
var portT = sync.OnceValue(func() *ops.Table[nbdb.Port, *nbdb.Port] {
	return ops.MustTable[nbdb.Port](nbdb.Schema(), nbdb.PortTable)
})

// parseMAC is a port's MAC or the word dynamic.
func parseMAC(s string) (string, error) {
	if s == schema.Dynamic {
		return s, nil
	}
	mac, err := rules.ParseMAC(s)
	if err != nil && !strings.Contains(s, ":") {
		return "", fmt.Errorf("%v, or 'dynamic'", err)
	}
	return mac, err
}

var learnedLimitFlag = cmdline.Flag{Name: "learned-limit", Arg: "N|default",
	Usage: fmt.Sprintf("how many addresses a port with unknown addresses may hold, 0 to %d (default %d)",
		schema.MaxLearnedLimit, schema.DefaultLearnedLimit)}

func parseLearnedLimit(v string) (*int, error) {
	if v == "default" {
		return nil, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > schema.MaxLearnedLimit {
		return nil, fmt.Errorf("--learned-limit %q: want a number from 0 to %d, or default", v, schema.MaxLearnedLimit)
	}
	return &n, nil
}

func cmdPortDel(st *state, inv *cmdline.Invocation, _ *cmdline.Output) error {
	port := st.ports[inv.Args[0]]
	if port == nil {
		if inv.Has("if-exists") {
			return nil
		}
		return fmt.Errorf("no port named %q", inv.Args[0])
	}
	delete(st.ports, port.Name)
	vx := st.portVxnet[port.UUID]
	if vx == nil {
		return nil
	}
	// Unreferenced, the port and its claims are garbage-collected.
	st.releasePort(vx, port.Name)
	return st.add(ops.ByUUID(st.c, vx).Mutate(vx, model.Mutation{
		Field: &vx.Ports, Mutator: ovsdb.MutateOperationDelete, Value: []string{port.UUID}}))
}

func cmdPortSet(st *state, inv *cmdline.Invocation, _ *cmdline.Output) error {
	port, err := st.port(inv.Args[0])
	if err != nil {
		return err
	}
	vx := st.portVxnet[port.UUID]
	if vx == nil {
		return fmt.Errorf("port %s belongs to no vxnet", port.Name)
	}
	var fields []any
	mac, ips, vips := port.MAC, port.IPs, port.VirtualIPs
	if v := inv.Value("mac"); v != "" {
		if mac, err = parseMAC(v); err != nil {
			return err
		}
		fields = append(fields, &port.MAC)
	}
	if inv.Has("ips") {
		ips = splitList([]string{inv.Value("ips")})
		fields = append(fields, &port.IPs)
	}
	if inv.Has("vips") {
		vips = nil
		if v := inv.Value("vips"); v != "none" && v != "" {
			vips = splitList([]string{v})
		}
		fields = append(fields, &port.VirtualIPs)
	}
	newIPs, newVIPs, err := portAddrs(vx, ips, vips)
	if err != nil {
		return err
	}
	readdressed := len(fields) > 0
	if inv.Has("chassis") {
		if c := inv.Value("chassis"); c == "none" || c == "" {
			port.RequestedChassis = nil
		} else {
			if err := checkName("chassis", c); err != nil {
				return err
			}
			port.RequestedChassis = &c
		}
		fields = append(fields, &port.RequestedChassis)
	}
	if inv.Has("migrating-to") {
		if c := inv.Value("migrating-to"); c == "none" || c == "" {
			port.MigrationDestination = nil
		} else {
			if err := checkName("migrating-to", c); err != nil {
				return err
			}
			port.MigrationDestination = &c
		}
		fields = append(fields, &port.MigrationDestination)
	}
	if inv.Has("port-security") {
		var on bool
		switch inv.Value("port-security") {
		case "on", "true", "yes":
			on = true
		case "off", "false", "no":
		default:
			return fmt.Errorf("--port-security %q: want on or off", inv.Value("port-security"))
		}
		port.PortSecurity = &on
		fields = append(fields, &port.PortSecurity)
	}
	if inv.Has("learned-limit") {
		if port.LearnedLimit, err = parseLearnedLimit(inv.Value("learned-limit")); err != nil {
			return err
		}
		fields = append(fields, &port.LearnedLimit)
	}
	if inv.Has("sg") {
		if port.SecurityGroups, err = st.portGroups(port, st.vxnetVPC[vx.UUID], inv.Value("sg")); err != nil {
			return err
		}
		fields = append(fields, &port.SecurityGroups)
	}
	if len(fields) == 0 {
		return fmt.Errorf("port-set: nothing to change; give --mac, --ips, --vips, --chassis, --port-security, --sg or --learned-limit")
	}
	port.MAC, port.IPs, port.VirtualIPs = mac, newIPs, newVIPs
	if readdressed { // its keys and claims anew; old claim rows are collected
		if err := st.claimPort(vx, port); err != nil {
			return err
		}
		fields = append(fields, &port.Claims, &port.MACKey, &port.IPKey)
	}
	return st.add(ops.ByUUID(st.c, port).Update(port, fields...))
}

func cmdPortList(st *state, inv *cmdline.Invocation, out *cmdline.Output) error {
	var only *nbdb.Vxnet
	if len(inv.Args) == 1 {
		var err error
		if only, err = st.vxnet(inv.Args[0]); err != nil {
			return err
		}
	}
	var rows [][]any
	for _, p := range st.ports {
		vx := st.portVxnet[p.UUID]
		if only != nil && vx != only {
			continue
		}
		var vxName, chassis any
		if vx != nil {
			vxName = vx.Name
		}
		mac, ips := portAddrCells(p)
		if p.RequestedChassis != nil {
			chassis = *p.RequestedChassis
		}
		rows = append(rows, []any{p.Name, vxName, mac, ips, p.VirtualIPs, chassis, portStatus(p)})
	}
	out.Table([]string{"NAME", "VXNET", "MAC", "IPS", "VIPS", "CHASSIS", "STATUS"}, rows)
	return nil
}

func (st *state) routesOf(vpc *nbdb.VPC) []*nbdb.Route {
	var out []*nbdb.Route
	for _, r := range st.routes {
		if st.routeVPC[r.UUID] == vpc {
			out = append(out, r)
		}
	}
	return out
}

func cmdRouteAdd(st *state, inv *cmdline.Invocation, _ *cmdline.Output) error {
	vpc, err := st.vpc(inv.Args[0])
	if err != nil {
		return err
	}
	prefix, err := rules.ParseRoutePrefix(inv.Args[1])
	if err != nil {
		return err
	}
	nh, err := rules.ParseIP(inv.Args[2])
	if err != nil {
		return err
	}
	for _, r := range st.routesOf(vpc) {
		if r.Prefix == prefix.String() {
			if inv.Has("may-exist") {
				var d diffs
				if r.Nexthop != nh.String() {
					d.add("next hop", r.Nexthop, nh.String())
				}
				return d.err("route", vpc.Name+" "+prefix.String())
			}
			return fmt.Errorf("VPC %s already has a route for %s (via %s)", vpc.Name, prefix, r.Nexthop)
		}
	}
	var subnets []rules.Subnet
	for _, vx := range st.vxnetsOf(vpc) {
		if p, gw, err := gatewayOf(vx); err == nil {
			subnets = append(subnets, rules.Subnet{Name: vx.Name, CIDR: p, Gateway: gw})
		}
	}
	if err := rules.CheckRoute(vpc.Name, prefix, nh, subnets); err != nil {
		return err
	}
	if err := st.verify(vpc, vpc.UUID, &vpc.Routes); err != nil {
		return err
	}
	r := &nbdb.Route{UUID: st.newName("route"), Prefix: prefix.String(), Nexthop: nh.String()}
	st.routes[r.UUID] = r
	st.routeVPC[r.UUID] = vpc
	return st.insertInto(vpc, &vpc.Routes, r, r.UUID)
}

func cmdRouteDel(st *state, inv *cmdline.Invocation, _ *cmdline.Output) error {
	vpc, err := st.vpc(inv.Args[0])
	if err != nil {
		return err
	}
	prefix, err := rules.ParseRoutePrefix(inv.Args[1])
	if err != nil {
		return err
	}
	for _, r := range st.routesOf(vpc) {
		if r.Prefix == prefix.String() {
			if err := st.verify(vpc, vpc.UUID, &vpc.Routes); err != nil {
				return err
			}
			delete(st.routes, r.UUID)
			return st.add(ops.ByUUID(st.c, vpc).Mutate(vpc, model.Mutation{
				Field: &vpc.Routes, Mutator: ovsdb.MutateOperationDelete, Value: []string{r.UUID}}))
		}
	}
	if inv.Has("if-exists") {
		return nil
	}
	return fmt.Errorf("VPC %s has no route for %s", vpc.Name, prefix)
}

func cmdRouteList(st *state, inv *cmdline.Invocation, out *cmdline.Output) error {
	vpc, err := st.vpc(inv.Args[0])
	if err != nil {
		return err
	}
	var rows [][]any
	for _, r := range st.routesOf(vpc) {
		rows = append(rows, []any{r.Prefix, r.Nexthop, statusText(r.Status)})
	}
	out.Table([]string{"PREFIX", "NEXTHOP", "STATUS"}, rows)
	return nil
}

// portAddrCells are a port's MAC and IPs as port-list shows them (their
// JSON values are the allocated addresses, or the word dynamic).
func portAddrCells(p *nbdb.Port) (mac, ips any) {
	macText, ipText := addrTexts(p)
	dm, dips, _ := schema.PortAddresses(p)
	mac, ips = p.MAC, any(p.IPs)
	if p.MAC == schema.Dynamic {
		mac = cmdline.Shown{Text: macText, V: dm}
	}
	if len(p.IPs) == 0 || p.IPs[0] == schema.Dynamic {
		ips = cmdline.Shown{Text: ipText, V: nonNil(dips)}
	}
	return mac, ips
}

// addrTexts are a port's MAC and IPs for people: "unknown" for learned
// addresses, "dynamic (ALLOCATED)" for those northd allocated.
func addrTexts(p *nbdb.Port) (mac, ips string) {
	dm, dips, _ := schema.PortAddresses(p)
	mac, ips = p.MAC, strings.Join(p.IPs, " ")
	if p.MAC == schema.Dynamic && dm != schema.Dynamic {
		mac = "dynamic (" + dm + ")"
	}
	switch {
	case len(p.IPs) == 0:
		ips = "unknown"
	case ips == schema.Dynamic && !slices.Equal(dips, p.IPs):
		ips = "dynamic (" + strings.Join(dips, " ") + ")"
	}
	return mac, ips
}

// optInt is a number recorded as a string (in a status map), or nil.
func optInt(s string) any {
	if n, err := strconv.Atoi(s); err == nil {
		return n
	}
	return nil
}

// splitList accepts "a,b" as well as separate words.
func splitList(words []string) []string {
	var out []string
	for _, w := range words {
		for _, s := range strings.Split(w, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}
