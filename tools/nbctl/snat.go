package nbctl

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/courier-sdn/courier/northd/rules"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema/nbdb"
	"github.com/courier-sdn/courier/tools/cmdline"
)

// A VPC's source NAT (SNAT): the addresses of a public external network
// its ports without an EIP share to reach it. A VPC holds at most one
// configuration (VPC.snat, a strong reference: deleting the VPC or
// clearing the column deletes it); the configuration references its
// network strongly, so a network in use cannot be deleted. The checks
// are northd's own (northd/rules), made here first so that a bad
// command says what is wrong before anything is sent; northd refuses
// the same rows written by anyone else.

var tSNAT = nbdb.SNATTable

func snatCommands() []*command {
	tables := []string{tVPC, tSNAT, tExtnet, tEIP}
	return []*command{
		{Name: "snat-set", Args: "VPC EXTNET IP[,IP...]",
			Summary: "share these addresses of a public external network among the VPC's ports without an EIP, each translated within blocks of ports of its own (creates or replaces the VPC's SNAT)",
			Min:     3, Max: 3,
			Flags: []cmdline.Flag{{Name: "block", Arg: "N",
				Usage: "ports per block each port is given, a power of two from 64 to 32768 (default 1024: 63 blocks an address)"}},
			Tables: tables, Run: cmdSNATSet},
		{Name: "snat-del", Args: "VPC", Summary: "stop translating the VPC's ports (deletes its SNAT)", Min: 1, Max: 1,
			Flags: []cmdline.Flag{ifExists}, Tables: tables, Run: cmdSNATDel},
		{Name: "snat-list", Args: "", Summary: "list the VPCs' SNAT addresses", Max: 0,
			Tables: tables, Run: cmdSNATList},
	}
}

// readSNATs reads every SNAT row, by UUID.
func (st *state) readSNATs(ctx context.Context) error {
	st.snats = map[string]*nbdb.SNAT{}
	rows, err := ops.List[nbdb.SNAT](ctx, st.c, nil)
	if err != nil {
		return err
	}
	for _, s := range rows {
		st.snats[s.UUID] = s
	}
	return nil
}

// snatOf is a VPC's SNAT, or nil.
func (st *state) snatOf(vpc *nbdb.VPC) *nbdb.SNAT {
	if vpc.SNAT == nil {
		return nil
	}
	return st.snats[*vpc.SNAT]
}

// snatUser names the VPC whose SNAT has addr, other than skip, or "".
func (st *state) snatUser(addr string, skip *nbdb.VPC) string {
	var users []string
	for _, vpc := range st.vpcs {
		if s := st.snatOf(vpc); s != nil && vpc != skip && slices.Contains(s.Addresses, addr) {
			users = append(users, vpc.Name)
		}
	}
	sort.Strings(users)
	if len(users) == 0 {
		return ""
	}
	return users[0]
}

// snatAddresses checks the addresses of a SNAT of vpc in network n.
func (st *state) snatAddresses(vpc *nbdb.VPC, n *nbdb.ExternalNetwork, list string) ([]string, error) {
	prefixes, err := rules.ParseExtnetCIDRs(n.Cidrs)
	if err != nil {
		return nil, fmt.Errorf("external network %s: %w", n.Name, err)
	}
	var addrs []string
	for _, s := range rules.SplitCIDRs(list) {
		a, err := rules.CheckSNATAddress(n.Name, prefixes, s)
		if err != nil {
			return nil, err
		}
		addr := a.String()
		switch {
		case slices.Contains(addrs, addr):
			return nil, fmt.Errorf("SNAT address %s is given twice", addr)
		case st.eips[addr] != nil:
			return nil, fmt.Errorf("SNAT address %s is an EIP of external network %s", addr, st.eipNet[addr].Name)
		}
		if other := st.snatUser(addr, vpc); other != "" {
			return nil, fmt.Errorf("SNAT address %s is VPC %s's", addr, other)
		}
		addrs = append(addrs, addr)
	}
	if len(addrs) == 0 || len(addrs) > rules.SNATMaxAddresses {
		return nil, fmt.Errorf("a SNAT has 1 to %d addresses, not %d", rules.SNATMaxAddresses, len(addrs))
	}
	rules.SortAddrs(addrs)
	return addrs, nil
}

