package hostd

import (
	"context"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sort"
	"time"

	"github.com/courier-sdn/courier/dataplane"
	"github.com/courier-sdn/courier/northd/rules"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/ops/sbops"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// SNAT on a host. A local port without an EIP, in a VPC with a SNAT row,
// is translated by the DVR within the port blocks southd allocated to it
// (SNAT_Block rows whose chassis is this one, monitored by the base
// session). This host sizes what it asks for by use: every snatTick it
// reads how many connections each port mapped (the data plane's
// counters) and asks for blocks enough to stay under half full
// (Port_Binding.snat_demand), at once when a connection found no free
// port; every snatGCEvery it removes idle connections, and gives blocks
// back only when a port has none left.

// DefaultSNATPortQuota is a port's share of the host's SNAT table
// (262,144 connections): eight ports at their quota fill it.
const DefaultSNATPortQuota = 32768

const (
	snatTick    = 100 * time.Millisecond
	snatGCEvery = 10 * time.Second
	maxDemand   = 64 // SNAT_MAX_BLOCKS, the schema's snat_demand
)

// netNumbers numbers external networks by name, in name order, for the
// data plane's gateway table.
func netNumbers(names map[string]bool) map[string]uint32 {
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	out := map[string]uint32{}
	for i, n := range sorted {
		out[n] = uint32(i + 1)
	}
	return out
}

// snatOf is the SNAT row a local port is translated by, or nil: its VPC
// has one, and the port has no EIP and an address.
func snatOf(s *snapshot, pb *sbdb.PortBinding) *sbdb.SNAT {
	if pb.Eip != nil || len(pb.IPs) == 0 {
		return nil
	}
	return s.snat[pb.Vpc]
}

// snatBlocks are a port's blocks that fit its VPC's SNAT row (an address
// of the row, the row's size), in the order this host first saw them
// (seen, by row UUID), then (address, port): a new block goes last, and
// the data plane reaches it only after the older ones, by when the
// gateways know it too.
func snatBlocks(sn *sbdb.SNAT, rows []*sbdb.SNATBlock, seen map[string]int) []dataplane.SNATBlock {
	type block struct {
		b   dataplane.SNATBlock
		seq int
	}
	var bs []block
	for _, b := range rows {
		a, err := netip.ParseAddr(b.Address)
		if err != nil || b.Vpc != sn.Vpc || !slices.Contains(sn.Addresses, b.Address) || b.PortHi-b.PortLo+1 != sn.BlockSize {
			continue
		}
		bs = append(bs, block{dataplane.SNATBlock{Addr: a, Lo: uint16(b.PortLo)}, seen[b.UUID]})
	}
	sort.Slice(bs, func(i, j int) bool {
		if bs[i].seq != bs[j].seq {
			return bs[i].seq < bs[j].seq
		}
		if c := bs[i].b.Addr.Compare(bs[j].b.Addr); c != 0 {
			return c < 0
		}
		return bs[i].b.Lo < bs[j].b.Lo
	})
	out := make([]dataplane.SNATBlock, 0, len(bs))
	for _, b := range bs {
		out = append(out, b.b)
	}
	if len(out) > maxDemand {
		out = out[:maxDemand]
	}
	return out
}

// localSNAT adds the local ports translated by SNAT to st, their
// networks numbered by nets.
func localSNAT(s *snapshot, st *dataplane.State, nets map[string]uint32) {
	for _, pb := range s.ports {
		sn := snatOf(s, pb)
		if sn == nil || !holding(s.chassis, s.ifaces, pb) { // activation.go
			continue
		}
		addr, err := netip.ParseAddr(pb.IPs[0])
		if err != nil {
			continue
		}
		st.SNATPorts = append(st.SNATPorts, dataplane.SNATPort{Ifindex: s.ifaces[pb.LogicalPort], VPC: uint32(pb.Vpc), Addr: addr,
			Network: nets[sn.Network], BlockSize: sn.BlockSize, Blocks: snatBlocks(sn, s.blocks[pb.LogicalPort], s.blockSeen)})
	}
}

// gatewaySNAT adds to g the blocks of its networks' SNAT addresses whose
// port is bound, where the port is.
func gatewaySNAT(g *dataplane.Gateway, cfg *GatewayConfig, snat []*sbdb.SNAT, blocks []*sbdb.SNATBlock,
	dps map[string]*sbdb.Datapath, encap map[string]netip.Addr, via map[string]netip.Addr) {
	size := map[string]int{}       // SNAT address -> block size, for the networks served
	hop := map[string]netip.Addr{} // SNAT address -> its network's next hop
	for _, sn := range snat {
		if slices.Contains(cfg.Networks, sn.Network) {
			for _, a := range sn.Addresses {
				size[a] = sn.BlockSize
				hop[a] = via[sn.Network]
			}
		}
	}
	for _, b := range blocks {
		// a block written before schema 1.8.0 says where its port is
		// once southd has filled its MAC and vxnet in
		if size[b.Address] != b.PortHi-b.PortLo+1 || b.Chassis == nil || b.MAC == nil || b.Datapath == nil {
			continue
		}
		vtep, ok := encap[*b.Chassis]
		dp := dps[*b.Datapath]
		addr, err := netip.ParseAddr(b.Address)
		mac, merr := net.ParseMAC(*b.MAC)
		gw, gerr := net.ParseMAC(rules.GatewayMAC(b.Vpc))
		if !ok || dp == nil || err != nil || merr != nil || gerr != nil {
			continue
		}
		g.SNAT = append(g.SNAT, dataplane.GatewaySNAT{Addr: addr, Lo: uint16(b.PortLo), BlockSize: b.PortHi - b.PortLo + 1,
			VTEP: vtep, VNI: uint32(dp.TunnelKey), MAC: mac, GwMAC: gw, NextHop: hop[b.Address]})
	}
}

// snatDemand is what hostd knows of a port's use between two sweeps.
type snatDemand struct {
	live    int    // connections at the last sweep
	allocs  uint64 // the data plane's count then
	fails   uint64 // its count of failures when last read
	swept   bool
	seeded  bool // allocs and fails start from the counters as first read
	asked   int  // what was last asked, so as not to ask twice
	askedAt time.Time
}

// SNATUser is what hostd needs of the data plane for SNAT: Dataplane's
// implementation has it, a fake may not.
type SNATUser interface {
	SNATUses() (map[int]dataplane.SNATUse, error)
	SNATGC(t dataplane.SNATTimeouts) (dataplane.SNATGCStats, error)
	SetSNATQuotas(q map[int]uint64) error
}

// snatUpkeep sweeps idle connections now and then, and asks for the
// blocks each local SNAT port needs.
func (d *Daemon) snatUpkeep(ctx context.Context) {
	d.snatMu.Lock()
	defer d.snatMu.Unlock()
	du, uses, ok := d.snatUses()
	if !ok {
		return
	}
	if time.Since(d.snatSwept) >= snatGCEvery {
		d.sweepSNAT(du, uses)
	}
	d.setQuotas(du, uses)
	for ifindex, pb := range d.snatPorts {
		if want, ok := d.snatWant(ifindex, pb, uses[ifindex]); ok {
			d.askBlocks(ctx, pb, want)
		}
	}
	for ifindex := range d.snatState {
		if _, ok := d.snatPorts[ifindex]; !ok {
			delete(d.snatState, ifindex)
		}
	}
}

// snatUses reads the local SNAT ports' use, if there are any.
func (d *Daemon) snatUses() (SNATUser, map[int]dataplane.SNATUse, bool) {
	du, ok := d.dp.(SNATUser)
	if !ok || len(d.snatPorts) == 0 {
		return nil, nil, false
	}
	if d.snatState == nil {
		d.snatState = map[int]*snatDemand{}
	}
	uses, err := du.SNATUses()
	if err != nil {
		d.log.Warn("read SNAT use", "err", err)
		return nil, nil, false
	}
	return du, uses, true
}

// sweepSNAT forgets idle connections and counts the live ones per port,
// from which demand and quotas are computed until the next sweep.
func (d *Daemon) sweepSNAT(du SNATUser, uses map[int]dataplane.SNATUse) {
	d.snatSwept = time.Now()
	st, err := du.SNATGC(d.cfg.SNATTimeouts)
	if err != nil {
		d.log.Warn("SNAT sweep", "err", err)
	}
	if st.Removed > 0 {
		d.log.Debug("forgot idle SNAT connections", "n", st.Removed)
	}
	for ifindex := range d.snatPorts {
		ds := d.demandOf(ifindex)
		ds.live, ds.allocs, ds.swept = st.Live[ifindex], uses[ifindex].Allocs, err == nil
	}
	d.snatQuota = nil // every port's quota again, from what the sweep counted
}

// keepSNAT sweeps and sets quotas when the main loop has not for a while:
// while the southbound is down the loop does not run, and the data plane
// goes on translating (the ports it knew stay as they were). Asking for
// blocks needs the southbound, and waits for it.
func (d *Daemon) keepSNAT(ctx context.Context) {
	t := time.NewTicker(snatGCEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		d.sweepIfStale()
	}
}

// sweepIfStale sweeps and sets quotas if the main loop has not swept for
// two of its periods.
func (d *Daemon) sweepIfStale() {
	d.snatMu.Lock()
	defer d.snatMu.Unlock()
	if time.Since(d.snatSwept) < 2*snatGCEvery {
		return
	}
	if du, uses, ok := d.snatUses(); ok {
		d.log.Debug("sweeping SNAT connections outside the main loop (no southbound session)")
		d.sweepSNAT(du, uses)
		d.setQuotas(du, uses)
	}
}

// setQuotas gives each local SNAT port its share of the host's table: it
// may map as many new connections as the quota less the live ones the
// last sweep counted (a port new since: the whole quota), until the next
// sweep. Written only when a port's quota changes.
func (d *Daemon) setQuotas(du SNATUser, uses map[int]dataplane.SNATUse) {
	limit := d.cfg.SNATPortQuota
	if limit <= 0 {
		return
	}
	want := map[int]uint64{}
	for ifindex := range d.snatPorts {
		q, ok := d.snatQuota[ifindex]
		if !ok {
			ds := d.demandOf(ifindex)
			q = uses[ifindex].Allocs + uint64(max(0, limit-ds.live))
		}
		want[ifindex] = q
	}
	if maps.Equal(want, d.snatQuota) {
		return
	}
	if err := du.SetSNATQuotas(want); err != nil {
		d.log.Warn("set SNAT quotas", "err", err)
		return
	}
	d.snatQuota = want
}

func (d *Daemon) demandOf(ifindex int) *snatDemand {
	ds := d.snatState[ifindex]
	if ds == nil {
		ds = &snatDemand{}
		d.snatState[ifindex] = ds
	}
	return ds
}

// snatWant is the blocks a port should ask for now, if that differs from
// what it holds or asked: enough that its connections fill at most half
// of them; one more than it has when a connection just failed; back to
// one once a sweep found it idle.
func (d *Daemon) snatWant(ifindex int, pb *sbdb.PortBinding, u dataplane.SNATUse) (int, bool) {
	ds := d.demandOf(ifindex)
	if !ds.seeded {
		// The counters are the data plane's, pinned: what they held
		// before this hostd (a restart) is no new use or failure.
		ds.allocs, ds.fails, ds.seeded = u.Allocs, u.Fails, true
	}
	size := d.snatSize[ifindex]
	if size == 0 {
		return 0, false
	}
	have := 1
	if pb.SNATDemand != nil {
		have = max(1, *pb.SNATDemand)
	}
	used := ds.live + int(u.Allocs-min(u.Allocs, ds.allocs))
	want := max(1, (2*used+size-1)/size)
	if u.Fails > ds.fails {
		want = max(want, d.snatHeld[ifindex]+1)
	}
	ds.fails = u.Fails
	want = min(want, maxDemand)
	if want < have && !(ds.swept && used == 0) {
		want = have // blocks are given back only by an idle port
	}
	if want == have || (want == ds.asked && time.Since(ds.askedAt) < time.Second) {
		return 0, false
	}
	ds.asked, ds.askedAt = want, time.Now()
	return want, true
}

func (d *Daemon) askBlocks(ctx context.Context, pb *sbdb.PortBinding, n int) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := d.guarded(cctx, sbops.SetSNATDemand(pb, n)); err != nil {
		d.log.Warn("ask for SNAT blocks", "port", pb.LogicalPort, "blocks", n, "err", err)
		return
	}
	d.m.snatDemand.Inc()
	d.log.Info("asked for SNAT blocks", "port", pb.LogicalPort, "blocks", n)
}

