package bench

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema"
)

// The churn is what an orchestrator does to a big VPC all day: ports
// deleted, added and moved, each its own NB transaction, at a steady
// rate. It used to wait for each transaction's reply before sending the
// next one, off a ticker that drops the ticks it misses, so a round
// trip of more than 1/rate (the NB server at 64,000 ports takes 10–20
// ms under load) capped it: 100 asked made ~70 a second. Now each
// change is sent when it is due, on its own goroutine, with up to
// churnInFlight outstanding; what was made, and how late, is reported.

// churnInFlight bounds the churn's outstanding transactions: at 100 a
// second, 64 is 640 ms of replies that may be late before a change is
// sent late.
const churnInFlight = 64

// ChurnStats is what a churn made in one window.
type ChurnStats struct {
	Asked    int     `json:"asked_per_s"`
	Seconds  float64 `json:"seconds"`
	Adds     int     `json:"adds"`
	Deletes  int     `json:"deletes"`
	Moves    int     `json:"moves"`
	Failed   int     `json:"failed"`
	Achieved float64 `json:"achieved_per_s"`
	// Late is how many changes were sent more than one period after
	// they were due (all churnInFlight slots busy, or the machine).
	Late int `json:"late"`
	// Commit is each change's NB transaction round trip.
	Commit Latency `json:"commit_ms"`
}

// Made is how many changes the NB server committed.
func (c ChurnStats) Made() int { return c.Adds + c.Deletes + c.Moves }

type churnKind int

const (
	churnDelete churnKind = iota
	churnAdd
	churnMove
)

func (k churnKind) String() string { return [...]string{"delete", "add", "move"}[k] }

// churner holds which of the present ports exist and where; a change
// picks a port no other change in flight touches.
type churner struct {
	nb       *ops.Session
	from, to string
	made     atomic.Int64 // changes committed, all runs together

	mu     sync.Mutex
	n      int            // present ports: p0..p(n-1)
	uuid   map[int]string // existing ports' Port rows
	at     map[int]string // where each port is requested
	busy   map[int]bool   // a change to it is in flight
	gone   []int          // deleted ports, oldest first, to add back
	cursor int
}

// newChurner reads the present ports requested on from (named p<i>, as
// topology makes them); moves take them to to and back.
func newChurner(ctx context.Context, nb *ops.Session, n int, from, to string) (*churner, error) {
	res, err := ops.Transact(ctx, nb, ovsdb.Operation{Op: ovsdb.OperationSelect, Table: "Port",
		Where:   []ovsdb.Condition{{Column: "requested_chassis", Function: ovsdb.ConditionEqual, Value: from}},
		Columns: []string{"_uuid", "name"}})
	if err != nil {
		return nil, err
	}
	c := &churner{nb: nb, from: from, to: to, n: n, uuid: map[int]string{}, at: map[int]string{}, busy: map[int]bool{}}
	for _, r := range res[0].Rows {
		u, ok := r["_uuid"].(ovsdb.UUID)
		name, _ := r["name"].(string)
		p, err := strconv.Atoi(strings.TrimPrefix(name, "p"))
		if !ok || err != nil || p >= n {
			continue
		}
		c.uuid[p], c.at[p] = u.GoUUID, from
	}
	if len(c.uuid) == 0 {
		return nil, fmt.Errorf("no port on %s to churn", from)
	}
	return c, nil
}

// pick chooses change i: a delete, an add (of the port deleted longest
// ago; a move if none is waiting) and a move, in turn. Deletes and
// moves walk the ports with a stride, skipping those busy or gone. It
// marks the port busy; done releases it.
func (c *churner) pick(i int) (churnKind, int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	kind := churnKind(i % 3)
	if kind == churnAdd {
		if len(c.gone) > 0 {
			p := c.gone[0]
			c.gone = c.gone[1:]
			c.busy[p] = true
			return churnAdd, p, true
		}
		kind = churnMove
	}
	for tries := 0; tries < c.n; tries++ {
		p := (c.cursor * 97) % c.n
		c.cursor++
		if _, ok := c.uuid[p]; ok && !c.busy[p] {
			c.busy[p] = true
			return kind, p, true
		}
	}
	return kind, 0, false
}

