package bench

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/courier-sdn/courier/tools/guest"
	"github.com/courier-sdn/courier/tools/sandbox"
)

// Live migration (#19): the blackout a peer sees, pinging every 10 ms
// from a namespace VM on a third host, while a QEMU guest live-migrates
// back and forth between two hosts (vm-migrate), beside the same figure
// for a namespace VM moved with vm-move (deleted and recreated). The
// blackout of one move is its lost pings x 10 ms.

// MigrateResult is that benchmark's result.
type MigrateResult struct {
	Migrations int     `json:"migrations"`
	QEMU       Latency `json:"qemu_live_migration_blackout_ms"`
	Downtime   Latency `json:"qemu_reported_downtime_ms"`
	// Beyond is each live migration's blackout beyond QEMU's reported
	// downtime (0 if less): the network's share, handover and
	// convergence, which is Courier's to cut.
	Beyond Latency `json:"qemu_blackout_beyond_downtime_ms"`
	// Activation: from QEMU reporting the migration completed until the
	// destination had bound the port on the guest's RARP (the
	// southbound polled every 2 ms).
	Activation Latency `json:"activation_after_completed_ms"`
	// Paused: the guest's whole pause, from the source's STOP to the
	// destination's RESUME (QEMU's own event timestamps), which QEMU's
	// downtime figure ends before; BoundAfterResume: from RESUME until
	// the binding was seen moved (Courier's share: the RARP, hostd's
	// write, and a 2 ms poll of the southbound).
	Paused           Latency `json:"qemu_pause_stop_to_resume_ms"`
	BoundAfterResume Latency `json:"bound_after_resume_ms"`
	Namespace        Latency `json:"namespace_vm_move_blackout_ms"`
	Accel            string  `json:"accel"`
	// QMPParams are the migration parameters QEMU was given.
	QMPParams map[string]any `json:"qmp_migrate_parameters"`
	// Each direction's live migration blackouts apart.
	Out  Latency `json:"qemu_blackout_hv1_to_hv2_ms"`
	Back Latency `json:"qemu_blackout_hv2_to_hv1_ms"`
	// The machine's 1-minute load average before and after (it is
	// shared with other work).
	LoadAvg [2]float64 `json:"load_avg_1m"`
	// Every move's blackout in ms, in order (hv1->hv2, hv2->hv1, ...).
	QEMUSamples      []float64 `json:"qemu_blackouts_ms"`
	DowntimeSamples  []float64 `json:"qemu_downtimes_ms"`
	NamespaceSamples []float64 `json:"namespace_blackouts_ms"`
	// The guest's pause and Courier's share, each move (0: an event
	// was missed).
	PausedSamples      []float64 `json:"qemu_pauses_ms"`
	AfterResumeSamples []float64 `json:"bound_after_resume_samples_ms"`
}

// Migrate runs it: n moves of each kind, QEMU's migrations with params
// (sandbox.MigrationParams by default).
func Migrate(ctx context.Context, env Env, n int, params map[string]any) (*MigrateResult, error) {
	if params == nil {
		params = sandbox.MigrationParams()
	}
	sb, _, done, err := benchSandbox(ctx, env, "mig", 3, 1)
	if err != nil {
		return nil, err
	}
	defer done()
	cmd := exec.Command(filepath.Join(env.BinDir, "courier-nbctl"), "--db", sb.NB(), "--timeout", "30s", "--wait=hv",
		"vpc-add", "m", "--", "vxnet-add", "m", "ma", "10.71.1.0/24",
		"--", "port-add", "ma", "guest", "02:00:00:71:01:0a", "10.71.1.10",
		"--", "port-add", "ma", "nsvm", "02:00:00:71:01:0b", "10.71.1.11",
		"--", "port-add", "ma", "peer", "02:00:00:71:01:0c", "10.71.1.12")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("courier-nbctl: %v: %s", err, out)
	}
	if err := sb.AddVM(ctx, "hv3", "peer"); err != nil {
		return nil, err
	}
	if err := sb.AddVM(ctx, "hv1", "nsvm"); err != nil {
		return nil, err
	}
	if err := sb.AddVMWith(ctx, "hv1", "guest", sandbox.VMOptions{QEMU: true}); err != nil {
		return nil, err
	}
	res := &MigrateResult{Migrations: n, Accel: guest.Accel(), QMPParams: params}
	res.LoadAvg[0] = loadAvg()
	var qemu, downtime, beyond, ns, act, paused, afterResume, pausedAll, afterAll []time.Duration
	var dirs [2][]time.Duration
	hosts := []string{"hv2", "hv1"}
	for i := 0; i < n; i++ {
		to := hosts[i%2]
		var m sandbox.Migration
		b, err := blackout(sb, "peer", "10.71.1.10", func() error {
			var err error
			m, err = sb.MigrateVMTimed(ctx, "guest", to, params)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("migration %d: %w", i, err)
		}
		d := m.Downtime
		qemu, downtime, beyond = append(qemu, b), append(downtime, d), append(beyond, max(0, b-d))
		act, dirs[i%2] = append(act, m.Activated), append(dirs[i%2], b)
		pausedAll, afterAll = append(pausedAll, m.Paused), append(afterAll, m.BoundAfterResume)
		if m.Paused > 0 {
			paused, afterResume = append(paused, m.Paused), append(afterResume, m.BoundAfterResume)
		}
		b, err = blackout(sb, "peer", "10.71.1.11", func() error { return sb.MoveVM(ctx, "nsvm", to) })
		if err != nil {
			return nil, fmt.Errorf("vm-move %d: %w", i, err)
		}
		ns = append(ns, b)
	}
	res.LoadAvg[1] = loadAvg()
	res.QEMU, res.Downtime, res.Beyond, res.Namespace = Summarize(qemu), Summarize(downtime), Summarize(beyond), Summarize(ns)
	res.Activation, res.Out, res.Back = Summarize(act), Summarize(dirs[0]), Summarize(dirs[1])
	res.Paused, res.BoundAfterResume = Summarize(paused), Summarize(afterResume)
	res.PausedSamples, res.AfterResumeSamples = millis(pausedAll), millis(afterAll)
	res.QEMUSamples, res.DowntimeSamples, res.NamespaceSamples = millis(qemu), millis(downtime), millis(ns)
	return res, nil
}

