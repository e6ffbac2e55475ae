package southd

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// Liveness is judged from what this southd has seen itself, on its own
// clock: a chassis is dead when its heartbeat has not changed for
// DeadAfter while the southbound was answering. Heartbeats cannot change
// while the southbound is down, frozen or busy with a long commit, so
// such a stretch must not count against anyone:
//
//   - a new session (southd started, or reconnected after an outage)
//     starts from nothing: every chassis gets DeadAfter from the moment
//     southd first sees it;
//   - southd echoes the southbound every Tick; while no echo has come
//     back for a few ticks, it judges nothing and decides nothing, and
//     when echoes come back every chassis gets DeadAfter again.
//
// Without this, a southbound outage longer than DeadAfter declared every
// chassis dead when it ended, removed every hub, and the hubs told every
// sender to forget its learned paths.

type beat struct {
	value int
	at    time.Time
}

// liveness is the state of those judgments.
type liveness struct {
	seen map[string]beat
	// answered is when the southbound last answered an echo (unix ns).
	answered atomic.Int64
	stalled  bool
}

// restart forgets everything seen: a new session begins.
func (l *liveness) restart() {
	l.seen = map[string]beat{}
	l.stalled = false
	l.answered.Store(time.Now().UnixNano())
}

// staleAfter is how long without an answer suspends judgments.
func (d *Daemon) staleAfter() time.Duration { return max(4*d.cfg.Tick, 500*time.Millisecond) }

// echoes probes the southbound every tick until ctx ends, recording when
// it last answered.
func (d *Daemon) echoes(ctx context.Context, sb *ops.Session) {
	t := time.NewTicker(d.cfg.Tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ectx, cancel := context.WithTimeout(ctx, d.staleAfter())
		if err := sb.Echo(ectx); err == nil {
			d.live.answered.Store(time.Now().UnixNano())
		}
		cancel()
	}
}

// judgeLiveness updates when each chassis's heartbeat last changed and
// returns which chassis are alive now, or ok false while the southbound's
// view is stale (nothing may be decided from it).
func (d *Daemon) judgeLiveness(sb *ops.Session) (alive map[string]bool, ok bool) {
	now := time.Now()
	l := &d.live
	silent := now.Sub(time.Unix(0, l.answered.Load()))
	if silent > d.staleAfter() {
		if !l.stalled {
			l.stalled = true
			d.m.stalls.Inc()
			d.log.Warn("the southbound is not answering; liveness judgments suspended", "silent", silent.Round(time.Millisecond))
		}
		return nil, false
	}
	if l.stalled {
		l.stalled = false
		for name, b := range l.seen {
			l.seen[name] = beat{value: b.value, at: now}
		}
		d.log.Info("the southbound answers again; every chassis has dead-after to beat", "dead_after", d.cfg.DeadAfter)
	}
	alive = map[string]bool{}
	for _, p := range ops.Rows[sbdb.ChassisPrivate](sb) {
		b, ok := l.seen[p.Name]
		if !ok || b.value != p.Heartbeat {
			// A chassis first seen now is presumed alive for one
			// timeout, so a southd restart declares nobody dead.
			b = beat{value: p.Heartbeat, at: now}
			l.seen[p.Name] = b
		}
		alive[p.Name] = now.Sub(b.at) < d.cfg.DeadAfter
	}
	for name := range l.seen {
		if _, ok := alive[name]; !ok {
			delete(l.seen, name)
		}
	}
	return alive, true
}

// unjudged names the chassis of privs that alive does not judge: their
// Chassis_Private rows reached the session's cache after judgeLiveness
// read it (libovsdb updates the cache on its own goroutine). Each pass
// leaves them as they are, neither dead nor alive, until the next one
// judges them; a chassis first seen is presumed alive then.
func unjudged(privs []*sbdb.ChassisPrivate, alive map[string]bool) map[string]bool {
	out := map[string]bool{}
	for _, p := range privs {
		if _, ok := alive[p.Name]; !ok {
			out[p.Name] = true
		}
	}
	return out
}
