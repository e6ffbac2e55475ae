package dataplane

import (
	"cmp"
	"errors"
	"fmt"
	"math/bits"
	"net/netip"
	"slices"
	"time"

	"github.com/cilium/ebpf"

	"github.com/courier-sdn/courier/pipeline"
)

// Conn is one tracked connection (ct_v1), as its first packet went.
type Conn struct {
	Zone     uint32 // the local port protected: its host-side ifindex
	Proto    uint8
	Src, Dst netip.AddrPort
	Ingress  bool          // opened towards the port (else by it)
	Expires  time.Duration // until it is forgotten unless a packet renews it (a closing one is not)
	Stale    bool          // allowed under an older policy generation: checked again at its next packet
	RemoteID uint32        // the other end's identity when allowed (0: unknown)
	Pending  bool          // allowed pending the receiver's check of the sender's egress rules
	Closing  bool          // a FIN was seen
}

// Connections lists the tracked connections, by zone and tuple.
func (d *Datapath) Connections() ([]Conn, error) {
	var gen uint32
	if err := d.objs.SgGenV1.Lookup(uint32(0), &gen); err != nil {
		return nil, fmt.Errorf("sg_gen: %w", err)
	}
	timeout, err := ctTimeout()
	if err != nil {
		return nil, err
	}
	now := monotonic()
	var out []Conn
	var k dvrCtKey
	var v dvrCtEntry
	it := d.objs.CtV1.Iterate()
	for it.Next(&k, &v) {
		out = append(out, Conn{Zone: k.Zone, Proto: k.Proto,
			Src:     netip.AddrPortFrom(fromBE32(k.Saddr), bits.ReverseBytes16(k.Sport)),
			Dst:     netip.AddrPortFrom(fromBE32(k.Daddr), bits.ReverseBytes16(k.Dport)),
			Ingress: v.Dir == sgIngress, Expires: time.Duration(max(0, int64(v.SeenNs+timeout)-int64(now))), Stale: v.Gen != gen,
			RemoteID: v.RemoteId, Pending: v.Flags&0x1 != 0, Closing: v.Flags&0x2 != 0})
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("ct: %w", err)
	}
	slices.SortFunc(out, func(a, b Conn) int {
		return cmp.Or(cmp.Compare(a.Zone, b.Zone), a.Src.Compare(b.Src), a.Dst.Compare(b.Dst))
	})
	return out, nil
}

// ctTimeout is how long an idle tracked connection lives: the program's
// compiled cfg_ct_timeout_ns (a closing one's clock is set back so that
// it goes cfg_ct_closing_ns after its FIN).
func ctTimeout() (uint64, error) {
	spec, err := loadDvr()
	if err != nil {
		return 0, err
	}
	var t uint64
	if err := spec.Variables["cfg_ct_timeout_ns"].Get(&t); err != nil {
		return 0, fmt.Errorf("cfg_ct_timeout_ns: %w", err)
	}
	return t, nil
}

// SGView is what the security group maps hold, in words: per local port
// its VPC and identity, per VPC identity its groups, per group its rules
// (group numbers are hostd's own, per VPC, by name).
type SGView struct {
	Ports      []string
	Identities []string
	Rules      []string
	Denials    []string
}

// SGDenial is how many packets the rules of one identity refused in one
// direction.
type SGDenial struct {
	VPC, Identity uint32
	Ingress       bool
	Packets       uint64
}

// SGDenials sums the per-CPU denial counts (sg_denied_v1).
func (d *Datapath) SGDenials() ([]SGDenial, error) {
	var out []SGDenial
	var k dvrSgDeniedKey
	var per []uint64
	it := d.objs.SgDeniedV1.Iterate()
	for it.Next(&k, &per) {
		var n uint64
		for _, v := range per {
			n += v
		}
		out = append(out, SGDenial{VPC: k.Vpc, Identity: k.Id, Ingress: k.Dir == sgIngress, Packets: n})
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("sg_denied: %w", err)
	}
	slices.SortFunc(out, func(a, b SGDenial) int {
		return cmp.Or(cmp.Compare(a.VPC, b.VPC), cmp.Compare(a.Identity, b.Identity), compareBool(a.Ingress, b.Ingress))
	})
	return out, nil
}

