package ctbench

import (
	"fmt"
	"slices"
)

// The cases measured, in their order within a round.
const (
	CaseParse    = "parse"     // the parsing both trackers share
	CaseHit      = "hit"       // a packet of a tracked connection, as it was opened
	CaseHitReply = "hit_reply" // the same connection's reply
	CaseNew      = "new"       // a new connection: a miss, then an insert
)

// Cases lists the cases in the order they are measured.
var Cases = []string{CaseParse, CaseHit, CaseHitReply, CaseNew}

// Result is per-packet nanoseconds, one sample a round, by case and
// tracker.
type Result struct {
	Rounds    int `json:"rounds"`
	Repeat    int `json:"repeat"`     // runs a sample, for the lookups
	NewRepeat int `json:"new_repeat"` // runs a sample, for new connections
	// NS[case][tracker] holds every round's mean time of a run.
	NS map[string]map[Tracker][]float64 `json:"ns"`
	// KernelEntries is how many conntrack entries the measurement's
	// namespace held at the end: the established connection and every
	// new one.
	KernelEntries int `json:"kernel_entries"`
}

// Measure runs the cases in rounds, alternating which tracker goes
// first, on fwd (a TCP/IPv4 frame) and rev (its reply), in a namespace
// <prefix>ct created and deleted here.
func Measure(prefix string, fwd, rev []byte, rounds, repeat, newRepeat int) (*Result, error) {
	b, err := Open(prefix)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	res := &Result{Rounds: rounds, Repeat: repeat, NewRepeat: newRepeat, NS: map[string]map[Tracker][]float64{}}
	for _, c := range Cases {
		res.NS[c] = map[Tracker][]float64{}
	}
	// The established connection, in both tables.
	for _, t := range []Tracker{LRU, Kfunc} {
		if err := b.expect(t, fwd, 1, New, nil); err != nil {
			return nil, err
		}
	}
	for r := range rounds {
		order := []Tracker{LRU, Kfunc}
		if r%2 == 1 {
			slices.Reverse(order)
		}
		if err := b.round(res, order, fwd, rev); err != nil {
			return nil, fmt.Errorf("round %d: %w", r+1, err)
		}
	}
	if res.KernelEntries, err = b.KernelEntries(); err != nil {
		return nil, err
	}
	if want := 1 + rounds*newRepeat; res.KernelEntries != want {
		return nil, fmt.Errorf("%d conntrack entries in %s, want %d", res.KernelEntries, b.NS, want)
	}
	return res, nil
}

// round measures every case once, each tracker in order.
func (b *Bench) round(res *Result, order []Tracker, fwd, rev []byte) error {
	samples := res.NS
	if err := b.expect(Parse, fwd, res.Repeat, Hit, samples[CaseParse]); err != nil {
		return err
	}
	for _, t := range order {
		if err := b.expect(t, fwd, res.Repeat, Hit, samples[CaseHit]); err != nil {
			return err
		}
	}
	for _, t := range order {
		if err := b.expect(t, rev, res.Repeat, Hit, samples[CaseHitReply]); err != nil {
			return err
		}
	}
	if err := b.SetVary(true); err != nil {
		return err
	}
	defer b.SetVary(false)
	for _, t := range order {
		if err := b.expect(t, fwd, res.NewRepeat, New, samples[CaseNew]); err != nil {
			return err
		}
	}
	return nil
}

// expect runs t repeat times on frame, fails unless the last run found
// want, and adds the mean time of a run to into[t] (into may be nil).
func (b *Bench) expect(t Tracker, frame []byte, repeat int, want uint32, into map[Tracker][]float64) error {
	ret, per, err := b.Run(t, frame, repeat)
	if err != nil {
		return fmt.Errorf("%s: %w", t, err)
	}
	if ret != want {
		return fmt.Errorf("%s: found %d, want %d (last error %d)", t, ret, want, b.LastError())
	}
	if into != nil {
		into[t] = append(into[t], float64(per.Nanoseconds()))
	}
	return nil
}
