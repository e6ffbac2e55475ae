package daemon

import (
	"context"
	"log/slog"
	"time"
)

// Reconnect runs session until ctx ends, again after each failure, with a
// backoff from half a second doubling to ten. A session that lived a
// minute resets the backoff; one that fails at once (a bug, a database
// in trouble) must not turn into a tight loop of full reloads. ended, if
// not nil, is called after each failure (to count it).
func Reconnect(ctx context.Context, log *slog.Logger, what string, session func(context.Context) error, ended func()) {
	const first, most = 500 * time.Millisecond, 10 * time.Second
	backoff := first
	for ctx.Err() == nil {
		began := time.Now()
		err := session(ctx)
		if ctx.Err() != nil {
			return
		}
		if time.Since(began) > time.Minute {
			backoff = first
		}
		log.Warn(what+" ended; reconnecting", "err", err, "in", backoff)
		if ended != nil {
			ended()
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, most)
	}
}
