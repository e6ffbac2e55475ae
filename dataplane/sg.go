package dataplane

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/courier-sdn/courier/pipeline"
)

// Security groups in the data plane (bpf/sg.h): per VPC, what each
// identity means (its groups) and each group's rules; per local port, its
// identity; and the policy generation, bumped whenever any of these
// changes so that tracked connections are checked again at their next
// packet. Group numbers are hostd's, per VPC.

// SGVPC is one VPC's security groups.
type SGVPC struct {
	VPC uint32
	// Identities maps each identity to its groups.
	Identities map[uint32][]uint32
	Rules      []SGRule
}

// SGRule is one allow rule of a group.
type SGRule struct {
	Group            uint32
	Ingress          bool
	Proto            uint8  // IP protocol, 0 for any
	PortMin, PortMax uint16 // 0, 0: every port
	// The remote end: a prefix, or (RemoteGroup != 0) a group.
	Prefix      netip.Prefix
	RemoteGroup uint32
}

// MaxSGRules is how many rules a group may have in one direction: up to
// 16 chunks of 64 (sg.h).
const MaxSGRules = sgChunks * sgChunkRules

const (
	sgChunks     = 16
	sgChunkRules = len(dvrSgRules{}.R)
)

// The limits northd enforces are the maps'.
var (
	_ = [1]struct{}{}[MaxSGRules-pipeline.MaxSGRules]
	_ = [1]struct{}{}[len(dvrSgIdent{}.Groups)-pipeline.MaxPortSGs]
)

// Connection tracking's directions (sg.h).
const (
	sgEgress  = 0
	sgIngress = 1
	sgRGroup  = 0x1
)

func (d *Datapath) sgIdentT() table[dvrSgIdentKey, dvrSgIdent] {
	return table[dvrSgIdentKey, dvrSgIdent]{d.objs.SgIdentV1, "sg_ident"}
}
func (d *Datapath) sgMemberT() table[dvrSgMemberKey, uint32] {
	return table[dvrSgMemberKey, uint32]{d.objs.SgMemberV1, "sg_member"}
}
func (d *Datapath) sgRulesT() table[dvrSgRulesKey, dvrSgRules] {
	return table[dvrSgRulesKey, dvrSgRules]{d.objs.SgRulesV2, "sg_rules"}
}
func (d *Datapath) portSGT() table[uint32, dvrPortSg] {
	return table[uint32, dvrPortSg]{d.objs.PortSgV2, "port_sg"}
}

// compiledSG is the security groups of a State in the maps' terms.
type compiledSG struct {
	ident  map[dvrSgIdentKey]dvrSgIdent
	member map[dvrSgMemberKey]uint32
	rules  map[dvrSgRulesKey]dvrSgRules
	ports  map[uint32]dvrPortSg
}

func compileSG(s *State) (*compiledSG, error) {
	c := &compiledSG{ident: map[dvrSgIdentKey]dvrSgIdent{}, member: map[dvrSgMemberKey]uint32{},
		rules: map[dvrSgRulesKey]dvrSgRules{}, ports: map[uint32]dvrPortSg{}}
	var errs []error
	for _, v := range s.SG {
		for id, groups := range v.Identities {
			if id > pipeline.MaxIdentity {
				errs = append(errs, fmt.Errorf("VPC %d identity %d: reserved (%s), in no group", v.VPC, id, identityName(id)))
				continue
			}
			gs := slices.Sorted(slices.Values(groups))
			if len(gs) > len(dvrSgIdent{}.Groups) {
				errs = append(errs, fmt.Errorf("VPC %d identity %d: %d groups, at most %d", v.VPC, id, len(gs), len(dvrSgIdent{}.Groups)))
				gs = gs[:len(dvrSgIdent{}.Groups)]
			}
			e := dvrSgIdent{N: uint32(len(gs))}
			copy(e.Groups[:], gs)
			c.ident[dvrSgIdentKey{Vpc: v.VPC, Id: id}] = e
			for _, g := range gs {
				c.member[dvrSgMemberKey{Vpc: v.VPC, Id: id, Group: g}] = 1
			}
		}
		errs = append(errs, c.compileRules(v)...)
	}
	for _, p := range s.Ports {
		if p.Identity > pipeline.MaxIdentity {
			// Its traffic is refused rather than sent as the internet's.
			errs = append(errs, fmt.Errorf("port %s: identity %d is reserved (%s)", p.Name, p.Identity, identityName(p.Identity)))
			continue
		}
		if p.Identity != 0 {
			c.ports[uint32(p.Ifindex)] = dvrPortSg{Vpc: p.VPC, Id: p.Identity}
		}
	}
	return c, errors.Join(errs...)
}

