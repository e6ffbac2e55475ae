package southd

import (
	"context"
	"fmt"
	"sort"
	"strconv"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/ops/sbops"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// SNAT port blocks (issue #15). northd writes one SNAT row per VPC with
// SNAT (its addresses and block size); southd gives every port of the
// VPC without an EIP blocks of ports of those addresses (SNAT_Block),
// and the port's host translates its new connections within them. A
// block is a runtime resource, like a hub or a grant, so it is decided
// here, once, from the southbound alone: a restarted or newly active
// southd reads the blocks back and moves none of them. The schema's
// index on (address, port_lo) refuses a block given twice, so a write
// decided from rows the monitor had not shown yet fails whole, and the
// next pass decides again from fresh rows.

// maxSNATOps bounds one transaction of block writes; a bulk allocation
// is split (a VPC's frees always go before the allocations that reuse
// them, in the same or an earlier transaction).
const maxSNATOps = 4096

// allocateSNAT writes the blocks of every VPC whose SNAT, ports or
// blocks changed since the last pass.
func (d *Daemon) allocateSNAT(ctx context.Context) error {
	x := d.snat
	var txn []ovsdb.Operation
	var inserted []*sbdb.SNATBlock // with their operations' indexes in txn
	var at []int
	flush := func() error {
		if len(txn) == 0 {
			return nil
		}
		res, err := ops.Transact(ctx, d.lock, txn...)
		if err != nil {
			x.stale = true
			return fmt.Errorf("write SNAT blocks: %w", err)
		}
		for i, b := range inserted {
			x.committed(b, res[at[i]].UUID.GoUUID)
		}
		d.m.snatWrites.Add(float64(len(txn)))
		txn, inserted, at = txn[:0], inserted[:0], at[:0]
		return nil
	}
	// A VPC that frees blocks another lacks wakes it (snatIndex.wake):
	// that one is allocated again in the same pass, after.
	for len(x.dirty) > 0 {
		for _, v := range sortedKeys(x.dirty) {
			p := x.allocate(v)
			d.reportSNAT(v, p)
			for _, b := range p.deletes {
				txn = append(txn, sbops.DeleteSNATBlock(b.UUID))
			}
			for _, b := range p.inserts {
				at = append(at, len(txn))
				inserted = append(inserted, b)
				txn = append(txn, sbops.InsertSNATBlock(&sbdb.SNATBlock{Vpc: b.Vpc, LogicalPort: b.LogicalPort,
					Address: b.Address, PortLo: b.PortLo, PortHi: b.PortHi, Chassis: b.Chassis, MAC: b.MAC, Datapath: b.Datapath}))
			}
			for _, b := range p.moves {
				txn = append(txn, sbops.SetSNATBlockWhere(b))
			}
			if len(txn) >= maxSNATOps {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	return flush()
}

func sortedKeys(m map[int]bool) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Ints(out)
	return out
}

// committed renames a block allocated in a committed transaction after
// the row the database made: the monitor's echo of it is then known.
func (x *snatIndex) committed(b *sbdb.SNATBlock, uuid string) {
	if x.blockByUUID[b.UUID] != b {
		return
	}
	cp := *b
	cp.UUID = uuid
	delete(x.blockByUUID, b.UUID)
	delete(x.blocks[b.Vpc], b.UUID)
	x.blockByUUID[uuid] = &cp
	x.blocks[b.Vpc][uuid] = &cp
}

// reportSNAT logs and counts what a VPC's pass changed: a port that
// starts lacking blocks (its VPC's addresses are exhausted) once, and
// once again when it has them all; the VPC's blocks in use and in all.
func (d *Daemon) reportSNAT(v int, p snatPlan) {
	vpc, before := strconv.Itoa(v), p.shortBefore
	for port, n := range p.short {
		if before[port] == 0 {
			d.log.Warn("SNAT blocks exhausted: a port lacks blocks", "vpc", v, "port", port, "lacking", n, "in_use", p.used, "blocks", p.total)
			d.m.snatExhausted.Inc()
		}
	}
	for port := range before {
		if _, ok := p.short[port]; !ok {
			d.log.Info("SNAT: a port that lacked blocks lacks none now", "vpc", v, "port", port)
		}
	}
	if !p.hasSNAT {
		d.m.snatUsed.DeleteLabelValues(vpc)
		d.m.snatTotal.DeleteLabelValues(vpc)
		return
	}
	d.m.snatUsed.WithLabelValues(vpc).Set(float64(p.used))
	d.m.snatTotal.WithLabelValues(vpc).Set(float64(p.total))
}

// syncSNATIndex brings the index up to the monitor: the changes drained
// since the last pass, or, after a failed write, every row again.
func (d *Daemon) syncSNATIndex(sb *ops.Session, ch ops.Changes) {
	if !d.snat.stale && !ch.Overflow {
		d.snat.apply(ch)
		return
	}
	d.snat.rebuild(ops.Rows[sbdb.SNAT](sb), ops.Rows[sbdb.PortBinding](sb), ops.Rows[sbdb.SNATBlock](sb))
}
