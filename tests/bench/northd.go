// Package bench holds Courier's benchmarks: northd at scale, the data plane
// against kernel baselines, and the whole system end to end. Every number
// is measured in the run that reports it; targets are reported next to the
// results, never asserted.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/internal/central"
	"github.com/courier-sdn/courier/internal/proc"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/ops/jsonrpc"
	"github.com/courier-sdn/courier/schema"
	"github.com/courier-sdn/courier/schema/nbdb"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// NorthdResult is the northd benchmark at one size.
type NorthdResult struct {
	Ports  int `json:"ports"`
	Vxnets int `json:"vxnets"`
	// The bulk load is repeated on fresh databases; the seconds are the
	// median round, the Rounds fields list every round.
	NBCommitSeconds float64   `json:"nb_commit_seconds"`
	CompileSeconds  float64   `json:"bulk_commit_to_sb_cfg_seconds"`
	CompileRounds   []float64 `json:"bulk_commit_to_sb_cfg_rounds"`
	// FloorSeconds is the baseline measured in the same run, interleaved
	// with the bulk rounds: ovsdb-server alone committing the same flows
	// and bindings into an empty southbound (insertFloor), the least any
	// compiler could spend there.
	// NorthdPhases is northd's own account of the bulk load (median over
	// the rounds, seconds, from its courier_northd_run_phase_seconds):
	// wait, compile, write_sb, write_nb. The rest of commit→sb_cfg is
	// ovsdb-server sending the transaction and northd reading it.
	NorthdPhases     map[string]float64 `json:"northd_phases_seconds"`
	FloorSeconds     float64            `json:"sb_insert_floor_seconds"`
	FloorRounds      []float64          `json:"sb_insert_floor_rounds"`
	Ratio            float64            `json:"ratio_to_floor"`
	SBRows           map[string]int     `json:"sb_rows"`
	NorthdPeakRSSMiB float64            `json:"northd_peak_rss_mib"`
	Add              Latency            `json:"single_port_add_ms"`
	Update           Latency            `json:"single_port_update_ms"`
	Delete           Latency            `json:"single_port_delete_ms"`
	// TakeoverSeconds is from killing the active northd, with the
	// topology loaded, to the standby acknowledging a new nb_cfg.
	TakeoverSeconds float64 `json:"takeover_seconds"`
}