// PortIdentity is the security group identity of the local port whose
// host side is ifindex; false if it has none: an interface that is no
// port, or a port of a VPC that enforces no groups.
func (d *Datapath) PortIdentity(ifindex int) (uint32, bool, error) {
	var p dvrPortSg
	err := d.objs.PortSgV2.Lookup(uint32(ifindex), &p)
	if errors.Is(err, ebpf.ErrKeyNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	return p.Id, true, nil
}

// GBPPolicyApplied is the VXLAN GBP field's "policy applied" bit, as the
// kernel keeps it (VXLAN_GBP_POLICY_APPLIED; sg.h): the sender's egress
// rules passed the packet, which carries its identity in the low bits.
const GBPPolicyApplied = 1 << 19

// SecurityGroups describes the security group maps.
func (d *Datapath) SecurityGroups() (*SGView, error) {
	c, err := d.dumpSG()
	if err != nil {
		return nil, err
	}
	v := &SGView{}
	for ifx, p := range c.ports {
		v.Ports = append(v.Ports, fmt.Sprintf("ifindex %d: vpc %d identity %d", ifx, p.Vpc, p.Id))
	}
	for k, id := range c.ident {
		v.Identities = append(v.Identities, fmt.Sprintf("vpc %d identity %d: groups %v", k.Vpc, k.Id, id.Groups[:min(int(id.N), len(id.Groups))]))
	}
	for k, rs := range c.rules {
		dir := "egress"
		if k.Dir == sgIngress {
			dir = "ingress"
		}
		for _, r := range rs.R[:min(int(rs.N), len(rs.R))] {
			v.Rules = append(v.Rules, fmt.Sprintf("vpc %d group %d %s %s", k.Vpc, k.Group, dir, r))
		}
	}
	for _, l := range [][]string{v.Ports, v.Identities, v.Rules} {
		slices.Sort(l)
	}
	denials, err := d.SGDenials()
	if err != nil {
		return nil, err
	}
	for _, n := range denials {
		dir := "egress"
		if n.Ingress {
			dir = "ingress"
		}
		if n.Identity > pipeline.MaxIdentity {
			// A reserved identity has no rules: what it sent was refused
			// by the receiving ports' (counted under theirs as well).
			v.Denials = append(v.Denials, fmt.Sprintf("vpc %d identity %s: %d packets from it refused by ports' %s rules",
				n.VPC, IdentityString(n.Identity), n.Packets, dir))
			continue
		}
		id := c.ident[dvrSgIdentKey{Vpc: n.VPC, Id: n.Identity}]
		v.Denials = append(v.Denials, fmt.Sprintf("vpc %d identity %d (groups %v): %d packets refused by its %s rules",
			n.VPC, n.Identity, id.Groups[:min(int(id.N), len(id.Groups))], n.Packets, dir))
	}
	return v, nil
}

func (r dvrSgRule) String() string {
	proto := map[uint8]string{0: "any", 1: "icmp", 6: "tcp", 17: "udp"}[r.Proto]
	if proto == "" {
		proto = fmt.Sprint(r.Proto)
	}
	s := proto
	if r.PortMax != 0 {
		s += fmt.Sprintf(" %d-%d", r.PortMin, r.PortMax)
	}
	if r.Flags&sgRGroup != 0 {
		return s + fmt.Sprintf(" group %d", r.Group)
	}
	return s + " " + netip.PrefixFrom(fromBE32(r.Addr), bits.OnesCount32(r.Mask)).String()
}

// identityName names a reserved identity ("internet"), or says "reserved".
func identityName(id uint32) string {
	if n, ok := pipeline.ReservedIdentities[id]; ok {
		return n
	}
	return "reserved"
}

// IdentityString is an identity as courier-dpctl and courier-trace show
// it: its number, and a reserved one's name ("65535 (internet)").
func IdentityString(id uint32) string {
	if id > pipeline.MaxIdentity {
		return fmt.Sprintf("%d (%s)", id, identityName(id))
	}
	return fmt.Sprint(id)
}

func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}
