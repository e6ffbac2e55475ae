package dataplane

import (
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"
)

// cfg_route_keep_ns: the configured time, nothing for a negative one,
// nothing on a PREEMPT_RT kernel (where a tc program can be preempted by
// another on its CPU, and the per-CPU kept routes are not safe).
func TestKeptRoutesConfig(t *testing.T) {
	rt := false
	if b, err := os.ReadFile("/sys/kernel/realtime"); err == nil && strings.TrimSpace(string(b)) == "1" {
		rt = true
	}
	for _, c := range []struct {
		keep time.Duration
		want uint64
	}{{time.Second, uint64(time.Second)}, {2 * time.Second, uint64(2 * time.Second)}, {-1, 0}} {
		d := &Datapath{cfg: Config{RouteKeep: c.keep}, log: slog.New(slog.DiscardHandler)}
		want := c.want
		if rt {
			want = 0
		}
		if got := d.keptRoutes(); got != want {
			t.Errorf("RouteKeep %v (PREEMPT_RT %v): cfg_route_keep_ns %d, want %d", c.keep, rt, got, want)
		}
	}
}