// Latency summarizes samples in milliseconds.
type Latency struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// Summarize computes percentiles of durations.
func Summarize(ds []time.Duration) Latency {
	if len(ds) == 0 {
		return Latency{}
	}
	s := append([]time.Duration{}, ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	at := func(q float64) float64 {
		i := int(q*float64(len(s))+0.5) - 1
		if i < 0 {
			i = 0
		}
		if i >= len(s) {
			i = len(s) - 1
		}
		return float64(s[i].Microseconds()) / 1000
	}
	return Latency{N: len(s), P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: at(1)}
}

// Env says where the binaries are and where to keep run directories.
type Env struct {
	BinDir string
	TmpDir string
	Log    *slog.Logger
}

// Northd runs the northd benchmark for one topology size: one VPC, 253
// vxnets, ports spread over them. The bulk load runs rounds times, each
// on fresh databases and followed by a floor measurement; the single-port
// changes run on the last round's databases.
func Northd(ctx context.Context, env Env, ports, rounds int) (*NorthdResult, error) {
	r := &NorthdResult{Ports: ports, Vxnets: 253}
	var commits []float64
	phases := map[string][]float64{}
	for i := 0; i < rounds; i++ {
		last := i == rounds-1
		commit, err := northdRound(ctx, env, ports, r, phases, last)
		if err != nil {
			return nil, err
		}
		commits = append(commits, commit)
		floor, err := insertFloor(ctx, env, ports)
		if err != nil {
			return nil, err
		}
		r.FloorRounds = append(r.FloorRounds, floor)
		env.Log.Info("northd bulk load", "ports", ports, "round", i+1, "commit_to_sb_cfg_s", r.CompileRounds[i], "floor_s", floor)
	}
	r.NorthdPhases = map[string]float64{}
	for phase, v := range phases {
		r.NorthdPhases[phase] = median(v)
	}
	r.NBCommitSeconds = median(commits)
	r.CompileSeconds = median(r.CompileRounds)
	r.FloorSeconds = median(r.FloorRounds)
	r.Ratio = r.CompileSeconds / r.FloorSeconds
	return r, nil
}

func median(v []float64) float64 {
	s := append([]float64{}, v...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// northdRound loads the topology into fresh databases and records the
// time to sb_cfg in r; with singles, it goes on to time single-port
// changes and read northd's peak memory. It returns the NB commit time.
func northdRound(ctx context.Context, env Env, ports int, r *NorthdResult, phases map[string][]float64, singles bool) (float64, error) {
	l, err := startNorthdLab(ctx, env)
	defer l.stop()
	if err != nil {
		return 0, err
	}
	nbCommit, err := l.bulkLoad(ctx, ports, r, phases)
	if err != nil {
		return 0, err
	}
	if r.SBRows, err = countRows(ctx, l.sbR); err != nil || !singles {
		return nbCommit, err
	}
	if err := l.singleChanges(ctx, ports, r); err != nil {
		return 0, err
	}
	r.NorthdPeakRSSMiB = peakRSS(l.pid)
	r.TakeoverSeconds, err = takeover(ctx, env, l.dir, l.nbR, l.sbR, l.pid, l.nbS)
	return nbCommit, err
}

// northdLab is one round's databases, northd and a northbound session.
type northdLab struct {
	env         Env
	dir         string
	nbR, sbR    string
	metricsAddr string
	pid         int
	nbS         *ops.Session
	stops       []func()
}

func (l *northdLab) stop() {
	for i := len(l.stops) - 1; i >= 0; i-- {
		l.stops[i]()
	}
}

// startNorthdLab starts the databases and northd in a run directory of
// their own (kept with COURIER_BENCH_KEEP). Stop it even on an error.
func startNorthdLab(ctx context.Context, env Env) (*northdLab, error) {
	l := &northdLab{env: env}
	dir, err := os.MkdirTemp(env.TmpDir, "bn")
	if err != nil {
		return l, err
	}
	l.dir = dir
	l.stops = append(l.stops, func() {
		if os.Getenv("COURIER_BENCH_KEEP") != "" {
			env.Log.Warn("COURIER_BENCH_KEEP is set: leaving the northd run directory", "run_dir", dir)
			return
		}
		os.RemoveAll(dir)
	})
	c := &central.Config{RunDir: dir, BinDir: env.BinDir}
	l.stops = append(l.stops, func() { c.Stop() })
	if err := c.Start(ctx); err != nil {
		return l, err
	}
	l.nbR, l.sbR = c.Remote(central.Databases[0]), c.Remote(central.Databases[1])
	if l.metricsAddr, err = freeAddr(); err != nil {
		return l, err
	}
	l.pid, err = proc.Start(proc.Spec{Bin: filepath.Join(env.BinDir, "courier-northd"),
		Args:    []string{"--nb", l.nbR, "--sb", l.sbR, "--log-level", "info", "--metrics-addr", l.metricsAddr},
		LogFile: filepath.Join(dir, "northd.log"), PidFile: filepath.Join(dir, "northd.pid")})
	if err != nil {
		return l, err
	}
	pid := l.pid
	l.stops = append(l.stops, func() { proc.StopPID(pid, "courier-northd", 5*time.Second) })
	nbM, _ := nbdb.FullDatabaseModel()
	l.nbS, err = ops.Open(ctx, nbM, ops.SessionOptions{Remotes: []string{l.nbR},
		Monitor: []client.MonitorOption{client.WithTable(&nbdb.NBGlobal{})}})
	if err != nil {
		return l, err
	}
	l.stops = append(l.stops, l.nbS.Close)
	return l, nil
}

// bulkLoad commits the topology as one NB transaction, plus the nb_cfg
// bump, and waits for northd to acknowledge it; it records the compile
// time and each phase's, and returns the NB commit's.
func (l *northdLab) bulkLoad(ctx context.Context, ports int, r *NorthdResult, phases map[string][]float64) (float64, error) {
	before, err := scrapePhases(ctx, l.metricsAddr)
	if err != nil {
		return 0, err
	}
	txn := topology(ports, nil)
	start := time.Now()
	res, err := ops.Transact(ctx, l.nbS, txn...)
	if err != nil {
		return 0, fmt.Errorf("bulk NB transaction: %w", err)
	}
	committed := time.Now()
	if err := waitSbCfg(ctx, l.nbS, cfgOf(res), 10*time.Minute); err != nil {
		return 0, err
	}
	r.CompileRounds = append(r.CompileRounds, time.Since(committed).Seconds())
	// northd counts a run's phases just after writing the acknowledgement.
	var after map[string]float64
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if after, err = scrapePhases(ctx, l.metricsAddr); err != nil {
			return 0, err
		}
		if after["write_nb"] != before["write_nb"] || time.Now().After(deadline) {
			break
		}
	}
	for phase, v := range after {
		phases[phase] = append(phases[phase], v-before[phase])
	}
	return committed.Sub(start).Seconds(), nil
}

// benchVxnets is how many vxnets topology spreads the ports over.
const benchVxnets = 253

// singleChanges times single-port changes, each from its NB commit to
// the southbound's: 60 adds, updates and deletes.
func (l *northdLab) singleChanges(ctx context.Context, ports int, r *NorthdResult) error {
	// Seen through a southbound monitor, opened only now: during the
	// bulk load it would be one more subscriber for ovsdb-server to
	// serve (and this process to decode) on the same two CPUs, which is
	// the benchmark's cost, not northd's.
	w, err := l.watchPorts(ctx)
	if err != nil {
		return err
	}
	defer w.s.Close()
	const n = 60
	var adds, upds, dels []time.Duration
	for _, step := range []struct {
		times *[]time.Duration
		gone  bool
		txn   func(i int, name string) ([]ovsdb.Operation, error)
	}{{&adds, false, func(i int, name string) ([]ovsdb.Operation, error) { return l.addExtra(ctx, ports, i, name) }},
		{&upds, false, func(i int, name string) ([]ovsdb.Operation, error) {
			return []ovsdb.Operation{{Op: "update", Table: "Port", Where: []ovsdb.Condition{{Column: "name", Function: "==", Value: name}},
				Row: ovsdb.Row{"mac": fmt.Sprintf("02:ef:00:00:%02x:%02x", i>>8, i&255)}}}, nil
		}},
		{&dels, true, func(i int, name string) ([]ovsdb.Operation, error) { return l.deleteExtra(ctx, i, name) }},
	} {
		for i := 0; i < n; i++ {
			name := fmt.Sprintf("extra%d", i)
			txn, err := step.txn(i, name)
			if err != nil {
				return err
			}
			t0, err := commit(ctx, l.nbS, txn)
			if err != nil {
				return err
			}
			d, err := w.seen(ctx, l, name, step.gone, t0)
			if err != nil {
				return err
			}
			*step.times = append(*step.times, d)
		}
	}
	r.Add, r.Update, r.Delete = Summarize(adds), Summarize(upds), Summarize(dels)
	return nil
}

// addExtra is the transaction that adds extra port i. Each takes .254 of
// its vxnet; where a bulk port holds it (the vxnet is full), that port is
// deleted in the same transaction, which also exercises the reuse of its
// key.
func (l *northdLab) addExtra(ctx context.Context, ports, i int, name string) ([]ovsdb.Operation, error) {
	vx := i % benchVxnets
	ip := fmt.Sprintf("10.%d.%d.254", vx>>8, vx&255)
	add := []ovsdb.Operation{
		{Op: "insert", Table: "Port", UUIDName: "np", Row: ovsdb.Row{"name": name,
			"mac": fmt.Sprintf("02:ee:00:00:%02x:%02x", i>>8, i&255), "ips": ip, "mac_key": schema.NewScope(), "ip_key": schema.NewScope()}},
		{Op: "mutate", Table: "Vxnet", Where: []ovsdb.Condition{{Column: "name", Function: "==", Value: fmt.Sprintf("x%d", vx)}},
			Mutations: []ovsdb.Mutation{{Column: "ports", Mutator: "insert", Value: ovsdb.OvsSet{GoSet: []any{ovsdb.UUID{GoUUID: "np"}}}}}},
	}
	if holder := vx + 252*benchVxnets; holder < ports {
		u, err := l.portUUID(ctx, fmt.Sprintf("p%d", holder))
		if err != nil {
			return nil, err
		}
		add[1].Mutations = append(add[1].Mutations, ovsdb.Mutation{Column: "ports", Mutator: "delete",
			Value: ovsdb.OvsSet{GoSet: []any{ovsdb.UUID{GoUUID: u}}}})
	}
	return add, nil
}

// deleteExtra is the transaction that deletes extra port i.
func (l *northdLab) deleteExtra(ctx context.Context, i int, name string) ([]ovsdb.Operation, error) {
	u, err := l.portUUID(ctx, name)
	if err != nil {
		return nil, err
	}
	return []ovsdb.Operation{{Op: "mutate", Table: "Vxnet",
		Where:     []ovsdb.Condition{{Column: "name", Function: "==", Value: fmt.Sprintf("x%d", i%benchVxnets)}},
		Mutations: []ovsdb.Mutation{{Column: "ports", Mutator: "delete", Value: ovsdb.OvsSet{GoSet: []any{ovsdb.UUID{GoUUID: u}}}}}}}, nil
}

func (l *northdLab) portUUID(ctx context.Context, name string) (string, error) {
	res, err := commit2(ctx, l.nbS, []ovsdb.Operation{{Op: "select", Table: "Port", Columns: []string{"_uuid"},
		Where: []ovsdb.Condition{{Column: "name", Function: "==", Value: name}}}})
	if err != nil || len(res[0].Rows) != 1 {
		return "", fmt.Errorf("find %s: %v", name, err)
	}
	return res[0].Rows[0]["_uuid"].(ovsdb.UUID).GoUUID, nil
}

// portWatch follows the southbound's bindings.
type portWatch struct {
	s *ops.Session
	t *ops.Tracker
}

func (l *northdLab) watchPorts(ctx context.Context) (*portWatch, error) {
	sbM, _ := sbdb.FullDatabaseModel()
	w := &portWatch{t: ops.NewTracker()}
	pb := &sbdb.PortBinding{}
	var err error
	w.s, err = ops.Open(ctx, sbM, ops.SessionOptions{Remotes: []string{l.sbR}, Tracker: w.t,
		Monitor: []client.MonitorOption{client.WithTable(pb, &pb.LogicalPort, &pb.MAC)}})
	if err != nil {
		return nil, err
	}
	// Let the bulk settle (statuses come back through northd's monitor)
	// before timing single changes.
	time.Sleep(2 * time.Second)
	w.t.Drain()
	return w, nil
}

// seen waits for port name's binding to change (or go) and returns how
// long after from it did.
func (w *portWatch) seen(ctx context.Context, l *northdLab, name string, gone bool, from time.Time) (time.Duration, error) {
	deadline := time.After(30 * time.Second)
	for {
		ch := w.t.Drain()
		for _, c := range ch.Table(sbdb.PortBindingTable) {
			var pb *sbdb.PortBinding
			if gone && c.New == nil && c.Old != nil {
				pb = c.Old.(*sbdb.PortBinding)
			} else if !gone && c.New != nil {
				pb = c.New.(*sbdb.PortBinding)
			}
			if pb != nil && pb.LogicalPort == name {
				return time.Since(from), nil
			}
		}
		select {
		case <-w.t.Notify():
		case <-deadline:
			st, _ := commit2(ctx, l.nbS, []ovsdb.Operation{{Op: "select", Table: "Port", Columns: []string{"status"},
				Where: []ovsdb.Condition{{Column: "name", Function: "==", Value: name}}}})
			log, _ := os.ReadFile(filepath.Join(l.dir, "northd.log"))
			if len(log) > 2000 {
				log = log[len(log)-2000:]
			}
			return 0, fmt.Errorf("port %s never reached the southbound (NB: %v); northd log:\n%s", name, st, log)
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// takeover starts a standby northd, waits until it has compiled the
// loaded topology, kills the active one (SIGKILL, as a crash) and times
// how long until the standby has the lock, has checked the southbound
// against its own compile, and acknowledges a new nb_cfg.
func takeover(ctx context.Context, env Env, dir, nbR, sbR string, active int, nbS *ops.Session) (float64, error) {
	metricsAddr, err := freeAddr()
	if err != nil {
		return 0, err
	}
	pid, err := proc.Start(proc.Spec{Bin: filepath.Join(env.BinDir, "courier-northd"),
		Args:    []string{"--nb", nbR, "--sb", sbR, "--log-level", "info", "--metrics-addr", metricsAddr},
		LogFile: filepath.Join(dir, "northd-standby.log"), PidFile: filepath.Join(dir, "northd-standby.pid")})
	if err != nil {
		return 0, err
	}
	defer proc.StopPID(pid, "courier-northd", 5*time.Second)
	// A standby compiles what it reads, without writing: wait for its
	// first run, from scratch.
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if runs, _ := scrapeValue(ctx, metricsAddr, `courier_northd_runs_total{kind="full"} `); runs >= 1 {
			break
		}
		if time.Now().After(deadline) {
			return 0, errors.New("the standby northd never compiled the topology")
		}
	}
	before, err := countRows(ctx, sbR)
	if err != nil {
		return 0, err
	}
	if err := syscall.Kill(active, syscall.SIGKILL); err != nil {
		return 0, err
	}
	killed := time.Now()
	res, err := ops.Transact(ctx, nbS, bumpCfg()...)
	if err != nil {
		return 0, err
	}
	if err := waitSbCfg(ctx, nbS, cfgOf(res), time.Minute); err != nil {
		return 0, fmt.Errorf("after the active northd was killed: %w", err)
	}
	took := time.Since(killed).Seconds()
	after, err := countRows(ctx, sbR)
	if err != nil {
		return 0, err
	}
	if !maps.Equal(before, after) {
		return 0, fmt.Errorf("the southbound changed across the takeover: %v before, %v after", before, after)
	}
	return took, nil
}

// topology is one VPC ("bench") with 253 vxnets x0..x252 (10.H.L.0/24)
// and ports p0..p(n-1) spread over them round-robin, as one NB transaction
// with the nb_cfg bump. Port p is in vxnet p%253 with address
// 10.H.L.(2+p/253). tweak, if not nil, may add columns to a port's row.
func topology(ports int, tweak func(p int, row ovsdb.Row)) []ovsdb.Operation {
	const vxnets = 253
	var txn []ovsdb.Operation
	vxUUIDs := make([]string, vxnets)
	txn = append(txn, ovsdb.Operation{Op: "insert", Table: "VPC", UUIDName: "vpc", Row: ovsdb.Row{"name": "bench"}})
	var vxRefs []any
	for i := 0; i < vxnets; i++ {
		vxUUIDs[i] = fmt.Sprintf("vx%d", i)
		vxRefs = append(vxRefs, ovsdb.UUID{GoUUID: vxUUIDs[i]})
	}
	portRefs := make([][]any, vxnets)
	for p := 0; p < ports; p++ {
		vx := p % vxnets
		// Keys of its own (no uniqueness by the server): the benchmark
		// times northd, which checks addresses itself.
		row := ovsdb.Row{"name": fmt.Sprintf("p%d", p), "mac": benchMAC(p), "ips": portIP(p, ports).String(),
			"mac_key": schema.NewScope(), "ip_key": schema.NewScope()}
		if tweak != nil {
			tweak(p, row)
		}
		txn = append(txn, ovsdb.Operation{Op: "insert", Table: "Port", UUIDName: "pt" + strconv.Itoa(p), Row: row})
		portRefs[vx] = append(portRefs[vx], ovsdb.UUID{GoUUID: "pt" + strconv.Itoa(p)})
	}
	for i := 0; i < vxnets; i++ {
		txn = append(txn, ovsdb.Operation{Op: "insert", Table: "Vxnet", UUIDName: vxUUIDs[i], Row: ovsdb.Row{
			"name": fmt.Sprintf("x%d", i), "cidr": portCIDR(i, ports).String(),
			"ports": ovsdb.OvsSet{GoSet: portRefs[i]}}})
	}
	txn = append(txn, ovsdb.Operation{Op: "mutate", Table: "VPC", Where: []ovsdb.Condition{{Column: "_uuid", Function: "==", Value: ovsdb.UUID{GoUUID: "vpc"}}},
		Mutations: []ovsdb.Mutation{{Column: "vxnets", Mutator: "insert", Value: ovsdb.OvsSet{GoSet: vxRefs}}}})
	return append(txn, bumpCfg()...)
}

// A VPC of more ports than 253 /24s hold (64,009) takes /22s instead,
// in 10.16.0.0/14: up to 258,566 ports, apart from the programming
// benchmark's own vxnets (benchCIDR(253), benchCIDR(254)).
func wideTopology(ports int) bool { return ports > 253*253 }

// portCIDR is vxnet i's subnet in a topology of ports ports.
func portCIDR(i, ports int) netip.Prefix {
	if !wideTopology(ports) {
		return benchCIDR(i)
	}
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(16 + i>>6), byte((i & 63) << 2), 0}), 22)
}

// portIP is port p's address in a topology of ports ports.
func portIP(p, ports int) netip.Addr {
	if !wideTopology(ports) {
		return benchIP(p)
	}
	vx, host := p%253, 2+p/253
	c := portCIDR(vx, ports).Addr().As4()
	return netip.AddrFrom4([4]byte{c[0], c[1], c[2] + byte(host>>8), byte(host)})
}

// benchCIDR is vxnet i's subnet in the benchmark topology.
func benchCIDR(i int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24)
}

