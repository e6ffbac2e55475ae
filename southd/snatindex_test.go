package southd

import (
	"fmt"
	"math/rand"
	"slices"
	"sort"
	"testing"

	"github.com/courier-sdn/courier/northd/rules"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// snatWorld is a southbound of SNAT rows, bindings and blocks in memory,
// and an index that allocates over it as southd does: each pass's
// decisions commit (the blocks get UUIDs) and come back as the
// monitor's changes.
type snatWorld struct {
	x      *snatIndex
	snats  map[int]*sbdb.SNAT
	pbs    map[string]*sbdb.PortBinding // by logical port
	blocks map[string]*sbdb.SNATBlock   // by UUID
	seq    int
	// echoes are the monitor's reports of southd's own writes, not yet
	// delivered (the index took the writes when they committed)
	echoes []ops.Changes
}

func newSNATWorld() *snatWorld {
	return &snatWorld{x: newSNATIndex(), snats: map[int]*sbdb.SNAT{}, pbs: map[string]*sbdb.PortBinding{},
		blocks: map[string]*sbdb.SNATBlock{}}
}

func (w *snatWorld) uuid() string { w.seq++; return fmt.Sprintf("u%d", w.seq) }

func (w *snatWorld) setSNAT(vpc int, block int, addrs ...string) {
	s := &sbdb.SNAT{UUID: w.uuid(), Vpc: vpc, Network: "internet", Addresses: addrs, BlockSize: block}
	if old := w.snats[vpc]; old != nil {
		s.UUID = old.UUID
	}
	w.snats[vpc] = s
	w.x.putSNAT(s)
}

func (w *snatWorld) delSNAT(vpc int) {
	if s := w.snats[vpc]; s != nil {
		delete(w.snats, vpc)
		w.x.delSNAT(s.UUID)
	}
}

func (w *snatWorld) setPort(name string, vpc int, eip bool, demand int) {
	pb := &sbdb.PortBinding{UUID: w.uuid(), LogicalPort: name, Vpc: vpc, IPs: []string{"10.0.0.5"}}
	if old := w.pbs[name]; old != nil {
		pb.UUID = old.UUID
	}
	if eip {
		a := "203.0.113.99"
		pb.Eip = &a
	}
	if demand >= 0 {
		pb.SNATDemand = &demand
	}
	w.pbs[name] = pb
	w.x.putPort(pb)
}

func (w *snatWorld) delPort(name string) {
	if pb := w.pbs[name]; pb != nil {
		delete(w.pbs, name)
		w.x.delPort(pb.UUID)
	}
}

// pass allocates every dirty VPC and commits; it returns how many
// blocks were written.
func (w *snatWorld) pass() int {
	writes := 0
	for rounds := 0; len(w.x.dirty) > 0; rounds++ {
		if rounds > 10 {
			panic("allocation does not settle")
		}
		writes += w.round()
	}
	return writes
}

func (w *snatWorld) round() int {
	writes := 0
	for _, v := range sortedKeys(w.x.dirty) {
		p := w.x.allocate(v)
		echo := ops.Changes{Tables: map[string]map[string]*ops.Change{sbdb.SNATBlockTable: {}}}
		for _, b := range p.deletes {
			if w.blocks[b.UUID] == nil {
				panic("freed a block the database does not have: " + b.UUID)
			}
			echo.Tables[sbdb.SNATBlockTable][b.UUID] = &ops.Change{UUID: b.UUID, Old: w.blocks[b.UUID]}
			delete(w.blocks, b.UUID)
		}
		for _, b := range p.inserts {
			for _, o := range w.blocks {
				if o.Address == b.Address && o.PortLo == b.PortLo {
					panic(fmt.Sprintf("the index would refuse %+v: %+v holds it", b, o))
				}
			}
			u := w.uuid()
			w.x.committed(b, u)
			cp := *b
			cp.UUID = u
			w.blocks[u] = &cp
			echoed := cp
			echo.Tables[sbdb.SNATBlockTable][u] = &ops.Change{UUID: u, New: &echoed}
		}
		for _, b := range p.moves {
			if w.blocks[b.UUID] == nil {
				panic("moved a block the database does not have: " + b.UUID)
			}
			cp := *w.blocks[b.UUID]
			cp.Chassis, cp.MAC, cp.Datapath = b.Chassis, b.MAC, b.Datapath
			w.blocks[b.UUID] = &cp
			echoed := cp
			echo.Tables[sbdb.SNATBlockTable][b.UUID] = &ops.Change{UUID: b.UUID, New: &echoed}
		}
		if len(echo.Tables[sbdb.SNATBlockTable]) > 0 {
			w.echoes = append(w.echoes, echo)
		}
		writes += len(p.deletes) + len(p.inserts) + len(p.moves)
	}
	return writes
}

// deliver hands the index the oldest of the monitor's echoes.
func (w *snatWorld) deliver() {
	if len(w.echoes) > 0 {
		w.x.apply(w.echoes[0])
		w.echoes = w.echoes[1:]
	}
}

// check holds the southbound's blocks to the allocator's invariants.
func (w *snatWorld) check() error {
	held := map[string][]*sbdb.SNATBlock{}
	byAddr := map[string][]*sbdb.SNATBlock{}
	for _, b := range w.blocks {
		s, pb := w.snats[b.Vpc], w.pbs[b.LogicalPort]
		switch {
		case s == nil:
			return fmt.Errorf("block %+v of a VPC without SNAT", b)
		case !slices.Contains(s.Addresses, b.Address):
			return fmt.Errorf("block %+v on an address its VPC does not have (%v)", b, s.Addresses)
		case !validBlock(b, s.BlockSize):
			return fmt.Errorf("block %+v is not an aligned block of %d", b, s.BlockSize)
		case pb == nil || pb.Vpc != b.Vpc || !eligible(pb):
			return fmt.Errorf("block %+v of an ineligible port %+v", b, pb)
		}
		held[b.LogicalPort] = append(held[b.LogicalPort], b)
		byAddr[b.Address] = append(byAddr[b.Address], b)
	}
	for a, bs := range byAddr {
		sort.Slice(bs, func(i, j int) bool { return bs[i].PortLo < bs[j].PortLo })
		for i := 1; i < len(bs); i++ {
			if bs[i].PortLo <= bs[i-1].PortHi {
				return fmt.Errorf("blocks overlap on %s: %+v and %+v", a, bs[i-1], bs[i])
			}
		}
	}
	for name, pb := range w.pbs {
		s := w.snats[pb.Vpc]
		if s == nil || !eligible(pb) {
			continue
		}
		n := len(held[name])
		if n > demand(pb) {
			return fmt.Errorf("port %s holds %d blocks, wants %d", name, n, demand(pb))
		}
		if n < demand(pb) && w.freeBlock(s) != "" {
			return fmt.Errorf("port %s holds %d of %d blocks while %s is free", name, n, demand(pb), w.freeBlock(s))
		}
	}
	return nil
}

// freeBlock names a block of s free in the southbound, or "".
func (w *snatWorld) freeBlock(s *sbdb.SNAT) string {
	first, last := rules.SNATBlockRange(s.BlockSize)
	for _, a := range s.Addresses {
		for lo := first; lo <= last; lo += s.BlockSize {
			free := true
			for _, b := range w.blocks {
				if b.Address == a && b.PortLo <= lo+s.BlockSize-1 && lo <= b.PortHi {
					free = false
				}
			}
			if free {
				return fmt.Sprintf("%s:%d", a, lo)
			}
		}
	}
	return ""
}

func (w *snatWorld) blocksOf(port string) []string {
	var out []string
	for _, b := range w.blocks {
		if b.LogicalPort == port {
			out = append(out, fmt.Sprintf("%s:%d-%d", b.Address, b.PortLo, b.PortHi))
		}
	}
	sort.Strings(out)
	return out
}

// The lowest free block, first blocks before further ones, the blocks
// that sort last freed first, reuse of a freed block.
func TestSNATAllocateOrder(t *testing.T) {
	w := newSNATWorld()
	w.setSNAT(1, 1024, "203.0.113.10", "203.0.113.9")
	w.setPort("a", 1, false, 2)
	w.setPort("b", 1, false, -1)
	w.pass()
	for port, want := range map[string][]string{
		"a": {"203.0.113.9:1024-2047", "203.0.113.9:3072-4095"},
		"b": {"203.0.113.9:2048-3071"},
	} {
		if got := w.blocksOf(port); !slices.Equal(got, want) {
			t.Errorf("port %s: %v, want %v", port, got, want)
		}
	}
	w.setPort("a", 1, false, 1) // demand down: the last one goes
	w.pass()
	if got := w.blocksOf("a"); !slices.Equal(got, []string{"203.0.113.9:1024-2047"}) {
		t.Errorf("after demand 1: %v", got)
	}
	w.delPort("b")
	w.setPort("c", 1, false, 0)
	w.pass()
	if got := w.blocksOf("c"); !slices.Equal(got, []string{"203.0.113.9:2048-3071"}) {
		t.Errorf("a new port does not reuse the freed block: %v", got)
	}
	// Restarted: the same rows give no write.
	w.x = newSNATIndex()
	w.x.rebuild(maps(w.snats), mapsS(w.pbs), mapsS(w.blocks))
	if n := w.pass(); n != 0 {
		t.Errorf("a rebuilt index wrote %d blocks", n)
	}
}

func maps[K comparable, V any](m map[K]V) []V {
	out := make([]V, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

func mapsS[V any](m map[string]V) []V { return maps(m) }

// Random histories of SNAT rows, ports, EIPs, demands and moves: after
// every pass the blocks satisfy the invariants, and an index rebuilt
// from them (a restarted southd) writes nothing.
func TestSNATRandomHistories(t *testing.T) {
	addrs := []string{"203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.10"}
	for seed := int64(1); seed <= 200; seed++ {
		r := rand.New(rand.NewSource(seed))
		w := newSNATWorld()
		for step := 0; step < 60; step++ {
			for k := 0; k < 1+r.Intn(3); k++ {
				vpc := 1 + r.Intn(3)
				port := fmt.Sprintf("p%d", r.Intn(12))
				switch c := r.Intn(100); {
				case c < 15:
					n := 1 + r.Intn(2)
					start := r.Intn(len(addrs))
					var as []string
					for i := 0; i < n; i++ {
						as = append(as, addrs[(start+i)%len(addrs)])
					}
					w.setSNAT(vpc, []int{1024, 8192, 16384, 32768}[r.Intn(4)], as...)
				case c < 20:
					w.delSNAT(vpc)
				case c < 70:
					w.setPort(port, vpc, r.Intn(6) == 0, r.Intn(6)-1)
				default:
					w.delPort(port)
				}
			}
			w.pass()
			if err := w.check(); err != nil {
				t.Fatalf("seed %d step %d: %v", seed, step, err)
			}
			// The monitor echoes southd's writes late, some steps on.
			for r.Intn(2) == 0 && len(w.echoes) > 0 {
				w.deliver()
			}
		}
		for len(w.echoes) > 0 {
			w.deliver()
		}
		if n := w.pass(); n != 0 {
			t.Fatalf("seed %d: the monitor's echoes of southd's own writes made it write %d blocks", seed, n)
		}
		x := newSNATIndex()
		x.rebuild(maps(w.snats), mapsS(w.pbs), mapsS(w.blocks))
		w.x = x
		if n := w.pass(); n != 0 {
			t.Fatalf("seed %d: a rebuilt index wrote %d blocks", seed, n)
		}
	}
}

// A block says where its port is, as its binding does: its chassis, MAC
// and vxnet, written with the block, and again when the binding moves or
// the port's MAC changes, once.
func TestSNATBlocksFollowTheirPort(t *testing.T) {
	w := newSNATWorld()
	w.setSNAT(1, 1024, "203.0.113.50")
	w.setPort("vm1", 1, false, 2)
	set := func(c, mac string) {
		pb := *w.pbs["vm1"]
		pb.Chassis, pb.MAC, pb.Datapath = &c, mac, "dp-web"
		w.pbs["vm1"] = &pb
		w.x.putPort(&pb)
	}
	settle := func(what string, writes int) {
		t.Helper()
		if n := w.pass(); n != writes {
			t.Errorf("%s wrote %d blocks, want %d", what, n, writes)
		}
		for len(w.echoes) > 0 {
			w.deliver()
		}
		if n := w.pass(); n != 0 {
			t.Errorf("settled after %s, a pass wrote %d", what, n)
		}
	}
	where := func() []string {
		var out []string
		for _, b := range w.blocks {
			out = append(out, fmt.Sprintf("%s %s %s", deref(b.Chassis), deref(b.MAC), deref(b.Datapath)))
		}
		return out
	}
	check := func(want string) {
		t.Helper()
		if got := where(); len(got) != 2 || got[0] != want || got[1] != want {
			t.Errorf("blocks at %v, want both at %s", got, want)
		}
	}
	set("hv1", "02:00:00:00:00:05")
	settle("the first allocation", 2)
	check("hv1 02:00:00:00:00:05 dp-web")
	set("hv2", "02:00:00:00:00:05")
	settle("a move", 2)
	check("hv2 02:00:00:00:00:05 dp-web")
	set("hv2", "02:00:00:00:00:06")
	settle("a new MAC", 2)
	check("hv2 02:00:00:00:00:06 dp-web")
}

func deref(s *string) string {
	if s == nil {
		return "-"
	}
	return *s
}

// A block southd committed, and somebody deleted before the monitor
// delivered its insert, reaches the index as a delete within the same
// batch (newSBTracker), and its ports are free again.
func TestSNATBlockDeletedBeforeItsInsertCame(t *testing.T) {
	w := newSNATWorld()
	w.setSNAT(1, 1024, "203.0.113.1")
	w.setPort("p1", 1, false, 1024)
	if w.pass() == 0 || len(w.blocks) == 0 {
		t.Fatal("no block was allocated")
	}
	tr := newSBTracker(make(chan struct{}, 1))
	for u, b := range w.blocks {
		tr.OnAdd(sbdb.SNATBlockTable, b)
		tr.OnDelete(sbdb.SNATBlockTable, b)
		delete(w.blocks, u)
	}
	w.echoes = nil
	w.x.apply(tr.Drain())
	if n := len(w.x.blockByUUID); n != 0 {
		t.Errorf("the index holds %d blocks the southbound no longer has", n)
	}
}
