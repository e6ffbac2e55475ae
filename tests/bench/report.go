package bench

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/courier-sdn/courier/tools/sandbox"
)

// Report is everything one benchmark run measured.
type Report struct {
	Date        string             `json:"date"`
	Machine     Machine            `json:"machine"`
	Northd      []*NorthdResult    `json:"northd,omitempty"`
	Dataplane   *DataplaneResult   `json:"dataplane,omitempty"`
	Programming *ProgrammingResult `json:"programming,omitempty"`
	HostScale   []*HostScaleResult `json:"host_scale,omitempty"`
	State       *StateResult       `json:"host_state,omitempty"`
	Spine       *SpineResult       `json:"spine,omitempty"`
	VM          *VMResult          `json:"vm,omitempty"`
	CLI         *CLIResult         `json:"cli,omitempty"`
	SG          *SGResult          `json:"security_groups,omitempty"`
	SGProp      []*SGPropagation   `json:"security_group_propagation,omitempty"`
	Migrate     *MigrateResult     `json:"migrate,omitempty"`
	Conntrack   *CTResult          `json:"conntrack,omitempty"`
	EIP         *EIPResult         `json:"eip,omitempty"`
	SNAT        *SNATResult        `json:"snat,omitempty"`
	Errors      []string           `json:"errors,omitempty"`
}

// Machine describes where the numbers come from.
type Machine struct {
	Kernel string `json:"kernel"`
	CPUs   int    `json:"cpus"`
	CPU    string `json:"cpu"`
	MemGiB int    `json:"mem_gib"`
	Go     string `json:"go"`
	OVSDB  string `json:"ovsdb_server"`
}

func describe() Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := exec.Command("uname", "-r").Output(); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name\t: "); ok {
				m.CPU = v
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int
		fmt.Sscanf(strings.SplitN(string(b), "\n", 2)[0], "MemTotal: %d kB", &kb)
		m.MemGiB = kb / 1024 / 1024
	}
	if b, err := exec.Command("ovsdb-server", "--version").Output(); err == nil {
		m.OVSDB = strings.SplitN(strings.TrimSpace(string(b)), "\n", 2)[0]
	}
	return m
}

// Runner runs the selected benchmarks.
type Runner struct {
	Env         Env
	Only        []string
	NorthdSizes []int
	// NorthdRounds repeats each bulk load on fresh databases.
	NorthdRounds int
	// Rounds and Seconds shape the data plane benchmark: each round
	// measures every path once, each iperf3 run lasts Seconds.
	Rounds  int
	Seconds int
	// FIFO runs the data plane benchmark's iperf3 and sockperf under
	// SCHED_FIFO, for a machine shared with other work.
	FIFO bool
	// SpineBaseline is the build the spine benchmark times the programs
	// against (a git revision; "": BaselineRev).
	SpineBaseline string
	// The end-to-end benchmarks: programming latency with Present ports
	// declared, over Samples new ports; per-host state in a VPC of
	// StatePorts ports with StateHosts hosts of 20 VMs, 5 peers each.
	Present int
	Samples int
	BoundOn string // the chassis the present ports are requested on ("": unbound)
	// The host-side scale run: a VPC of each of ScalePorts ports, all
	// bound, churned at each of ScaleRates changes a second, with
	// ScaleSamples new ports measured per rate.
	ScalePorts   []int
	ScaleRates   []int
	ScaleSamples int
	StatePorts   int
	StateHosts   int
	// The CLI benchmark: single commands at each of CLISizes ports,
	// CLISamples of each kind; a bulk load of CLIBulk ports.
	CLISizes   []int
	CLISamples int
	CLIBulk    int
	// The security group benchmark's propagation: VPCs of each of
	// SGPorts ports in SGGroups groups, SGSamples changes of each kind.
	SGPorts   []int
	SGGroups  int
	SGSamples int
	// Migrations is the live migration benchmark's moves of each kind,
	// alternately hv1 -> hv2 and back (0: 20, ten each way).
	Migrations int
	// MigrateQEMUDefaults migrates with QEMU's own migration parameters
	// rather than the sandbox's.
	MigrateQEMUDefaults bool
}

func (r *Runner) want(name string) bool {
	for _, o := range r.Only {
		if strings.TrimSpace(o) == name {
			return true
		}
	}
	return false
}