func cmdSNATSet(st *state, inv *cmdline.Invocation, _ *cmdline.Output) error {
	vpc, err := st.vpc(inv.Args[0])
	if err != nil {
		return err
	}
	n, err := st.extnet(inv.Args[1])
	if err != nil {
		return err
	}
	if n.Kind != rules.ExtnetPublic {
		return fmt.Errorf("external network %s is %s: SNAT needs a public network (physical networks are for 1:1 addresses, eip-add)", n.Name, n.Kind)
	}
	addrs, err := st.snatAddresses(vpc, n, inv.Args[2])
	if err != nil {
		return err
	}
	var block *int
	if v := inv.Value("block"); v != "" {
		b, err := strconv.Atoi(v)
		if err == nil {
			err = rules.CheckSNATBlock(b)
		}
		if err != nil {
			return fmt.Errorf("--block %s: a power of two from %d to %d", v, rules.SNATMinBlock, rules.SNATMaxBlock)
		}
		block = &b
	}
	// Decided from the VPC's SNAT as read: fail if it changed.
	if err := st.verify(vpc, vpc.UUID, &vpc.SNAT); err != nil {
		return err
	}
	if old := st.snatOf(vpc); old != nil {
		old.ExternalNetwork, old.Addresses, old.BlockSize = n.UUID, addrs, block
		return st.add(ops.ByUUID(st.c, old).Update(old, &old.ExternalNetwork, &old.Addresses, &old.BlockSize))
	}
	s := &nbdb.SNAT{UUID: st.newName("snat"), ExternalNetwork: n.UUID, Addresses: addrs, BlockSize: block}
	if err := st.add(st.c.Create(s)); err != nil {
		return err
	}
	st.snats[s.UUID] = s
	vpc.SNAT = &s.UUID
	return st.add(ops.ByUUID(st.c, vpc).Update(vpc, &vpc.SNAT))
}

func cmdSNATDel(st *state, inv *cmdline.Invocation, _ *cmdline.Output) error {
	vpc := st.vpcs[inv.Args[0]]
	if vpc == nil || vpc.SNAT == nil {
		if inv.Has("if-exists") {
			return nil
		}
		if vpc == nil {
			return fmt.Errorf("no VPC named %q", inv.Args[0])
		}
		return fmt.Errorf("VPC %s has no SNAT", vpc.Name)
	}
	// Clearing the strong reference deletes the row (it is not a root).
	vpc.SNAT = nil
	return st.add(ops.ByUUID(st.c, vpc).Update(vpc, &vpc.SNAT))
}

// snatText is a SNAT's one-line description: "203.0.113.9,203.0.113.10
// via internet, block 1024".
func (st *state) snatText(s *nbdb.SNAT) string {
	addrs := slices.Clone(s.Addresses)
	rules.SortAddrs(addrs)
	return fmt.Sprintf("%s via %s, block %d", strings.Join(addrs, ","), st.extnetName(s.ExternalNetwork), snatBlock(s))
}

func (st *state) showSNAT(s *nbdb.SNAT) *showSNAT {
	out := &showSNAT{Network: st.extnetName(s.ExternalNetwork), Addresses: slices.Clone(s.Addresses), Block: snatBlock(s),
		Error: errOf(s.Status), text: st.snatText(s)}
	rules.SortAddrs(out.Addresses)
	return out
}

// extnetName is a network's name by UUID, or the UUID.
func (st *state) extnetName(u string) string {
	for _, n := range st.extnets {
		if n.UUID == u {
			return n.Name
		}
	}
	return u
}

func snatBlock(s *nbdb.SNAT) int {
	if s.BlockSize != nil {
		return *s.BlockSize
	}
	return rules.SNATDefaultBlock
}

func cmdSNATList(st *state, _ *cmdline.Invocation, out *cmdline.Output) error {
	var rows [][]any
	for _, vpc := range st.vpcs {
		s := st.snatOf(vpc)
		if s == nil {
			continue
		}
		addrs := slices.Clone(s.Addresses)
		rules.SortAddrs(addrs)
		rows = append(rows, []any{vpc.Name, st.extnetName(s.ExternalNetwork), strings.Join(addrs, ","), snatBlock(s), statusText(s.Status)})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i][0].(string) < rows[j][0].(string) })
	out.Table([]string{"VPC", "EXTNET", "ADDRESSES", "BLOCK", "STATUS"}, rows)
	return nil
}
