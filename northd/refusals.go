package northd

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// refusals logs each northbound row northd refuses, once: when its
// status becomes that error (or the error changes), with the table, the
// row's name and the reason, and again, once, when it is accepted. An
// orchestrator that writes 10,000 bad ports must not flood the log, so at
// most burst lines are written per interval; the rest are counted and
// summed up in one line when the next interval begins.
type refusals struct {
	log   *slog.Logger
	every time.Duration
	burst int
	now   func() time.Time

	mu         sync.Mutex
	start      time.Time
	n          int
	suppressed int
}

func newRefusals(log *slog.Logger) *refusals {
	return &refusals{log: log, every: 10 * time.Second, burst: 20, now: time.Now}
}

// note compares a row's status as written (old) and as about to be
// written (want), and logs a refusal or an acceptance.
func (r *refusals) note(table, name string, old, want map[string]string) {
	switch {
	case want["state"] == "error" && (old["state"] != "error" || old["error"] != want["error"]):
		r.emit(slog.LevelWarn, "refused a northbound row", "table", table, "name", name, "reason", want["error"])
	case old["state"] == "error" && want["state"] != "error":
		r.emit(slog.LevelInfo, "accepted a northbound row refused before", "table", table, "name", name)
	}
}

func (r *refusals) emit(level slog.Level, msg string, kv ...any) {
	r.mu.Lock()
	now := r.now()
	if now.Sub(r.start) >= r.every {
		if r.suppressed > 0 {
			r.log.Warn("northbound rows refused or accepted but not logged (rate limit)", "rows", r.suppressed, "interval", r.every)
		}
		r.start, r.n, r.suppressed = now, 0, 0
	}
	r.n++
	if r.n > r.burst {
		r.suppressed++
		r.mu.Unlock()
		return
	}
	r.mu.Unlock()
	r.log.Log(context.Background(), level, msg, kv...)
}
