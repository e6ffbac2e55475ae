package ops

import (
	"sync"

	"github.com/ovn-kubernetes/libovsdb/model"
)

// Change is the latest known state of one row since the last Drain: New is
// nil when the row was deleted, Old is the row before the first change in
// the batch (nil when the row was inserted during it).
type Change struct {
	UUID string
	Old  model.Model
	New  model.Model
}

// Changes are a drained batch: per table, per row UUID.
type Changes struct {
	Tables map[string]map[string]*Change
	// Overflow is true when libovsdb dropped an event while this batch was
	// collected: the batch is incomplete and the consumer must rebuild
	// from the cache.
	Overflow bool
	// KeepBrief keeps a row inserted and deleted within the batch, as a
	// delete whose Old is the inserted row, instead of dropping it: a
	// consumer that took the row when its own write committed (northd's
	// southbound view) must hear that somebody deleted it before the
	// insert was even delivered. Merge keeps them if either side does.
	KeepBrief bool
}

// Table returns the changes to one table (nil if none).
func (c *Changes) Table(name string) map[string]*Change { return c.Tables[name] }

// Empty reports whether nothing changed.
func (c *Changes) Empty() bool { return len(c.Tables) == 0 && !c.Overflow }

// Tracker is a libovsdb cache event handler that coalesces row changes
// until the consumer drains them. Its handlers only take a mutex and write
// a map, so libovsdb's bounded event queue keeps draining.
type Tracker struct {
	mu      sync.Mutex
	pending Changes
	notify  chan struct{}
	// KeepBrief: the batches this tracker drains keep rows inserted and
	// deleted within them (Changes.KeepBrief); set before use.
	KeepBrief bool
}

// NewTracker returns an empty tracker.
func NewTracker() *Tracker {
	return &Tracker{notify: make(chan struct{}, 1)}
}

// NewTrackerNotifying returns a tracker that signals ch, which several
// trackers may share, instead of a channel of its own.
func NewTrackerNotifying(ch chan struct{}) *Tracker {
	return &Tracker{notify: ch}
}

// Notify receives a value whenever changes are pending.
func (t *Tracker) Notify() <-chan struct{} { return t.notify }

// Drain returns and clears the pending changes.
func (t *Tracker) Drain() Changes {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.pending
	t.pending = Changes{}
	c.KeepBrief = t.KeepBrief
	return c
}

func (t *Tracker) record(table string, uuid string, old, new model.Model) {
	t.mu.Lock()
	t.recordLocked(table, uuid, old, new)
	t.mu.Unlock()
	t.kick()
}

func (t *Tracker) recordLocked(table string, uuid string, old, new model.Model) {
	if t.pending.Tables == nil {
		t.pending.Tables = map[string]map[string]*Change{}
	}
	tm := t.pending.Tables[table]
	if tm == nil {
		tm = map[string]*Change{}
		t.pending.Tables[table] = tm
	}
	if ch, ok := tm[uuid]; ok {
		foldInto(tm, uuid, ch, new, t.KeepBrief)
	} else {
		tm[uuid] = &Change{UUID: uuid, Old: old, New: new}
	}
}

// Record adds a change that did not come through libovsdb's cache (from a
// Watch, say); old is nil for an insert and new for a delete.
func (t *Tracker) Record(table, uuid string, old, new model.Model) { t.record(table, uuid, old, new) }

// RecordAll adds several changes at once (a Watch's delivery, which is
// whole transactions): a consumer draining meanwhile gets all or none.
func (t *Tracker) RecordAll(fn func(record func(table, uuid string, old, new model.Model))) {
	t.mu.Lock()
	fn(t.recordLocked)
	t.mu.Unlock()
	t.kick()
}

func (t *Tracker) markOverflow() {
	t.mu.Lock()
	t.pending.Overflow = true
	t.mu.Unlock()
	t.kick()
}

func (t *Tracker) kick() {
	select {
	case t.notify <- struct{}{}:
	default:
	}
}

func uuidOf(m model.Model) string {
	if u, ok := m.(interface{ GetUUID() string }); ok {
		return u.GetUUID()
	}
	return ""
}

// OnAdd, OnUpdate and OnDelete implement libovsdb's cache.EventHandler.
func (t *Tracker) OnAdd(table string, m model.Model) { t.record(table, uuidOf(m), nil, m) }
func (t *Tracker) OnUpdate(table string, old, new model.Model) {
	t.record(table, uuidOf(new), old, new)
}
func (t *Tracker) OnDelete(table string, m model.Model) { t.record(table, uuidOf(m), m, nil) }

// Merge folds a later batch into c: per row, the oldest Old and the
// newest New are kept.
func (c *Changes) Merge(later Changes) {
	if later.Overflow {
		c.Overflow = true
	}
	keep := c.KeepBrief || later.KeepBrief
	c.KeepBrief = keep
	for table, rows := range later.Tables {
		if c.Tables == nil {
			c.Tables = map[string]map[string]*Change{}
		}
		tm := c.Tables[table]
		if tm == nil {
			tm = map[string]*Change{}
			c.Tables[table] = tm
		}
		for u, ch := range rows {
			if prev, ok := tm[u]; ok {
				foldInto(tm, u, prev, ch.New, keep)
			} else {
				cp := *ch
				tm[u] = &cp
			}
		}
	}
}

// foldInto makes a row's change end at now. A row inserted and deleted
// within one batch is dropped, or kept as a delete of the inserted row.
func foldInto(tm map[string]*Change, uuid string, ch *Change, now model.Model, keep bool) {
	inserted := ch.New
	ch.New = now
	if ch.Old == nil && ch.New == nil {
		if !keep || inserted == nil {
			delete(tm, uuid)
			return
		}
		ch.Old = inserted
	}
}
