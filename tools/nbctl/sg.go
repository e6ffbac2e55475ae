package nbctl

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/northd/rules"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/pipeline"
	"github.com/courier-sdn/courier/schema/nbdb"
	"github.com/courier-sdn/courier/tools/cmdline"
)

// Security groups. A group belongs to a VPC (VPC.security_groups) and
// its name is unique within it, so two VPCs may both have a group "web";
// a command names a group as NAME when only one VPC has it, else as
// VPC/NAME. A rule is named by its UUID, or the first characters of it
// (sg-rule-list prints eight).

var (
	tSG     = nbdb.SecurityGroupTable
	tSGRule = nbdb.SecurityGroupRuleTable
)

func sgCommands() []*command {
	groups := []string{tVPC, tSG, tSGRule}
	return []*command{
		{Name: "sg-add", Args: "VPC SG", Summary: "create a security group in a VPC (it allows nothing until rules are added)", Min: 2, Max: 2,
			Flags: []cmdline.Flag{mayExist}, Tables: groups, Run: cmdSGAdd},
		{Name: "sg-del", Args: "SG", Summary: "delete a security group and its rules (refused while a port or another group's rule names it)", Min: 1, Max: 1,
			Flags: []cmdline.Flag{ifExists}, Tables: append(groups, tVxnet, tPort), Run: cmdSGDel},
		{Name: "sg-list", Args: "[VPC]", Summary: "list security groups, of one VPC or of all", Max: 1,
			Tables: groups, Run: cmdSGList},
		{Name: "sg-rule-add", Args: "SG ingress|egress tcp|udp|icmp|any [PORT[-PORT]]", Summary: "add an allow rule to a security group (remote: 0.0.0.0/0 unless given)", Min: 3, Max: 4,
			Flags: []cmdline.Flag{
				{Name: "remote", Arg: "CIDR", Usage: "the remote end is this prefix"},
				{Name: "remote-group", Arg: "SG", Usage: "the remote end is a member of this group of the same VPC"},
				mayExist},
			Tables: groups, Run: cmdSGRuleAdd},
		{Name: "sg-rule-del", Args: "SG RULE-ID", Summary: "delete a rule (RULE-ID: its UUID or a prefix of it, as sg-rule-list prints)", Min: 2, Max: 2,
			Flags: []cmdline.Flag{ifExists}, Tables: groups, Run: cmdSGRuleDel},
		{Name: "sg-rule-list", Args: "SG", Summary: "list a security group's rules", Min: 1, Max: 1,
			Tables: groups, Run: cmdSGRuleList},
	}
}

// readGroups reads every group and rule (after the VPCs).
func (st *state) readGroups(ctx context.Context) error {
	st.sgs, st.sgRules, st.sgVPC = map[string]*nbdb.SecurityGroup{}, map[string]*nbdb.SecurityGroupRule{}, map[string]*nbdb.VPC{}
	sgs, err := ops.List[nbdb.SecurityGroup](ctx, st.c, nil)
	if err != nil {
		return err
	}
	rs, err := ops.List[nbdb.SecurityGroupRule](ctx, st.c, nil)
	if err != nil {
		return err
	}
	for _, g := range sgs {
		st.sgs[g.UUID] = g
	}
	for _, r := range rs {
		st.sgRules[r.UUID] = r
	}
	for _, vpc := range st.vpcs {
		for _, u := range vpc.SecurityGroups {
			st.sgVPC[u] = vpc
		}
	}
	return nil
}