// noteSNAT records, after a reconcile, the local ports translated by SNAT
// (by ifindex) with their binding, block size and blocks held.
func (d *Daemon) noteSNAT(s *snapshot, st *dataplane.State) {
	d.snatMu.Lock()
	defer d.snatMu.Unlock()
	d.snatPorts, d.snatSize, d.snatHeld = map[int]*sbdb.PortBinding{}, map[int]int{}, map[int]int{}
	byName := map[string]*sbdb.PortBinding{}
	for _, pb := range s.ports {
		byName[pb.LogicalPort] = pb
	}
	for _, p := range st.SNATPorts {
		if pb := byName[d.byIndex[p.Ifindex]]; pb != nil {
			d.snatPorts[p.Ifindex] = pb
		}
		d.snatSize[p.Ifindex] = p.BlockSize
		d.snatHeld[p.Ifindex] = len(p.Blocks)
	}
}

// snatRows reads the base session's SNAT rows (by VPC) and this host's
// blocks (by port), numbering blocks in the order they first appeared.
func (d *Daemon) snatRows() (map[int]*sbdb.SNAT, map[string][]*sbdb.SNATBlock) {
	snat, blocks := readSNAT(d.base)
	seen := make(map[string]int, len(d.blockSeen))
	for _, bs := range blocks {
		for _, b := range bs {
			if n, ok := d.blockSeen[b.UUID]; ok {
				seen[b.UUID] = n
			} else {
				d.blockSeq++
				seen[b.UUID] = d.blockSeq
			}
		}
	}
	d.blockSeen = seen
	return snat, blocks
}

// readSNAT reads the VPCs' SNAT rows, by VPC, and this host's ports'
// blocks, by port.
func readSNAT(base *ops.Session) (map[int]*sbdb.SNAT, map[string][]*sbdb.SNATBlock) {
	snat := map[int]*sbdb.SNAT{}
	for _, sn := range ops.Rows[sbdb.SNAT](base) {
		snat[sn.Vpc] = sn
	}
	blocks := map[string][]*sbdb.SNATBlock{}
	for _, b := range ops.Rows[sbdb.SNATBlock](base) {
		blocks[b.LogicalPort] = append(blocks[b.LogicalPort], b)
	}
	return snat, blocks
}