// benchIP is port p's address in the benchmark topology.
func benchIP(p int) netip.Addr {
	vx, host := p%253, 2+p/253
	return netip.AddrFrom4([4]byte{10, byte(vx >> 8), byte(vx), byte(host)})
}

// benchMAC is port p's MAC in the benchmark topology.
func benchMAC(p int) string {
	vx, host := p%253, 2+p/253
	return fmt.Sprintf("02:00:%02x:%02x:%02x:%02x", vx>>8, vx&255, host>>8, host&255)
}

// insertFloor times ovsdb-server alone committing what northd writes in a
// bulk load (the same flows and bindings, in transactions of the same
// size, into an empty southbound): the datapaths are inserted and every
// transaction is encoded before the clock starts, so nothing but the
// server's work and the socket is timed.
func insertFloor(ctx context.Context, env Env, ports int) (float64, error) {
	dir, err := os.MkdirTemp(env.TmpDir, "bf")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	c := &central.Config{RunDir: dir}
	defer c.Stop()
	if err := c.Start(ctx); err != nil {
		return 0, err
	}
	conn, err := jsonrpc.Dial(c.Remote(central.Databases[1]), nil)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	transact := func(txn []byte) ([]floorResult, error) {
		var res []floorResult
		if err := conn.CallRaw(ctx, "transact", txn, &res); err != nil {
			return nil, err
		}
		for _, r := range res {
			if r.Error != "" {
				return nil, fmt.Errorf("floor transaction refused: %s: %s", r.Error, r.Details)
			}
		}
		return res, nil
	}
	enc := newRawTxn(schema.SBName)
	for i := 0; i < 253; i++ {
		enc.add(ovsdb.Operation{Op: "insert", Table: "Datapath", Row: ovsdb.Row{"name": fmt.Sprintf("vxnet:x%d", i),
			"type": "vxnet", "tunnel_key": i + 1, "vpc": 1, "gateway_mac": "0a:c0:00:00:00:01"}})
	}
	res, err := transact(enc.done())
	if err != nil {
		return 0, err
	}
	var dps []ovsdb.UUID
	for _, r := range res {
		dps = append(dps, ovsdb.UUID{GoUUID: r.UUID[1]})
	}
	// The same number of logical flows as northd writes (16 per vxnet),
	// then the bindings, in chunks of northd's default size.
	const chunk = 20000
	var txns [][]byte
	enc = newRawTxn(schema.SBName)
	for i, dp := range dps {
		for f := 0; f < 16; f++ {
			enc.add(ovsdb.Operation{Op: "insert", Table: "Logical_Flow", Row: ovsdb.Row{"datapath": dp, "vpc": 1,
				"stage": "port_sec", "priority": f, "match": fmt.Sprintf("ip4.dst == 10.%d.%d.0/24", i>>8, i&255), "actions": "next;"}})
		}
	}
	for p := 0; p < ports; p++ {
		vx, host := p%253, 2+p/253
		enc.add(ovsdb.Operation{Op: "insert", Table: "Port_Binding", Row: ovsdb.Row{
			"logical_port": fmt.Sprintf("p%d", p), "datapath": dps[vx], "vpc": 1, "tunnel_key": host,
			"mac": fmt.Sprintf("02:00:%02x:%02x:%02x:%02x", vx>>8, vx&255, host>>8, host&255),
			"ips": ovsdb.OvsSet{GoSet: []any{fmt.Sprintf("10.%d.%d.%d", vx>>8, vx&255, host)}}, "port_security": true}})
		if enc.n == chunk {
			txns = append(txns, enc.done())
			enc = newRawTxn(schema.SBName)
		}
	}
	if enc.n > 0 {
		txns = append(txns, enc.done())
	}
	start := time.Now()
	for _, txn := range txns {
		if _, err := transact(txn); err != nil {
			return 0, err
		}
	}
	return time.Since(start).Seconds(), nil
}