// groupsOf lists a VPC's groups, by name.
func (st *state) groupsOf(vpc *nbdb.VPC) []*nbdb.SecurityGroup {
	var out []*nbdb.SecurityGroup
	for u, g := range st.sgs {
		if st.sgVPC[u] == vpc {
			out = append(out, g)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// group finds a group by NAME (unique across VPCs) or VPC/NAME.
func (st *state) group(ref string) (*nbdb.SecurityGroup, error) {
	vpcName, name, scoped := strings.Cut(ref, "/")
	if !scoped {
		name, vpcName = ref, ""
	}
	var found []*nbdb.SecurityGroup
	for u, g := range st.sgs {
		vpc := st.sgVPC[u]
		if g.Name == name && vpc != nil && (!scoped || vpc.Name == vpcName) {
			found = append(found, g)
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("no security group named %q", ref)
	case 1:
		return found[0], nil
	}
	return nil, fmt.Errorf("security group %q is in more than one VPC: name it VPC/%s", name, name)
}

func cmdSGAdd(st *state, inv *cmdline.Invocation, _ *cmdline.Output) error {
	vpc, err := st.vpc(inv.Args[0])
	if err != nil {
		return err
	}
	name := inv.Args[1]
	if err := checkName("security group", name); err != nil {
		return err
	}
	for _, g := range st.groupsOf(vpc) {
		if g.Name == name {
			if inv.Has("may-exist") {
				return nil
			}
			return fmt.Errorf("VPC %s already has a security group %s", vpc.Name, name)
		}
	}
	if err := st.verify(vpc, vpc.UUID, &vpc.SecurityGroups); err != nil {
		return err
	}
	g := &nbdb.SecurityGroup{UUID: st.newName("sg"), Name: name}
	st.sgs[g.UUID] = g
	st.sgVPC[g.UUID] = vpc
	return st.insertInto(vpc, &vpc.SecurityGroups, g, g.UUID)
}

func cmdSGDel(st *state, inv *cmdline.Invocation, _ *cmdline.Output) error {
	g, err := st.group(inv.Args[0])
	if err != nil {
		if inv.Has("if-exists") && strings.HasPrefix(err.Error(), "no security group") {
			return nil
		}
		return err
	}
	vpc := st.sgVPC[g.UUID]
	for _, p := range st.ports {
		for _, u := range p.SecurityGroups {
			if u == g.UUID {
				return fmt.Errorf("security group %s is used by port %s: move the port out first (port-set %s --sg ...)", g.Name, p.Name, p.Name)
			}
		}
	}
	for _, other := range st.groupsOf(vpc) {
		for _, ru := range other.Rules {
			if r := st.sgRules[ru]; r != nil && r.RemoteGroup != nil && *r.RemoteGroup == g.UUID && other != g {
				return fmt.Errorf("security group %s is the remote group of a rule of group %s (%s): delete that rule first", g.Name, other.Name, shortID(ru))
			}
		}
	}
	if err := st.verify(vpc, vpc.UUID, &vpc.SecurityGroups); err != nil {
		return err
	}
	delete(st.sgs, g.UUID)
	return st.add(ops.ByUUID(st.c, vpc).Mutate(vpc, model.Mutation{
		Field: &vpc.SecurityGroups, Mutator: ovsdb.MutateOperationDelete, Value: []string{g.UUID}}))
}

func cmdSGList(st *state, inv *cmdline.Invocation, out *cmdline.Output) error {
	var rows [][]any
	var vpcs []*nbdb.VPC
	if len(inv.Args) == 1 {
		vpc, err := st.vpc(inv.Args[0])
		if err != nil {
			return err
		}
		vpcs = []*nbdb.VPC{vpc}
	} else {
		for _, v := range st.vpcs {
			vpcs = append(vpcs, v)
		}
		sort.Slice(vpcs, func(i, j int) bool { return vpcs[i].Name < vpcs[j].Name })
	}
	for _, vpc := range vpcs {
		for _, g := range st.groupsOf(vpc) {
			rows = append(rows, []any{g.Name, vpc.Name, len(g.Rules), statusText(g.Status)})
		}
	}
	out.Table([]string{"NAME", "VPC", "RULES", "STATUS"}, rows)
	return nil
}

func cmdSGRuleAdd(st *state, inv *cmdline.Invocation, _ *cmdline.Output) error {
	g, err := st.group(inv.Args[0])
	if err != nil {
		return err
	}
	r := &nbdb.SecurityGroupRule{Direction: nbdb.SecurityGroupRuleDirection(inv.Args[1]), Protocol: nbdb.SecurityGroupRuleProtocol(inv.Args[2])}
	if r.Direction != nbdb.SecurityGroupRuleDirectionIngress && r.Direction != nbdb.SecurityGroupRuleDirectionEgress {
		return fmt.Errorf("direction %q: want ingress or egress", inv.Args[1])
	}
	if len(inv.Args) == 4 {
		lo, hi, err := rules.ParsePortRange(inv.Args[3])
		if err != nil {
			return err
		}
		r.PortMin, r.PortMax = &lo, &hi
	}
	if rg := inv.Value("remote-group"); rg != "" {
		if inv.Value("remote") != "" {
			return fmt.Errorf("give --remote or --remote-group, not both")
		}
		if !strings.Contains(rg, "/") {
			rg = st.sgVPC[g.UUID].Name + "/" + rg
		}
		other, err := st.group(rg)
		if err != nil {
			return fmt.Errorf("--remote-group: %w (a remote group must be in the same VPC)", err)
		}
		if st.sgVPC[other.UUID] != st.sgVPC[g.UUID] {
			return fmt.Errorf("--remote-group %s: not in VPC %s", inv.Value("remote-group"), st.sgVPC[g.UUID].Name)
		}
		r.RemoteGroup = &other.UUID
	} else {
		c := "0.0.0.0/0"
		if v := inv.Value("remote"); v != "" {
			c = v
		}
		r.RemoteCidr = &c
	}
	checked, err := rules.CheckSGRule(string(r.Protocol), r.PortMin, r.PortMax, r.RemoteCidr, r.RemoteGroup)
	if err != nil {
		return err
	}
	if r.RemoteCidr != nil {
		s := checked.CIDR.String()
		r.RemoteCidr = &s
	}
	same := 0
	for _, u := range g.Rules {
		o := st.sgRules[u]
		if o != nil && sameRule(o, r) {
			if inv.Has("may-exist") {
				return nil
			}
			return fmt.Errorf("security group %s already has this rule (%s)", g.Name, shortID(u))
		}
		if o != nil && o.Direction == r.Direction {
			same++
		}
	}
	if same >= pipeline.MaxSGRules {
		return fmt.Errorf("security group %s already has %d %s rules, the most a group may have", g.Name, same, r.Direction)
	}
	if err := st.verify(g, g.UUID, &g.Rules); err != nil {
		return err
	}
	r.UUID = st.newName("sgrule")
	st.sgRules[r.UUID] = r
	return st.insertInto(g, &g.Rules, r, r.UUID)
}

func sameRule(a, b *nbdb.SecurityGroupRule) bool {
	return a.Direction == b.Direction && a.Protocol == b.Protocol && sameInt(a.PortMin, b.PortMin) &&
		sameInt(a.PortMax, b.PortMax) && sameStr(a.RemoteCidr, b.RemoteCidr) && sameStr(a.RemoteGroup, b.RemoteGroup)
}

func sameInt(a, b *int) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

func sameStr(a, b *string) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

// shortID is how a rule is shown: the first eight characters of its UUID.
func shortID(u string) string {
	if len(u) > 8 {
		return u[:8]
	}
	return u
}

func cmdSGRuleDel(st *state, inv *cmdline.Invocation, _ *cmdline.Output) error {
	g, err := st.group(inv.Args[0])
	if err != nil {
		return err
	}
	id := strings.ToLower(inv.Args[1])
	if len(id) < 4 {
		return fmt.Errorf("rule id %q: give at least 4 characters of it", id)
	}
	var match []string
	for _, u := range g.Rules {
		if strings.HasPrefix(u, id) {
			match = append(match, u)
		}
	}
	switch len(match) {
	case 0:
		if inv.Has("if-exists") {
			return nil
		}
		return fmt.Errorf("security group %s has no rule %s", g.Name, id)
	case 1:
	default:
		return fmt.Errorf("rule id %s names %d rules of group %s: give more of it", id, len(match), g.Name)
	}
	if err := st.verify(g, g.UUID, &g.Rules); err != nil {
		return err
	}
	delete(st.sgRules, match[0])
	return st.add(ops.ByUUID(st.c, g).Mutate(g, model.Mutation{
		Field: &g.Rules, Mutator: ovsdb.MutateOperationDelete, Value: []string{match[0]}}))
}

// ruleText is a rule as a line: "ingress tcp 80-81 from 10.0.0.0/8".
func (st *state) ruleText(r *nbdb.SecurityGroupRule) (ports, remote string) {
	if r.PortMin != nil && r.PortMax != nil {
		ports = strconv.Itoa(*r.PortMin)
		if *r.PortMax != *r.PortMin {
			ports += "-" + strconv.Itoa(*r.PortMax)
		}
	}
	switch {
	case r.RemoteCidr != nil:
		remote = *r.RemoteCidr
	case r.RemoteGroup != nil:
		remote = "group ?"
		if o := st.sgs[*r.RemoteGroup]; o != nil {
			remote = "group " + o.Name
		}
	default:
		remote = "(none)"
	}
	return ports, remote
}

func cmdSGRuleList(st *state, inv *cmdline.Invocation, out *cmdline.Output) error {
	g, err := st.group(inv.Args[0])
	if err != nil {
		return err
	}
	var rows [][]any
	for _, u := range g.Rules {
		r := st.sgRules[u]
		if r == nil {
			continue
		}
		ports, remote := st.ruleText(r)
		rows = append(rows, []any{shortID(u), string(r.Direction), string(r.Protocol), ports, remote, statusText(r.Status)})
	}
	sort.Slice(rows, func(i, j int) bool { return fmt.Sprint(rows[i][1:5]) < fmt.Sprint(rows[j][1:5]) })
	out.Table([]string{"ID", "DIRECTION", "PROTOCOL", "PORTS", "REMOTE", "STATUS"}, rows)
	return nil
}

// portGroups resolves port-set's --sg list, in the port's VPC; an empty
// list puts the port back in the VPC's default group.
func (st *state) portGroups(port *nbdb.Port, vpc *nbdb.VPC, list string) ([]string, error) {
	var out []string
	if vpc == nil {
		return nil, fmt.Errorf("port %s belongs to no VPC", port.Name)
	}
	for _, name := range splitList([]string{list}) {
		if name == "" {
			continue
		}
		if !strings.Contains(name, "/") {
			name = vpc.Name + "/" + name
		}
		g, err := st.group(name)
		if err != nil {
			return nil, fmt.Errorf("--sg: %w in the VPC of port %s", err, port.Name)
		}
		out = append(out, g.UUID)
	}
	if len(out) > pipeline.MaxPortSGs {
		return nil, fmt.Errorf("--sg: a port may be in at most %d groups", pipeline.MaxPortSGs)
	}
	return out, nil
}

// groupNames are the names of the groups us, sorted.
func (st *state) groupNames(us []string) []string {
	var out []string
	for _, u := range us {
		if g := st.sgs[u]; g != nil {
			out = append(out, g.Name)
		}
	}
	sort.Strings(out)
	return out
}

// showGroups is show's view of a VPC's groups.
func (st *state) showGroups(vpc *nbdb.VPC) []showSG {
	var out []showSG
	for _, g := range st.groupsOf(vpc) {
		sg := showSG{Name: g.Name, Rules: []string{}, Error: errOf(g.Status)}
		for _, u := range g.Rules {
			r := st.sgRules[u]
			if r == nil {
				continue
			}
			ports, remote := st.ruleText(r)
			dir := "to"
			if r.Direction == nbdb.SecurityGroupRuleDirectionIngress {
				dir = "from"
			}
			line := strings.Join(strings.Fields(fmt.Sprintf("%s %s %s %s %s", r.Direction, r.Protocol, ports, dir, remote)), " ")
			if e := errOf(r.Status); e != nil {
				line += errText(e)
			}
			sg.Rules = append(sg.Rules, line)
		}
		sort.Strings(sg.Rules)
		out = append(out, sg)
	}
	return out
}

func showGroupsText(b *strings.Builder, vpc showVPC) {
	if vpc.Open {
		fmt.Fprintf(b, "    open: no security groups\n")
	}
	for _, g := range vpc.Groups {
		fmt.Fprintf(b, "    security group %s%s\n", g.Name, errText(g.Error))
		for _, r := range g.Rules {
			fmt.Fprintf(b, "        %s\n", r)
		}
	}
}