// Run runs and writes the report into dir.
func (r *Runner) Run(ctx context.Context, dir string) error {
	rep := &Report{Date: time.Now().UTC().Format("2006-01-02T15-04-05Z"), Machine: describe()}
	r.runSections(ctx, rep)
	if err := rep.write(dir); err != nil {
		return err
	}
	if len(rep.Errors) > 0 {
		return fmt.Errorf("%d benchmark(s) failed: %s", len(rep.Errors), strings.Join(rep.Errors, "; "))
	}
	return nil
}

// record keeps a section's result, or its error in the report.
func record[T any](rep *Report, label string, res T, err error, set func(T)) {
	if err != nil {
		rep.Errors = append(rep.Errors, fmt.Sprintf("%s: %v", label, err))
		return
	}
	set(res)
}

// runSections runs the sections asked for, in order.
func (r *Runner) runSections(ctx context.Context, rep *Report) {
	log := r.Env.Log
	if r.want("northd") {
		for _, n := range r.NorthdSizes {
			log.Info("northd benchmark", "ports", n)
			res, err := Northd(ctx, r.Env, n, max(1, r.NorthdRounds))
			record(rep, fmt.Sprintf("northd %d", n), res, err, func(x *NorthdResult) { rep.Northd = append(rep.Northd, x) })
		}
	}
	if r.want("dataplane") {
		log.Info("data plane benchmark", "rounds", r.Rounds, "seconds", r.Seconds)
		res, err := Dataplane(r.Env, r.Rounds, r.Seconds, fifo(r.FIFO))
		record(rep, "dataplane", res, err, func(x *DataplaneResult) { rep.Dataplane = x })
	}
	if r.want("sg") {
		r.runSG(ctx, rep)
	}
	if r.want("ct") {
		log.Info("connection tracking benchmark", "rounds", max(5, r.Rounds))
		res, err := Conntrack(max(5, r.Rounds))
		record(rep, "conntrack", res, err, func(x *CTResult) { rep.Conntrack = x })
	}
	if r.want("e2e") || r.want("programming") {
		log.Info("programming latency benchmark", "present", r.Present, "samples", r.Samples)
		res, err := Programming(ctx, r.Env, r.Present, r.Samples, r.BoundOn)
		record(rep, "programming latency", res, err, func(x *ProgrammingResult) { rep.Programming = x })
	}
	if r.want("hostscale") {
		for _, n := range r.ScalePorts {
			log.Info("host scale benchmark", "ports", n, "rates", r.ScaleRates, "samples", r.ScaleSamples)
			res, err := HostScale(ctx, r.Env, n, r.ScaleSamples, r.ScaleRates)
			record(rep, fmt.Sprintf("host scale at %d ports", n), res, err, func(x *HostScaleResult) { rep.HostScale = append(rep.HostScale, x) })
		}
	}
	if r.want("e2e") || r.want("state") {
		log.Info("per-host state benchmark", "ports", r.StatePorts, "hosts", r.StateHosts)
		res, err := HostState(ctx, r.Env, r.StatePorts, r.StateHosts, 20, 5)
		record(rep, "per-host state", res, err, func(x *StateResult) { rep.State = x })
	}
	if r.want("spine") {
		log.Info("pipeline spine benchmark", "rounds", max(5, r.Rounds))
		res, err := Spine(ctx, r.Env, max(5, r.Rounds), cmp.Or(r.SpineBaseline, BaselineRev))
		record(rep, "spine", res, err, func(x *SpineResult) { rep.Spine = x })
	}
	if r.want("vm") {
		log.Info("what a VM sees benchmark", "rounds", max(3, r.Rounds))
		res, err := VM(ctx, r.Env, max(3, r.Rounds), 300, r.Seconds)
		record(rep, "vm", res, err, func(x *VMResult) { rep.VM = x })
	}
	if r.want("migrate") {
		r.runMigrate(ctx, rep)
	}
	if r.want("eip") {
		log.Info("EIP benchmark", "rounds", max(3, r.Rounds), "seconds", r.Seconds)
		res, err := EIP(ctx, r.Env, max(3, r.Rounds), r.Seconds, 6)
		record(rep, "eip", res, err, func(x *EIPResult) { rep.EIP = x })
	}
	if r.want("snat") {
		log.Info("SNAT benchmark", "rounds", max(3, r.Rounds), "seconds", r.Seconds)
		res, err := SNAT(ctx, r.Env, max(3, r.Rounds), r.Seconds)
		record(rep, "snat", res, err, func(x *SNATResult) { rep.SNAT = x })
	}
	if r.want("cli") {
		log.Info("CLI benchmark", "sizes", r.CLISizes, "bulk", r.CLIBulk)
		res, err := CLI(ctx, r.Env, r.CLISizes, r.CLISamples, r.CLIBulk, max(2, r.Rounds))
		record(rep, "cli", res, err, func(x *CLIResult) { rep.CLI = x })
	}
}

