package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/courier-sdn/courier/ops"
)

// script runs reconnect over sessions that each either get established
// or fail at once, in the given order, and returns the waits between them.
func script(t *testing.T, established ...bool) []time.Duration {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var waits []time.Duration
	i := 0
	session := func(ctx context.Context, up func()) error {
		if i == len(established) {
			cancel()
			return nil
		}
		if established[i] {
			up()
		}
		i++
		return errors.New("connection lost")
	}
	reconnect(ctx, slog.New(slog.DiscardHandler), "test session", session, nil, newBackoff(),
		func(_ context.Context, d time.Duration) { waits = append(waits, d) })
	if len(waits) != len(established) {
		t.Fatalf("%d waits after %d sessions", len(waits), len(established))
	}
	return waits
}

// within checks that a wait lies in the upper half of the nominal one.
func within(t *testing.T, what string, got, nominal time.Duration) {
	t.Helper()
	if got < nominal/2 || got > nominal {
		t.Errorf("%s: waited %v, want %v..%v", what, got, nominal/2, nominal)
	}
}

// A session that fails before it is established keeps doubling the wait,
// from fast first retries up to the cap and no further.
func TestSessionFailingAtOnceBacksOffToCap(t *testing.T) {
	waits := script(t, false, false, false, false, false, false, false, false, false, false)
	if waits[0] > 100*time.Millisecond || waits[1] > 100*time.Millisecond {
		t.Errorf("first retries after %v and %v, want both within 100ms", waits[0], waits[1])
	}
	nominal := DefaultFirstBackoff
	for i, w := range waits {
		within(t, fmt.Sprintf("retry %d", i+1), w, nominal)
		nominal = min(2*nominal, DefaultMaxBackoff)
	}
	if last := waits[len(waits)-1]; last < DefaultMaxBackoff/2 {
		t.Errorf("after %d failures the wait is %v, want it at the cap (%v)", len(waits), last, DefaultMaxBackoff)
	}
	t.Logf("waits: %v", waits)
}

// Reconnect backoff grew across separate outages: a session that had
// been up for less than a minute did not reset it, so after a few short
// database restarts a daemon waited 8-10 s to reach a server that had
// been back for milliseconds. An established session resets it now,
// however many outages came before.
func TestBackoffResetsAfterEstablishedSession(t *testing.T) {
	var run []bool
	for range 10 {
		run = append(run, true, false, false, false) // up, then an outage of three failed tries
	}
	waits := script(t, run...)
	first := DefaultFirstBackoff
	for k := 0; k < len(waits); k += 4 {
		within(t, "first retry after an established session", waits[k], first)
		// The failures within one outage still back off.
		within(t, "after the outage's first failure", waits[k+1], 2*first)
		within(t, "after its second failure", waits[k+2], 4*first)
		within(t, "after its third failure", waits[k+3], 8*first)
	}
	t.Logf("waits: %v", waits)
}

// Jitter stays within the upper half of the nominal wait.
func TestBackoffJitter(t *testing.T) {
	seen := map[time.Duration]bool{}
	for range 200 {
		b := &ops.Backoff{First: 80 * time.Millisecond, Max: time.Second}
		d := b.Next()
		within(t, "jittered first wait", d, 80*time.Millisecond)
		seen[d] = true
	}
	if len(seen) < 10 {
		t.Errorf("200 first waits took only %d distinct values: no jitter", len(seen))
	}
}
