package hostd

import (
	"syscall"
	"testing"
	"time"

	"github.com/courier-sdn/courier/internal/testenv"
)

// A southbound server silent for longer than one probe interval but less
// than ProbeSilence of them (busy sending another client a hub's rows)
// keeps hostd's session: dropping it made every host reopen its sessions
// and ask for its rows again, and a busy server never caught up.
func TestBusySouthboundKeepsTheSession(t *testing.T) {
	dbs := testenv.StartTLSDBs(t)
	d, err := connect(t, dbs, "hv1", "hv1", "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	pid := dbs.ServerPID("sb")
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := true
	defer func() {
		if stopped {
			syscall.Kill(pid, syscall.SIGCONT)
		}
	}()
	time.Sleep(2*sbEcho + time.Second)
	syscall.Kill(pid, syscall.SIGCONT)
	stopped = false
	select {
	case <-d.base.Done():
		t.Fatalf("the session ended while the server was silent for %v", 2*sbEcho+time.Second)
	case <-time.After(2 * time.Second):
	}
}

// A VPC's session that failed to open gets longer next time, up to a
// bound: the session's connect timeout, which also bounds its initial
// rows (a context deadline alone is cut short by Open's 10 s default).
func TestVPCOpenTimeoutGrows(t *testing.T) {
	d := New(Config{Chassis: "hv1"})
	want := []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 8 * time.Minute}
	for failures, w := range want {
		d.vpcOpenFailed[7] = failures
		if got := d.vpcOptions(7, true, nil).ConnectTimeout; got != w {
			t.Errorf("after %d failures: %v, want %v", failures, got, w)
		}
	}
}

// A hub compares its whole map with its table every minute up to 65,536
// bindings, and less often as it holds more: the check's cost a minute
// stays that of a 65,536-binding hub.
func TestHubCheckEveryGrowsWithTheTable(t *testing.T) {
	for _, c := range []struct {
		n    int
		want time.Duration
	}{{0, time.Minute}, {65536, time.Minute}, {65537, 2 * time.Minute}, {256000, 4 * time.Minute}} {
		if got := hubCheckEvery(c.n); got != c.want {
			t.Errorf("%d bindings: every %v, want %v", c.n, got, c.want)
		}
	}
}
