package hostd

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/courier-sdn/courier/dataplane"
	"github.com/courier-sdn/courier/pipeline"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// Security groups: each allow flow of sg_egress and sg_ingress is one
// rule of one group (named in the flow); the VPC datapath's
// security_identities say which groups each identity stands for. Groups
// are numbered here, per VPC, by name: the numbers never leave this host.

// sgFlowRule is a rule as its flow says it, its groups by name.
type sgFlowRule struct {
	group  string
	rule   dataplane.SGRule
	remote string // the remote group's name, or ""
}

func compileSGEgress(fc *flowConfig, f *lflow) error  { return compileSG(fc, f, false) }
func compileSGIngress(fc *flowConfig, f *lflow) error { return compileSG(fc, f, true) }

func compileSG(fc *flowConfig, f *lflow, ingress bool) error {
	self, addr, peer, flag, reason := "inport.sg", "ip4.dst", "dst.sg", pipeline.VPCSGEgress, "sg_egress"
	if ingress {
		self, addr, peer, flag, reason = "outport.sg", "ip4.src", "src.sg", pipeline.VPCSGIngress, "sg_ingress"
	}
	switch {
	case f.is("next"), f.is("allow") && has(f.match, "ct.est"):
		return nil // tracked connections always pass first; non-IPv4 is never subject
	case f.is("drop", reason):
		return fc.vpc(flag)
	case !f.is("allow"):
		return errNotImplemented
	}
	g, ok := find(f.match, self)
	if !ok || g.Str == "" {
		return fmt.Errorf("an allow flow names its group (%s == \"GROUP\")", self)
	}
	r := sgFlowRule{group: g.Str, rule: dataplane.SGRule{Ingress: ingress}}
	for _, p := range []struct {
		field string
		proto uint8
	}{{"tcp", 6}, {"udp", 17}, {"icmp4", 1}} {
		if has(f.match, p.field) {
			r.rule.Proto = p.proto
		}
	}
	if r.rule.Proto == 6 || r.rule.Proto == 17 {
		if err := portRange(f.match, map[uint8]string{6: "tcp.dst", 17: "udp.dst"}[r.rule.Proto], &r.rule); err != nil {
			return err
		}
	}
	if v, ok := find(f.match, peer); ok {
		r.remote = v.Str
	} else if v, ok := find(f.match, addr); ok {
		r.rule.Prefix = v.Prefix
	}
	fc.sgRules = append(fc.sgRules, r)
	return nil
}

// portRange reads field == N, or field >= MIN && field <= MAX.
func portRange(e pipeline.Expr, field string, r *dataplane.SGRule) error {
	if v, ok := find(e, field); ok {
		r.PortMin, r.PortMax = uint16(v.Int), uint16(v.Int)
		return nil
	}
	and, _ := e.(pipeline.And)
	for _, t := range and {
		if c, ok := t.(pipeline.Cmp); ok && c.Field == field && len(c.Values) == 1 {
			switch c.Op {
			case ">=":
				r.PortMin = uint16(c.Values[0].Int)
			case "<=":
				r.PortMax = uint16(c.Values[0].Int)
			}
		}
	}
	if (r.PortMin == 0) != (r.PortMax == 0) {
		return fmt.Errorf("a port range needs both ends")
	}
	return nil
}

// groups is securityGroups, built once per compiled flowConfig.
func (fc *flowConfig) groups(vpc int, dps map[string]*sbdb.Datapath) (*dataplane.SGVPC, []string) {
	if !fc.sgDone {
		fc.sg, fc.sgErrs = securityGroups(vpc, dps, fc)
		fc.sgDone = true
	}
	return fc.sg, fc.sgErrs
}

// securityGroups is a VPC's groups for the data plane: nil when the VPC
// enforces none.
func securityGroups(vpc int, dps map[string]*sbdb.Datapath, fc *flowConfig) (*dataplane.SGVPC, []string) {
	if fc.vpcFlags&(pipeline.VPCSGEgress|pipeline.VPCSGIngress) == 0 {
		return nil, nil
	}
	var errs []string
	idents := map[uint32][]string{}
	names := map[string]bool{}
	for _, dp := range dps {
		if dp.Type != pipeline.DPVPC {
			continue
		}
		for k, v := range dp.SecurityIdentities {
			id, err := strconv.Atoi(k)
			if err != nil || id < 1 || id > pipeline.MaxIdentity {
				errs = append(errs, fmt.Sprintf("datapath %s: bad identity %q", dp.Name, k))
				continue
			}
			idents[uint32(id)] = strings.Split(v, ",")
			for _, g := range idents[uint32(id)] {
				names[g] = true
			}
		}
	}
	for _, r := range fc.sgRules {
		names[r.group] = true
		if r.remote != "" {
			names[r.remote] = true
		}
	}
	sorted := slices.Sorted(func(yield func(string) bool) {
		for n := range names {
			if !yield(n) {
				return
			}
		}
	})
	num := map[string]uint32{}
	for i, n := range sorted {
		num[n] = uint32(i + 1)
	}
	sg := &dataplane.SGVPC{VPC: uint32(vpc), Identities: map[uint32][]uint32{}}
	for id, gs := range idents {
		for _, g := range gs {
			sg.Identities[id] = append(sg.Identities[id], num[g])
		}
	}
	perGroup := map[[2]uint32]int{}
	for _, r := range fc.sgRules {
		rule := r.rule
		rule.Group = num[r.group]
		if r.remote != "" {
			rule.RemoteGroup = num[r.remote]
		}
		dir := [2]uint32{rule.Group, 0}
		if rule.Ingress {
			dir[1] = 1
		}
		if perGroup[dir]++; perGroup[dir] > dataplane.MaxSGRules {
			errs = append(errs, fmt.Sprintf("security group %s: more than %d rules in one direction; the rest are not applied", r.group, dataplane.MaxSGRules))
			continue
		}
		sg.Rules = append(sg.Rules, rule)
	}
	sort.SliceStable(sg.Rules, func(i, j int) bool { return sg.Rules[i].Group < sg.Rules[j].Group })
	return sg, errs
}