type floorResult struct {
	UUID    []string `json:"uuid"`
	Error   string   `json:"error"`
	Details string   `json:"details"`
}

// rawTxn encodes the params of one transact request.
type rawTxn struct {
	b []byte
	n int
}

// newRawTxn starts a transaction on db, encoded as it is built.
func newRawTxn(db string) *rawTxn {
	return &rawTxn{b: []byte(`["` + db + `"`)}
}

func (t *rawTxn) add(op ovsdb.Operation) {
	t.b = append(t.b, ',')
	b, err := jsonrpc.AppendOperation(t.b, &op)
	if err != nil {
		panic(err) // the floor's own operations always encode
	}
	t.b = b
	t.n++
}

func (t *rawTxn) done() []byte { return append(t.b, ']') }

func bumpCfg() []ovsdb.Operation {
	return []ovsdb.Operation{
		{Op: "mutate", Table: "NB_Global", Where: ops.All(), Mutations: []ovsdb.Mutation{{Column: "nb_cfg", Mutator: "+=", Value: 1}}},
		{Op: "select", Table: "NB_Global", Where: ops.All(), Columns: []string{"nb_cfg"}},
	}
}

func cfgOf(res []ovsdb.OperationResult) int {
	last := res[len(res)-1]
	if len(last.Rows) == 1 {
		if v, ok := last.Rows[0]["nb_cfg"].(float64); ok {
			return int(v)
		}
		if v, ok := last.Rows[0]["nb_cfg"].(int); ok {
			return v
		}
	}
	return 0
}

