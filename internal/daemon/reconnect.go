package daemon

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/courier-sdn/courier/ops"
)

// Session is one life of a daemon's database sessions, as Reconnect runs
// it. It calls established once it is in business (connected, monitors
// up, their initial contents read) and returns when it ends.
type Session func(ctx context.Context, established func()) error

// The daemons' reconnection backoff (ops.Backoff: doubling, each wait
// drawn from the upper half of its nominal value). The first retries are
// fast because the usual outage is a server restart that is over in tens
// of milliseconds. The cap stays well inside southd's default dead-after (5 s, with a 1 s
// heartbeat), so that a host never loses its liveness, and a VPC its
// hubs, only because its hostd was waiting to retry; it still keeps a
// thousand hosts facing a dead server to about 500 attempts a second.
const (
	DefaultFirstBackoff = 50 * time.Millisecond
	DefaultMaxBackoff   = 2 * time.Second
)

// Reconnect runs session until ctx ends, again after each end, with the
// daemons' backoff between attempts. The backoff starts over after a session that got
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
	reconnect(ctx, log, what, session, ended, newBackoff(), sleep)
}

func newBackoff() *ops.Backoff {
	return &ops.Backoff{First: DefaultFirstBackoff, Max: DefaultMaxBackoff}
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
	b *ops.Backoff, wait func(context.Context, time.Duration)) {
	health := healthFrom(ctx)
	for ctx.Err() == nil {
		var up atomic.Bool
		err := session(ctx, func() {
			up.Store(true)
			if health != nil {
				health.SetReady(true)
			}
		})
		if health != nil {
			health.SetReady(false)
		}
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
