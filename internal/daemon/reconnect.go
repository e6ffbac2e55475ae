package daemon

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"
)

// Session is one life of a daemon's database sessions, as Reconnect runs
// it. It calls established once it is in business (connected, monitors
// up, their initial contents read) and returns when it ends.
type Session func(ctx context.Context, established func()) error

// Backoff is the wait between two attempts to open a session: First,
// doubling up to Max, each wait drawn at random from its upper half so
// that the hosts that lost the same server do not all come back in the
// same millisecond. The zero value uses the defaults.
type Backoff struct {
	First, Max time.Duration
	next       time.Duration
}

// Reconnection defaults. The first retries are fast because the usual
// outage is a server restart that is over in tens of milliseconds. The
// cap stays well inside southd's default dead-after (5 s, with a 1 s
// heartbeat), so that a host never loses its liveness, and a VPC its
// hubs, only because its hostd was waiting to retry; it still keeps a
// thousand hosts facing a dead server to about 500 attempts a second.
const (
	DefaultFirstBackoff = 50 * time.Millisecond
	DefaultMaxBackoff   = 2 * time.Second
)

// Next returns the wait before the next attempt and doubles the one after.
func (b *Backoff) Next() time.Duration {
	if b.First <= 0 {
		b.First = DefaultFirstBackoff
	}
	if b.Max <= 0 {
		b.Max = DefaultMaxBackoff
	}
	if b.next < b.First {
		b.next = b.First
	}
	d := b.next
	b.next = min(2*b.next, b.Max)
	return d/2 + rand.N(d/2+1)
}

// Reset starts the waits from First again.
func (b *Backoff) Reset() { b.next = 0 }

// Reconnect runs session until ctx ends, again after each end, waiting
// as Backoff says. The backoff starts over after a session that got
// established: an outage is then followed by a fast retry however many
// outages came before (a database restarted ten times in a row is
// reached again within tens of milliseconds each time). A session that
// ends before it is established (server down, refusing, no leader) keeps
// doubling the wait, so a database in trouble does not get a tight loop
// of full reloads. ended, if not nil, is called after each end (to count
// it).
//
// What the reset does not cover: a session that is established and then
// dies at once, over and over, is retried every First; its own initial
// read is then what paces it.
func Reconnect(ctx context.Context, log *slog.Logger, what string, session Session, ended func()) {
	reconnect(ctx, log, what, session, ended, &Backoff{}, sleep)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func reconnect(ctx context.Context, log *slog.Logger, what string, session Session, ended func(),
	b *Backoff, wait func(context.Context, time.Duration)) {
	for ctx.Err() == nil {
		var up atomic.Bool
		err := session(ctx, func() { up.Store(true) })
		if ctx.Err() != nil {
			return
		}
		if up.Load() {
			b.Reset()
		}
		d := b.Next()
		log.Warn(what+" ended; reconnecting", "err", err, "established", up.Load(), "in", d)
		if ended != nil {
			ended()
		}
		wait(ctx, d)
	}
}
