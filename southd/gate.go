package southd

import (
	"time"

	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// A decision pass reads every binding, learned binding and port: at
// 64,000 ports, a tenth of a second and a few hundred MB of garbage. It
// used to run on every tick (4 a second) and on every heartbeat of every
// chassis, which change nothing it decides from: an idle southd of a
// 64,000-port VPC used 60% of a core. Now a pass runs when what it
// decides from may have changed: a row other than a heartbeat, which
// chassis are alive, whether this instance holds the lock, a pass that
// failed; and every safetyPass anyway, for what ages with time alone
// (learned bindings).

// safetyPass is the longest southd goes without a decision pass.
const safetyPass = 5 * time.Second

// fullPass is the longest it goes without one that reads every binding
// and port (pass.go): at 256,000 ports, a full pass every safetyPass
// kept an idle southd at 17.5% of a core. What ages with time alone
// (learned bindings) is judged against every binding whenever there
// are some, full pass or not.
const fullPass = time.Minute

// worthDeciding says whether a batch of southbound changes may change a
// decision: any change but a chassis's heartbeat counting up.
func worthDeciding(ch ops.Changes) bool {
	if ch.Overflow {
		return true
	}
	for table, rows := range ch.Tables {
		if table != sbdb.ChassisPrivateTable {
			return true
		}
		for _, c := range rows {
			o, ok1 := c.Old.(*sbdb.ChassisPrivate)
			n, ok2 := c.New.(*sbdb.ChassisPrivate)
			if !ok1 || !ok2 {
				return true // inserted or deleted
			}
			a, b := *o, *n
			a.Heartbeat, b.Heartbeat = 0, 0
			if !a.Equals(&b) {
				return true
			}
		}
	}
	return false
}

// passGate remembers what the last decision pass was made from.
type passGate struct {
	pending bool // a change since, or the last pass failed
	alive   map[string]bool
	active  bool
	at      time.Time
	full    time.Time // of the last full pass that succeeded
}

// due says whether a pass must run now, given who is alive and whether
// this instance holds the lock.
func (g *passGate) due(now time.Time, alive map[string]bool, active bool, every time.Duration) bool {
	return g.pending || g.at.IsZero() || active != g.active || !sameAlive(alive, g.alive) || now.Sub(g.at) >= every
}

// whole says whether the pass due must read every binding and port
// (pass.go): which chassis are alive or whether this instance holds the
// lock changed, or the last full pass is fullPass old.
func (g *passGate) whole(now time.Time, alive map[string]bool, active bool, every time.Duration) bool {
	return g.full.IsZero() || active != g.active || !sameAlive(alive, g.alive) || now.Sub(g.full) >= every
}

// done records a pass made at now; a failed one is due again.
func (g *passGate) done(now time.Time, alive map[string]bool, active, full bool, err error) {
	g.pending, g.alive, g.active, g.at = err != nil, alive, active, now
	if full && err == nil {
		g.full = now
	}
}

func sameAlive(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