// runMigrate runs the live migration benchmark.
func (r *Runner) runMigrate(ctx context.Context, rep *Report) {
	n := r.Migrations
	if n <= 0 {
		n = 20
	}
	r.Env.Log.Info("live migration benchmark", "migrations", n)
	var params map[string]any
	if r.MigrateQEMUDefaults {
		params = sandbox.QEMUDefaultMigrationParams()
	}
	res, err := Migrate(ctx, r.Env, n, params)
	record(rep, "migrate", res, err, func(x *MigrateResult) { rep.Migrate = x })
}

// write writes the report as JSON and Markdown into dir, and prints the
// Markdown.
func (rep *Report) write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(rep, "", "  ")
	base := filepath.Join(dir, rep.Date)
	if err := os.WriteFile(base+".json", b, 0o644); err != nil {
		return err
	}
	md := rep.Markdown()
	if err := os.WriteFile(base+".md", []byte(md), 0o644); err != nil {
		return err
	}
	fmt.Print(md)
	return nil
}

// runSG runs the security group benchmarks: the data plane's, then
// propagation at each of SGPorts (only that with --rounds 0).
func (r *Runner) runSG(ctx context.Context, rep *Report) {
	if r.Rounds > 0 {
		r.Env.Log.Info("security group benchmark", "rounds", r.Rounds, "seconds", r.Seconds)
		if res, err := SecurityGroups(r.Env, r.Rounds, r.Seconds); err != nil {
			rep.Errors = append(rep.Errors, fmt.Sprintf("security groups: %v", err))
		} else {
			rep.SG = res
		}
	}
	for _, n := range r.SGPorts {
		r.Env.Log.Info("security group propagation benchmark", "ports", n, "groups", r.SGGroups)
		if res, err := SGPropagate(ctx, r.Env, n, r.SGGroups, r.SGSamples); err != nil {
			rep.Errors = append(rep.Errors, fmt.Sprintf("security group propagation at %d ports: %v", n, err))
		} else {
			rep.SGProp = append(rep.SGProp, res)
		}
	}
}