func millis(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = float64(d.Milliseconds())
	}
	return out
}

// blackout pings ip from a VM every 10 ms around move, until ip
// answers again, and returns the lost pings x 10 ms.
func blackout(sb *sandbox.Sandbox, from, ip string, move func() error) (time.Duration, error) {
	p := exec.Command("ip", "netns", "exec", sb.VMNS(from), "ping", "-n", "-q", "-i", "0.01", "-W", "1", ip)
	var out strings.Builder
	p.Stdout, p.Stderr = &out, &out
	if err := p.Start(); err != nil {
		return 0, err
	}
	defer func() {
		if p.ProcessState == nil {
			p.Process.Kill()
			p.Wait()
		}
	}()
	time.Sleep(300 * time.Millisecond)
	if err := move(); err != nil {
		return 0, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if n, _ := sb.Ping(from, netip.MustParseAddr(ip), 1, "0.2"); n == 1 {
			break
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%s does not answer after the move", ip)
		}
	}
	p.Process.Signal(os.Interrupt)
	p.Wait()
	r := parsePing(out.String())
	sent, recv := r.Sent, r.Received
	if sent == 0 {
		return 0, fmt.Errorf("ping from %s: %s", from, out.String())
	}
	return time.Duration(sent-recv) * 10 * time.Millisecond, nil
}

func (m *MigrateResult) markdown(b *strings.Builder) {
	fmt.Fprintf(b, "\n## Live migration\n\nBlackout a peer on a third host sees, pinging every 10 ms (lost pings x 10 ms), over %d moves of each kind (QEMU under %s):\n\n", m.Migrations, m.Accel)
	fmt.Fprintf(b, "| move | min ms | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|\n")
	for _, r := range []struct {
		name string
		l    Latency
		all  []float64
	}{{"QEMU guest, vm-migrate (live)", m.QEMU, m.QEMUSamples}, {"its QEMU-reported downtime", m.Downtime, m.DowntimeSamples},
		{"QEMU blackout beyond its downtime", m.Beyond, beyondSamples(m)},
		{"QEMU guest, hv1 -> hv2", m.Out, nil}, {"QEMU guest, hv2 -> hv1", m.Back, nil},
		{"activation after QEMU's completion (RARP to binding)", m.Activation, nil},
		{"the guest's whole pause (source STOP to destination RESUME)", m.Paused, nil},
		{"binding moved after the guest's RESUME (Courier's share)", m.BoundAfterResume, nil},
		{"namespace VM, vm-move (recreated)", m.Namespace, m.NamespaceSamples}} {
		fmt.Fprintf(b, "| %s | %s | %.0f | %.0f | %.0f |\n", r.name, minOf(r.all), r.l.P50, r.l.P99, r.l.Max)
	}
	fmt.Fprintf(b, "\nEach move, ms: QEMU %v (QEMU's downtime %v; the guest's pause %v; the binding moved after RESUME %v); namespace VM %v.\n",
		m.QEMUSamples, m.DowntimeSamples, m.PausedSamples, m.AfterResumeSamples, m.NamespaceSamples)
	fmt.Fprintf(b, "\nQEMU's migration parameters: %v.\n", m.QMPParams)
	fmt.Fprintf(b, "\nLoad average (1 min) %.2f before, %.2f after.\n", m.LoadAvg[0], m.LoadAvg[1])
	fmt.Fprintf(b, "\nTarget: p99 under 100 ms (Andromeda reports p50 65 ms / p99 388 ms).\n")
}

// minOf is the smallest sample, "-" without samples.
func minOf(v []float64) string {
	if len(v) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", slices.Min(v))
}

// beyondSamples is each migration's blackout beyond QEMU's downtime.
func beyondSamples(m *MigrateResult) []float64 {
	var out []float64
	for i, q := range m.QEMUSamples {
		if i < len(m.DowntimeSamples) {
			out = append(out, max(0, q-m.DowntimeSamples[i]))
		}
	}
	return out
}