// done records what change (kind, p) did: uuid is an added port's row;
// err means it was not made, and the port is as before.
func (c *churner) done(kind churnKind, p int, uuid string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.busy, p)
	if err == nil {
		c.made.Add(1)
	}
	switch {
	case err != nil && kind == churnAdd:
		c.gone = append(c.gone, p) // try again later
	case err != nil:
	case kind == churnDelete:
		delete(c.uuid, p)
		c.gone = append(c.gone, p)
	case kind == churnAdd:
		c.uuid[p] = uuid
	case kind == churnMove:
		if c.at[p] == c.from {
			c.at[p] = c.to
		} else {
			c.at[p] = c.from
		}
	}
}

// ops is change (kind, p) as NB operations. A port lives in vxnet
// x<p%253>, which holds it (Port is not a root table: out of the
// vxnet's set, the row is gone).
func (c *churner) ops(kind churnKind, p int) []ovsdb.Operation {
	c.mu.Lock()
	defer c.mu.Unlock()
	vx := []ovsdb.Condition{{Column: "name", Function: ovsdb.ConditionEqual, Value: fmt.Sprintf("x%d", p%253)}}
	switch kind {
	case churnDelete:
		return []ovsdb.Operation{{Op: ovsdb.OperationMutate, Table: "Vxnet", Where: vx,
			Mutations: []ovsdb.Mutation{{Column: "ports", Mutator: ovsdb.MutateOperationDelete,
				Value: ovsdb.OvsSet{GoSet: []any{ovsdb.UUID{GoUUID: c.uuid[p]}}}}}}}
	case churnAdd:
		return []ovsdb.Operation{
			{Op: ovsdb.OperationInsert, Table: "Port", UUIDName: "np", Row: ovsdb.Row{"name": fmt.Sprintf("p%d", p),
				"mac": benchMAC(p), "ips": portIP(p, c.n).String(), "requested_chassis": c.at[p],
				"mac_key": schema.NewScope(), "ip_key": schema.NewScope()}},
			{Op: ovsdb.OperationMutate, Table: "Vxnet", Where: vx, Mutations: []ovsdb.Mutation{{Column: "ports",
				Mutator: ovsdb.MutateOperationInsert, Value: ovsdb.OvsSet{GoSet: []any{ovsdb.UUID{GoUUID: "np"}}}}}},
		}
	default:
		next := c.to
		if c.at[p] == c.to {
			next = c.from
		}
		return []ovsdb.Operation{{Op: ovsdb.OperationUpdate, Table: "Port", Where: ops.WhereUUID(c.uuid[p]),
			Row: ovsdb.Row{"requested_chassis": next}}}
	}
}

// run makes rate changes a second until stop is called, which waits for
// the changes in flight and returns what was made. Change i is due at
// start + i/rate and sent then, without waiting for earlier replies.
func (c *churner) run(ctx context.Context, rate int) (stop func() ChurnStats) {
	cctx, cancel := context.WithCancel(ctx)
	period := time.Second / time.Duration(rate)
	st := ChurnStats{Asked: rate}
	var (
		mu      sync.Mutex
		commits []time.Duration
		wg      sync.WaitGroup
	)
	record := func(kind churnKind, took time.Duration, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			st.Failed++
			return
		}
		commits = append(commits, took)
		switch kind {
		case churnAdd:
			st.Adds++
		case churnDelete:
			st.Deletes++
		default:
			st.Moves++
		}
	}
	start := time.Now()
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		slots := make(chan struct{}, churnInFlight)
		for i := 0; ; i++ {
			due := start.Add(time.Duration(i) * period)
			select {
			case <-cctx.Done():
				return
			case <-time.After(time.Until(due)):
			}
			select {
			case <-cctx.Done():
				return
			case slots <- struct{}{}:
			}
			if time.Since(due) > period {
				mu.Lock()
				st.Late++
				mu.Unlock()
			}
			kind, p, ok := c.pick(i)
			if !ok {
				<-slots
				continue
			}
			wg.Add(1)
			go func() {
				defer func() { <-slots; wg.Done() }()
				// A change sent is seen through, stop or not, so
				// that what the churner holds is what NB holds.
				t0 := time.Now()
				res, err := ops.Transact(ctx, c.nb, c.ops(kind, p)...)
				var uuid string
				if err == nil && kind == churnAdd {
					uuid = res[0].UUID.GoUUID
				}
				c.done(kind, p, uuid, err)
				record(kind, time.Since(t0), err)
			}()
		}
	}()
	return func() ChurnStats {
		cancel()
		<-finished
		wg.Wait()
		st.Seconds = time.Since(start).Seconds()
		st.Achieved = float64(st.Made()) / st.Seconds
		st.Commit = Summarize(commits)
		return st
	}
}
