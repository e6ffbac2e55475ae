package southd

import (
	"context"
	"fmt"
	"time"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/ops/sbops"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// Stale SNAT handoffs (#15). A live-migrated port's old host writes its
// SNAT connections into SNAT_Handoff rows for the new host, which
// installs and deletes them (hostd/snathandoff.go); either end deletes a
// row it has seen for two minutes. A row neither end will ever act on
// stays: its destination is gone (deleted, or dead for good) or both
// ends are, or its port was deleted. southd, which knows which chassis
// are alive and which ports exist, removes those:
//
//   - no_port: its port has no binding any more;
//   - destination_gone: its destination has no Chassis_Private row, or
//     has been dead for HandoffDeadFor (nobody left to install it; a
//     destination back sooner installs it as usual);
//   - aged: southd has seen it for HandoffMaxAge, far beyond the two
//     minutes a live end waits.
//
// Rows are judged at every decision pass, so at most safetyPass after
// they become stale. A row whose source alone is gone stays: its destination installs or
// expires it itself, and the connections are still good (the blocks
// followed the port). Ages and deaths are measured on southd's own
// clock from when this session first saw them, like liveness: a
// restarted southd gives every row its full time again, never less.
// southd monitors the rows without their connections (up to 4,096 a
// row): it reads only who and what a row is for.

// handoffAging is what southd remembers of handoff rows and dead chassis
// in one session.
type handoffAging struct {
	seen      map[string]time.Time // rows by UUID: first seen
	deadSince map[string]time.Time // chassis judged dead: since when
}

func newHandoffAging() handoffAging {
	return handoffAging{seen: map[string]time.Time{}, deadSince: map[string]time.Time{}}
}

// Why a handoff row is stale (courier_southd_snat_handoffs_removed_total).
const (
	handoffNoPort   = "no_port"
	handoffDestGone = "destination_gone"
	handoffAged     = "aged"
)

// handoffEnds is what staleHandoff needs to know of a row's world.
type handoffEnds struct {
	portExists bool
	// toKnown: the destination has a Chassis_Private row; toDead: how
	// long it has been judged dead (0: alive, or dead just now)
	toKnown bool
	toDead  time.Duration
	age     time.Duration // since southd first saw the row
}

// staleHandoff says why a row is stale, or "" if an end may still act on
// it.
func staleHandoff(e handoffEnds, deadFor, maxAge time.Duration) string {
	switch {
	case !e.portExists:
		return handoffNoPort
	case !e.toKnown || e.toDead >= deadFor:
		return handoffDestGone
	case e.age >= maxAge:
		return handoffAged
	}
	return ""
}

// staleRow is a handoff row to remove, and why.
type staleRow struct {
	h   *sbdb.SNATHandoff
	why string
}

// judge ages the handoff rows hs and says which are stale. privs is read
// after hs and alive: a destination whose Chassis_Private row came after
// the judgment is known and not dead yet (the next pass judges it), so a
// handoff to a host that has just registered is not taken for one to a
// host that never was. bound says whether a port has a binding.
func (a *handoffAging) judge(now time.Time, hs []*sbdb.SNATHandoff, privs []*sbdb.ChassisPrivate, alive map[string]bool,
	bound func(port string) bool, deadFor, maxAge time.Duration) []staleRow {
	for c, live := range alive {
		if _, dead := a.deadSince[c]; !live && !dead {
			a.deadSince[c] = now
		} else if live {
			delete(a.deadSince, c)
		}
	}
	for c := range a.deadSince {
		if _, ok := alive[c]; !ok {
			delete(a.deadSince, c)
		}
	}
	newcomers := unjudged(privs, alive)
	seen := map[string]time.Time{}
	var out []staleRow
	for _, h := range hs {
		first, ok := a.seen[h.UUID]
		if !ok {
			first = now
		}
		seen[h.UUID] = first
		e := handoffEnds{age: now.Sub(first), portExists: bound(h.LogicalPort)}
		_, e.toKnown = alive[h.ToChassis]
		e.toKnown = e.toKnown || newcomers[h.ToChassis]
		if since, dead := a.deadSince[h.ToChassis]; dead {
			e.toDead = now.Sub(since)
		}
		if w := staleHandoff(e, deadFor, maxAge); w != "" {
			out = append(out, staleRow{h, w})
		}
	}
	a.seen = seen
	return out
}

// expireHandoffs deletes the stale SNAT_Handoff rows, in one transaction
// of its own (a handoff must not hold back liveness or blocks).
func (d *Daemon) expireHandoffs(ctx context.Context, sb *ops.Session, alive map[string]bool) error {
	now := time.Now()
	a := &d.handoffs
	hs := ops.Rows[sbdb.SNATHandoff](sb)
	bound := func(port string) bool { return ops.RowByIndex(sb, &sbdb.PortBinding{LogicalPort: port}) != nil }
	stale := a.judge(now, hs, ops.Rows[sbdb.ChassisPrivate](sb), alive, bound, d.cfg.HandoffDeadFor, d.cfg.HandoffMaxAge)
	if len(stale) == 0 {
		return nil
	}
	txn := make([]ovsdb.Operation, len(stale))
	for i, s := range stale {
		txn[i] = sbops.DeleteSNATHandoff(s.h.UUID)
	}
	res, err := ops.Transact(ctx, d.lock, txn...)
	if err != nil {
		return fmt.Errorf("remove stale SNAT handoffs: %w", err)
	}
	for i, s := range stale {
		if res[i].Count == 0 {
			continue // removed by the last pass or an end; the monitor lags
		}
		h := s.h
		d.m.handoffsRemoved.WithLabelValues(s.why).Inc()
		d.log.Info("removed a stale SNAT handoff", "port", h.LogicalPort, "from", h.FromChassis, "to", h.ToChassis,
			"why", s.why, "seen_for", now.Sub(a.seen[h.UUID]).Round(time.Millisecond))
		delete(a.seen, h.UUID)
	}
	return nil
}