// Markdown renders the report as a short document.
func (rep *Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Courier benchmark %s\n\n", rep.Date)
	m := rep.Machine
	fmt.Fprintf(&b, "Machine: %d CPUs (%s), %d GiB, kernel %s, %s, %s.\n\n", m.CPUs, m.CPU, m.MemGiB, m.Kernel, m.Go, m.OVSDB)
	if d := rep.Dataplane; d != nil && len(d.BelowTarget) > 0 {
		fmt.Fprintf(&b, "**Data plane below target on %d of its ratios** (%d of them in every round, where %.1f would by chance alone: %d ratios held to a target, %d rounds; listed in its section).\n\n",
			len(d.BelowTarget), d.EveryRound, d.ByChance, d.Gated, d.Rounds)
	}
	if e := rep.EIP; e != nil && len(e.BelowTarget) > 0 {
		fmt.Fprintf(&b, "**EIP path below target on %d of its ratios** (listed in its section).\n\n", len(e.BelowTarget))
	}
	if s := rep.SNAT; s != nil && len(s.BelowTarget) > 0 {
		fmt.Fprintf(&b, "**SNAT below target on %d of its targets** (listed in its section).\n\n", len(s.BelowTarget))
	}
	for _, h := range rep.HostScale {
		if len(h.BelowTarget) > 0 {
			fmt.Fprintf(&b, "**Host-side scale at %d ports below target on %d of its targets** (listed in its section).\n\n", h.Ports, len(h.BelowTarget))
		}
	}
	if len(rep.Northd) > 0 {
		fmt.Fprintf(&b, "## northd (one VPC, 253 vxnets)\n\n")
		fmt.Fprintf(&b, "| ports | NB commit s | commit→sb_cfg s (min–max) | ovsdb-server floor s | ratio | datapaths | bindings | logical flows | northd peak RSS MiB | add p50/p90/p99 ms | update p50/p90/p99 ms | delete p50/p90/p99 ms |\n")
		fmt.Fprintf(&b, "|---|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, r := range rep.Northd {
			lo, hi := spread(r.CompileRounds)
			fmt.Fprintf(&b, "| %d | %.2f | %.2f (%.2f–%.2f) | %.2f | %.2f | %d | %d | %d | %.0f | %.1f / %.1f / %.1f | %.1f / %.1f / %.1f | %.1f / %.1f / %.1f |\n",
				r.Ports, r.NBCommitSeconds, r.CompileSeconds, lo, hi, r.FloorSeconds, r.Ratio, r.SBRows["Datapath"], r.SBRows["Port_Binding"], r.SBRows["Logical_Flow"],
				r.NorthdPeakRSSMiB, r.Add.P50, r.Add.P90, r.Add.P99, r.Update.P50, r.Update.P90, r.Update.P99, r.Delete.P50, r.Delete.P90, r.Delete.P99)
		}
		fmt.Fprintf(&b, "\nnorthd's own account of the bulk load (median seconds; the rest of commit→sb_cfg is ovsdb-server sending the transaction and northd reading it), and the takeover: from killing the active northd (SIGKILL) to the standby acknowledging a new nb_cfg, the southbound unchanged:\n\n")
		fmt.Fprintf(&b, "| ports | wait | compile | write SB | write NB | takeover s |\n|---|---|---|---|---|---|\n")
		for _, r := range rep.Northd {
			p := r.NorthdPhases
			fmt.Fprintf(&b, "| %d | %.2f | %.2f | %.2f | %.2f | %.2f |\n", r.Ports, p["wait"], p["compile"], p["write_sb"], p["write_nb"], r.TakeoverSeconds)
		}
		fmt.Fprintf(&b, "\nTargets at 64,000 ports: commit→sb_cfg under 5 s; single-port p99 under 20 ms; logical flows the same at every size.\n")
		fmt.Fprintf(&b, "Each bulk load ran %d times on fresh databases; the table gives the median round (and the range) and the median floor.\n", len(rep.Northd[0].CompileRounds))
		fmt.Fprintf(&b, "The floor is ovsdb-server alone committing the same flows and bindings, in transactions of the same size, into an empty southbound, in this run: every transaction is encoded before the clock starts.\n")
		fmt.Fprintf(&b, "Nothing else subscribes to the southbound during the bulk load (the latency monitor opens after it); every subscriber to the bindings, such as a VPC's hubs, adds its share of ovsdb-server's work.\n\n")
	}
	if d := rep.Dataplane; d != nil {
		d.markdown(&b)
	}
	if s := rep.SG; s != nil {
		s.markdown(&b)
	}
	for _, s := range rep.SGProp {
		s.markdown(&b)
	}
	if c := rep.Conntrack; c != nil {
		c.markdown(&b)
	}
	if p := rep.Programming; p != nil {
		p.markdown(&b)
	}
	for _, h := range rep.HostScale {
		h.markdown(&b)
	}
	if s := rep.State; s != nil {
		s.markdown(&b)
	}
	if s := rep.Spine; s != nil {
		s.markdown(&b)
	}
	if c := rep.CLI; c != nil {
		c.markdown(&b)
	}
	if v := rep.VM; v != nil {
		v.markdown(&b)
	}
	if m := rep.Migrate; m != nil {
		m.markdown(&b)
	}
	if e := rep.EIP; e != nil {
		e.markdown(&b)
	}
	if s := rep.SNAT; s != nil {
		s.markdown(&b)
	}
	for _, e := range rep.Errors {
		fmt.Fprintf(&b, "- error: %s\n", e)
	}
	return b.String()
}

// spread is the smallest and largest of v.
func spread(v []float64) (lo, hi float64) {
	for i, x := range v {
		if i == 0 || x < lo {
			lo = x
		}
		if i == 0 || x > hi {
			hi = x
		}
	}
	return lo, hi
}