func commit(ctx context.Context, s *ops.Session, txn []ovsdb.Operation) (time.Time, error) {
	_, err := ops.Transact(ctx, s, txn...)
	return time.Now(), err
}

func commit2(ctx context.Context, s *ops.Session, txn []ovsdb.Operation) ([]ovsdb.OperationResult, error) {
	return ops.Transact(ctx, s, txn...)
}

func waitSbCfg(ctx context.Context, s *ops.Session, cfg int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		gs, _ := ops.List[nbdb.NBGlobal](ctx, s, nil)
		if len(gs) == 1 && gs[0].SbCfg >= cfg {
			return nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("sb_cfg did not reach %d within %v", cfg, timeout)
}

func countRows(ctx context.Context, remote string) (map[string]int, error) {
	conn, err := jsonrpc.Dial(remote, nil)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	out := map[string]int{}
	for _, t := range []string{"Datapath", "Port_Binding", "Logical_Flow"} {
		var res []struct {
			Count int `json:"count"`
		}
		// A no-op mutate reports how many rows match.
		if err := conn.Call(ctx, "transact", []any{"Courier_Southbound",
			map[string]any{"op": "mutate", "table": t, "where": []any{}, "mutations": []any{}}}, &res); err != nil {
			return nil, err
		}
		out[t] = res[0].Count
	}
	return out, nil
}

// peakRSS reads a process's high-water resident set, in MiB.
func peakRSS(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.Fields(v)[0])
			return float64(kb) / 1024
		}
	}
	return 0
}

// freeAddr is a loopback address with a port free right now.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// scrapePhases reads the sums of northd's courier_northd_run_phase_seconds
// by phase, waiting for the metrics server to come up.
// scrapeValue reads the value of the first metrics line that starts with
// prefix (name, labels and the space), or 0 if there is none yet.
func scrapeValue(ctx context.Context, addr, prefix string) (float64, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, prefix); ok {
			return strconv.ParseFloat(rest, 64)
		}
	}
	return 0, nil
}

func scrapePhases(ctx context.Context, addr string) (map[string]float64, error) {
	const prefix = `courier_northd_run_phase_seconds_sum{phase="`
	var lastErr error
	for i := 0; i < 100; i++ {
		if i > 0 {
			time.Sleep(50 * time.Millisecond)
		}
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/metrics", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			lastErr = err
			continue
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			lastErr = err
			continue
		}
		out := map[string]float64{}
		for _, line := range strings.Split(string(b), "\n") {
			rest, ok := strings.CutPrefix(line, prefix)
			if !ok {
				continue
			}
			phase, val, ok := strings.Cut(rest, `"} `)
			if v, err := strconv.ParseFloat(val, 64); ok && err == nil {
				out[phase] = v
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("northd metrics at %s: %v", addr, lastErr)
}
