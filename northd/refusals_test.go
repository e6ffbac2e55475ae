package northd

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// A refused row is logged once, with its table, name and reason, not at
// every run; a flood of refusals is cut to the burst and summed up.
func TestRefusalsAreLoggedOnceAndRateLimited(t *testing.T) {
	var buf bytes.Buffer
	r := newRefusals(slog.New(slog.NewTextHandler(&buf, nil)))
	now := time.Unix(1000, 0)
	r.now = func() time.Time { return now }
	bad := errStatus("IP 10.0.9.5 is outside vxnet web (10.0.1.0/24)")
	r.note("Port", "vm1", map[string]string{}, bad)
	r.note("Port", "vm1", bad, bad) // unchanged: not again
	if got := strings.Count(buf.String(), "refused a northbound row"); got != 1 {
		t.Fatalf("logged %d times:\n%s", got, buf.String())
	}
	if !strings.Contains(buf.String(), "table=Port name=vm1 reason=\"IP 10.0.9.5 is outside vxnet web (10.0.1.0/24)\"") {
		t.Errorf("the line lacks table, name or reason:\n%s", buf.String())
	}
	r.note("Port", "vm1", bad, map[string]string{})
	if !strings.Contains(buf.String(), "accepted a northbound row refused before") {
		t.Errorf("acceptance not logged:\n%s", buf.String())
	}
	buf.Reset()
	for i := 0; i < 100; i++ {
		r.note("Port", "p", map[string]string{}, bad)
	}
	if got := strings.Count(buf.String(), "\n"); got != r.burst-2 {
		t.Errorf("%d lines in one interval, want %d (the burst less the two above)", got, r.burst-2)
	}
	now = now.Add(r.every)
	r.note("Port", "q", map[string]string{}, bad)
	if !strings.Contains(buf.String(), "rows=82") {
		t.Errorf("the suppressed refusals are not summed up:\n%s", buf.String())
	}
}
