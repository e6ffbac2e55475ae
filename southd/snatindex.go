package southd

import (
	"slices"
	"sort"
	"strconv"

	"github.com/courier-sdn/courier/northd/rules"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// snatIndex is what SNAT allocation reads from the southbound, indexed
// by VPC so that a change costs the VPC it touches, not every port and
// block: the VPCs' SNAT rows, their ports' bindings, their blocks, and
// which ports of each SNAT address are taken, over all VPCs (an address
// may pass from one VPC to another while the first still holds blocks
// of it).
//
// It is built from the monitor's rows and kept current from the changes
// the monitor delivers. southd's own allocations are written through as
// soon as they commit, so that a pass after them does not decide again
// from rows the monitor has not echoed yet; the blocks it freed are
// remembered until the monitor shows them gone, so that a late event
// about one does not bring it back.
type snatIndex struct {
	snats       map[int]*sbdb.SNAT // by VPC key
	snatVPC     map[string]int     // SNAT row UUID -> VPC key
	ports       map[int]map[string]*sbdb.PortBinding
	portByUUID  map[string]*sbdb.PortBinding
	blocks      map[int]map[string]*sbdb.SNATBlock // VPC -> block UUID -> block
	blockByUUID map[string]*sbdb.SNATBlock
	taken       map[string]*portUnits // address -> its ports in use
	freed       map[string]bool       // blocks deleted by southd, not yet by the monitor
	dirty       map[int]bool          // VPCs to allocate again
	// short: per VPC, the ports lacking blocks after the last pass, and
	// how many (exhaustion is reported when a port starts lacking)
	short map[int]map[string]int
	// stale: a write failed; rebuild from the monitor's rows
	stale bool
	seq   int // names blocks inserted and not yet committed
}

// unitPorts is the granularity of portUnits: the smallest block.
const unitPorts = rules.SNATMinBlock

// portUnits counts, per 64 ports of one address, the blocks covering
// them (more than one only if rows written by hand overlap).
type portUnits [65536 / unitPorts]uint16

func (u *portUnits) add(lo, hi, d int) {
	for i := lo / unitPorts; i <= hi/unitPorts; i++ {
		u[i] = uint16(int(u[i]) + d)
	}
}

func (u *portUnits) free(lo, hi int) bool {
	for i := lo / unitPorts; i <= hi/unitPorts; i++ {
		if u[i] != 0 {
			return false
		}
	}
	return true
}

func newSNATIndex() *snatIndex {
	return &snatIndex{snats: map[int]*sbdb.SNAT{}, snatVPC: map[string]int{},
		ports: map[int]map[string]*sbdb.PortBinding{}, portByUUID: map[string]*sbdb.PortBinding{},
		blocks: map[int]map[string]*sbdb.SNATBlock{}, blockByUUID: map[string]*sbdb.SNATBlock{},
		taken: map[string]*portUnits{}, freed: map[string]bool{}, dirty: map[int]bool{}, short: map[int]map[string]int{}}
}

// rebuild replaces the index with the rows given (the monitor's) and
// marks every VPC dirty. What was reported short stays, so that a
// rebuild does not report a port's exhaustion twice.
func (x *snatIndex) rebuild(snats []*sbdb.SNAT, pbs []*sbdb.PortBinding, blocks []*sbdb.SNATBlock) {
	short := x.short
	*x = *newSNATIndex()
	x.short = short
	for _, s := range snats {
		x.putSNAT(s)
	}
	for _, pb := range pbs {
		x.putPort(pb)
	}
	for _, b := range blocks {
		x.putBlock(b)
	}
	for v := range short {
		x.dirty[v] = true
	}
}

// apply folds in the monitor's changes.
func (x *snatIndex) apply(ch ops.Changes) {
	for u, c := range ch.Table(sbdb.SNATTable) {
		if c.New == nil {
			x.delSNAT(u)
		} else {
			x.putSNAT(c.New.(*sbdb.SNAT))
		}
	}
	for u, c := range ch.Table(sbdb.PortBindingTable) {
		if c.New == nil {
			x.delPort(u)
		} else {
			x.putPort(c.New.(*sbdb.PortBinding))
		}
	}
	for u, c := range ch.Table(sbdb.SNATBlockTable) {
		switch {
		case c.New == nil:
			delete(x.freed, u)
			x.delBlock(u)
		case !x.freed[u]:
			x.putBlock(c.New.(*sbdb.SNATBlock))
		}
	}
}

func (x *snatIndex) putSNAT(s *sbdb.SNAT) {
	if old := x.snats[x.snatVPC[s.UUID]]; old != nil && old.UUID == s.UUID {
		if old.Vpc == s.Vpc && old.BlockSize == s.BlockSize && ops.EqualSets(old.Addresses, s.Addresses) {
			x.snats[s.Vpc] = s
			return
		}
		x.delSNAT(s.UUID)
	}
	x.snats[s.Vpc] = s
	x.snatVPC[s.UUID] = s.Vpc
	x.dirty[s.Vpc] = true
}

func (x *snatIndex) delSNAT(uuid string) {
	v, ok := x.snatVPC[uuid]
	if !ok {
		return
	}
	delete(x.snatVPC, uuid)
	if s := x.snats[v]; s != nil && s.UUID == uuid {
		delete(x.snats, v)
	}
	x.dirty[v] = true
}

// snatEqual: two versions of a binding are alike to SNAT allocation.
func snatEqual(a, b *sbdb.PortBinding) bool {
	return a.Vpc == b.Vpc && a.LogicalPort == b.LogicalPort && (a.Eip == nil) == (b.Eip == nil) &&
		(len(a.IPs) == 0) == (len(b.IPs) == 0) && demand(a) == demand(b) && sameString(a.Chassis, b.Chassis) &&
		a.MAC == b.MAC && a.Datapath == b.Datapath
}

func (x *snatIndex) putPort(pb *sbdb.PortBinding) {
	if old := x.portByUUID[pb.UUID]; old != nil {
		if snatEqual(old, pb) {
			x.portByUUID[pb.UUID] = pb
			x.ports[pb.Vpc][pb.LogicalPort] = pb
			return
		}
		x.delPort(pb.UUID)
	}
	x.portByUUID[pb.UUID] = pb
	m := x.ports[pb.Vpc]
	if m == nil {
		m = map[string]*sbdb.PortBinding{}
		x.ports[pb.Vpc] = m
	}
	m[pb.LogicalPort] = pb
	x.dirty[pb.Vpc] = true
}

func (x *snatIndex) delPort(uuid string) {
	pb := x.portByUUID[uuid]
	if pb == nil {
		return
	}
	delete(x.portByUUID, uuid)
	if m := x.ports[pb.Vpc]; m[pb.LogicalPort] == pb {
		delete(m, pb.LogicalPort)
		if len(m) == 0 {
			delete(x.ports, pb.Vpc)
		}
	}
	x.dirty[pb.Vpc] = true
}

func (x *snatIndex) putBlock(b *sbdb.SNATBlock) {
	if old := x.blockByUUID[b.UUID]; old != nil {
		if old.Vpc == b.Vpc && old.LogicalPort == b.LogicalPort && old.Address == b.Address &&
			old.PortLo == b.PortLo && old.PortHi == b.PortHi {
			// southd's own write, echoed, or its chassis moved
			x.blockByUUID[b.UUID], x.blocks[b.Vpc][b.UUID] = b, b
			return
		}
		x.delBlock(b.UUID)
	}
	x.blockByUUID[b.UUID] = b
	m := x.blocks[b.Vpc]
	if m == nil {
		m = map[string]*sbdb.SNATBlock{}
		x.blocks[b.Vpc] = m
	}
	m[b.UUID] = b
	u := x.taken[b.Address]
	if u == nil {
		u = &portUnits{}
		x.taken[b.Address] = u
	}
	u.add(b.PortLo, max(b.PortLo, b.PortHi), 1)
	x.dirty[b.Vpc] = true
}

func (x *snatIndex) delBlock(uuid string) {
	b := x.blockByUUID[uuid]
	if b == nil {
		return
	}
	delete(x.blockByUUID, uuid)
	if m := x.blocks[b.Vpc]; m != nil {
		delete(m, uuid)
		if len(m) == 0 {
			delete(x.blocks, b.Vpc)
		}
	}
	x.taken[b.Address].add(b.PortLo, max(b.PortLo, b.PortHi), -1)
	x.dirty[b.Vpc] = true
}

// demand is how many blocks a binding asks for: one unless its host
// asks for more.
func demand(pb *sbdb.PortBinding) int {
	if pb.SNATDemand != nil && *pb.SNATDemand > 1 {
		return *pb.SNATDemand
	}
	return 1
}

// eligible: a port gets SNAT blocks unless it has an EIP (which covers
// it) or no address to translate.
func eligible(pb *sbdb.PortBinding) bool { return pb.Eip == nil && len(pb.IPs) > 0 }

// blockLess orders blocks by address (numerically), then first port.
func blockLess(a, b *sbdb.SNATBlock) bool {
	if a.Address != b.Address {
		return rules.AddrLess(a.Address, b.Address)
	}
	return a.PortLo < b.PortLo
}

// snatPlan is one VPC's pass: the blocks to free and to allocate (the
// index already shows them so), and what the VPC then holds.
type snatPlan struct {
	deletes, inserts []*sbdb.SNATBlock
	moves            []*sbdb.SNATBlock // kept blocks whose port moved (chassis, MAC or vxnet): where it is now
	short            map[string]int    // ports lacking blocks: how many
	shortBefore      map[string]int    // the same after the VPC's last pass
	used, total      int
	hasSNAT          bool
}

// allocate decides VPC v's blocks and applies the decision to the index.
// Each eligible port keeps up to its demand of the blocks it holds that
// are still valid (those sorting first); every other block of the VPC is
// freed. Then each port lacking its first block gets one, in name order,
// then each lacking more gets them, always the lowest free block
// (address, then port): the same rows give the same blocks.
func (x *snatIndex) allocate(v int) snatPlan {
	s := x.snats[v]
	p := snatPlan{short: map[string]int{}, shortBefore: x.short[v], hasSNAT: s != nil}
	defer func() {
		delete(x.dirty, v)
		if len(p.short) > 0 {
			x.short[v] = p.short
		} else {
			delete(x.short, v)
		}
	}()
	want := map[string]int{}
	var addrs []string
	if s != nil {
		for name, pb := range x.ports[v] {
			if eligible(pb) {
				want[name] = demand(pb)
			}
		}
		addrs = slices.Clone(s.Addresses)
		rules.SortAddrs(addrs)
		p.total = len(addrs) * rules.SNATBlocksPerAddress(s.BlockSize)
	}
	held := x.keep(v, s, addrs, want, &p)
	if s == nil {
		return p
	}
	names := make([]string, 0, len(want))
	for name := range want {
		names = append(names, name)
	}
	sort.Strings(names)
	x.fill(v, s, addrs, names, want, held, &p)
	x.follow(v, names, held, &p)
	for _, name := range names {
		p.used += len(held[name])
		if n := want[name] - len(held[name]); n > 0 {
			p.short[name] = n
		}
	}
	return p
}

// wake marks dirty the other VPCs with ports lacking blocks that could
// use blocks v freed: an address passing from one VPC to another is
// freed by the first after the second found it taken.
func (x *snatIndex) wake(v int, freed []*sbdb.SNATBlock) {
	for w := range x.short {
		if s := x.snats[w]; w != v && s != nil && slices.ContainsFunc(freed, func(b *sbdb.SNATBlock) bool {
			return slices.Contains(s.Addresses, b.Address)
		}) {
			x.dirty[w] = true
		}
	}
}

// keep frees every block of VPC v but those each eligible port keeps:
// up to its demand of its valid blocks, those sorting first. It returns
// the blocks kept, by port.
func (x *snatIndex) keep(v int, s *sbdb.SNAT, addrs []string, want map[string]int, p *snatPlan) map[string][]*sbdb.SNATBlock {
	held := map[string][]*sbdb.SNATBlock{}
	for _, b := range x.blocks[v] {
		if s != nil && want[b.LogicalPort] > 0 && slices.Contains(addrs, b.Address) && validBlock(b, s.BlockSize) {
			held[b.LogicalPort] = append(held[b.LogicalPort], b)
		} else {
			p.deletes = append(p.deletes, b)
		}
	}
	for port, bs := range held {
		sort.Slice(bs, func(i, j int) bool { return blockLess(bs[i], bs[j]) })
		if n := want[port]; len(bs) > n {
			p.deletes = append(p.deletes, bs[n:]...)
			held[port] = bs[:n]
		}
	}
	sort.Slice(p.deletes, func(i, j int) bool { return blockLess(p.deletes[i], p.deletes[j]) })
	for _, b := range p.deletes {
		x.freed[b.UUID] = true
		x.delBlock(b.UUID)
	}
	x.wake(v, p.deletes)
	return held
}

// fill gives the ports lacking blocks the lowest free ones: first every
// port without any its first, in name order, then further ones.
func (x *snatIndex) fill(v int, s *sbdb.SNAT, addrs, names []string, want map[string]int, held map[string][]*sbdb.SNATBlock, p *snatPlan) {
	next := x.cursor(addrs, s.BlockSize)
	for _, first := range []bool{true, false} {
		for _, name := range names {
			for len(held[name]) < want[name] && !(first && len(held[name]) > 0) {
				addr, lo, ok := next()
				if !ok {
					return
				}
				x.seq++
				b := &sbdb.SNATBlock{UUID: newBlockName(x.seq), Vpc: v, LogicalPort: name, Address: addr, PortLo: lo, PortHi: lo + s.BlockSize - 1}
				x.putBlock(b)
				p.inserts = append(p.inserts, b)
				held[name] = append(held[name], b)
			}
		}
	}
}

// follow keeps each held block's chassis, MAC and vxnet equal to its
// port's binding's: the host of the port monitors its blocks by chassis,
// and gateways send a block's traffic there, to that MAC in that vxnet's
// VNI. The index shows the change at once.
func (x *snatIndex) follow(v int, names []string, held map[string][]*sbdb.SNATBlock, p *snatPlan) {
	for _, name := range names {
		pb := x.ports[v][name]
		for i, b := range held[name] {
			if pb == nil || blockAt(b, pb) {
				continue
			}
			cp := *b
			cp.Chassis, cp.MAC, cp.Datapath = pb.Chassis, &pb.MAC, &pb.Datapath
			x.blockByUUID[cp.UUID], x.blocks[v][cp.UUID] = &cp, &cp
			held[name][i] = &cp
			if !slices.Contains(p.inserts, b) {
				p.moves = append(p.moves, &cp)
			} else {
				p.inserts[slices.Index(p.inserts, b)] = &cp
			}
		}
	}
}

// blockAt: a block says where its port is, as the binding does.
func blockAt(b *sbdb.SNATBlock, pb *sbdb.PortBinding) bool {
	return sameString(b.Chassis, pb.Chassis) && sameString(b.MAC, &pb.MAC) && sameString(b.Datapath, &pb.Datapath)
}

// newBlockName names a block allocated and not yet committed.
func newBlockName(seq int) string { return "new-" + strconv.Itoa(seq) }

// validBlock: b is an aligned block of size n within 1024–65535.
func validBlock(b *sbdb.SNATBlock, n int) bool {
	first, last := rules.SNATBlockRange(n)
	return b.PortLo%n == 0 && b.PortLo >= first && b.PortLo <= last && b.PortHi == b.PortLo+n-1
}

// cursor returns the free blocks of size n of addrs, lowest first. It
// only moves forward: within a pass blocks are freed before any is
// allocated, so the lowest free block never goes back.
func (x *snatIndex) cursor(addrs []string, n int) func() (string, int, bool) {
	first, last := rules.SNATBlockRange(n)
	ai, lo := 0, first
	return func() (string, int, bool) {
		for ; ai < len(addrs); ai, lo = ai+1, first {
			u := x.taken[addrs[ai]]
			for ; lo <= last; lo += n {
				if u == nil || u.free(lo, lo+n-1) {
					lo += n
					return addrs[ai], lo - n, true
				}
			}
		}
		return "", 0, false
	}
}