// compileRules splits each of a VPC's groups' rules of one direction
// into chunks, each saying how many there are.
func (c *compiledSG) compileRules(v SGVPC) []error {
	type gd struct{ group, dir uint32 }
	byGroup := map[gd][]dvrSgRule{}
	var errs []error
	for _, r := range v.Rules {
		k := gd{r.Group, sgEgress}
		if r.Ingress {
			k.dir = sgIngress
		}
		if len(byGroup[k]) >= MaxSGRules {
			errs = append(errs, fmt.Errorf("VPC %d group %d: more than %d rules in one direction", v.VPC, r.Group, MaxSGRules))
			continue
		}
		byGroup[k] = append(byGroup[k], r.compile())
	}
	for k, rs := range byGroup {
		// A group's rules in one order whatever order they came in:
		// otherwise every apply rewrites the chunks and bumps the
		// generation, and every tracked connection is checked again.
		slices.SortFunc(rs, cmpRule)
		chunks := (len(rs) + sgChunkRules - 1) / sgChunkRules
		for i := 0; i < chunks; i++ {
			part := rs[i*sgChunkRules : min(len(rs), (i+1)*sgChunkRules)]
			e := dvrSgRules{N: uint32(len(part)), Chunks: uint32(chunks)}
			copy(e.R[:], part)
			c.rules[dvrSgRulesKey{Vpc: v.VPC, Group: k.group, Dir: uint16(k.dir), Chunk: uint16(i)}] = e
		}
	}
	return errs
}

func cmpRule(a, b dvrSgRule) int {
	return cmp.Or(cmp.Compare(a.Proto, b.Proto), cmp.Compare(a.Flags, b.Flags), cmp.Compare(a.PortMin, b.PortMin),
		cmp.Compare(a.PortMax, b.PortMax), cmp.Compare(a.Addr, b.Addr), cmp.Compare(a.Mask, b.Mask), cmp.Compare(a.Group, b.Group))
}

func (r SGRule) compile() dvrSgRule {
	e := dvrSgRule{Proto: r.Proto, PortMin: r.PortMin, PortMax: r.PortMax}
	if r.RemoteGroup != 0 {
		e.Flags, e.Group = sgRGroup, r.RemoteGroup
		return e
	}
	p := r.Prefix
	if !p.IsValid() {
		p = netip.MustParsePrefix("0.0.0.0/0")
	}
	e.Addr, e.Mask = be32(p.Masked().Addr()), maskBE(p)
	return e
}

// applySG syncs the security group maps and bumps the generation when
// anything in them changed.
func (d *Datapath) applySG(want, have *compiledSG, add func(int, int, error)) error {
	changed := 0
	count := func(p, r int, err error) {
		changed += p + r
		add(p, r, err)
	}
	count(d.sgIdentT().sync(want.ident, have.ident))
	count(d.sgMemberT().sync(want.member, have.member))
	count(d.sgRulesT().sync(want.rules, have.rules))
	pickUpWindow(want.ports, have.ports, monotonic())
	count(d.portSGT().sync(want.ports, have.ports))
	if changed == 0 {
		return nil
	}
	return d.BumpSGGeneration()
}

// SGPickUpWindow is how long after a port appears on this host (a VM
// booted or migrated here) a TCP connection that this host never tracked
// may be picked up mid-stream at it, if the port's rules allow the
// connection the other way (sg.h, sg_pick_up): a migrated VM's
// connections were tracked on its old host.
const SGPickUpWindow = 30 * time.Second

// pickUpWindow gives ports new on this host a pickup window from now,
// and the others the one they have.
func pickUpWindow(want, have map[uint32]dvrPortSg, now uint64) {
	for ifx, p := range want {
		if h, ok := have[ifx]; ok {
			p.PickupUntilNs = h.PickupUntilNs
		} else {
			p.PickupUntilNs = now + uint64(SGPickUpWindow)
		}
		want[ifx] = p
	}
}

// BumpSGGeneration makes every tracked connection be checked again
// against the rules at its next packet.
func (d *Datapath) BumpSGGeneration() error {
	var gen uint32
	if err := d.objs.SgGenV1.Lookup(uint32(0), &gen); err != nil {
		return fmt.Errorf("sg_gen: %w", err)
	}
	if err := d.objs.SgGenV1.Put(uint32(0), gen+1); err != nil {
		return fmt.Errorf("sg_gen: %w", err)
	}
	return nil
}

func (d *Datapath) dumpSG() (*compiledSG, error) {
	c := &compiledSG{}
	var e1, e2, e3, e4 error
	c.ident, e1 = d.sgIdentT().dump()
	c.member, e2 = d.sgMemberT().dump()
	c.rules, e3 = d.sgRulesT().dump()
	c.ports, e4 = d.portSGT().dump()
	return c, errors.Join(e1, e2, e3, e4)
}

// SGEntries counts the entries of the security group maps: what a host
// holds for its ports' groups ("rules" counts chunks of up to 64).
func (d *Datapath) SGEntries() (map[string]int, error) {
	c, err := d.dumpSG()
	if err != nil {
		return nil, err
	}
	n := map[string]int{"identities": len(c.ident), "memberships": len(c.member), "rule_chunks": len(c.rules), "ports": len(c.ports)}
	for _, r := range c.rules {
		n["rules"] += int(r.N)
	}
	var k dvrCtKey
	var v dvrCtEntry
	it := d.objs.CtV1.Iterate()
	for it.Next(&k, &v) {
		n["tracked_connections"]++
	}
	return n, it.Err()
}
