package bench

import (
	"fmt"
	"strings"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/courier-sdn/courier/dataplane"
)

// PathRuns is what Courier's programs cost in the real path for one
// operation (#21): every run of port_ingress and tunnel_ingress on both
// hosts during a connection-per-request test or a ping test, counted by
// the kernel while its program statistics are on (only for these runs),
// per operation, and their mean run time. BPF_PROG_TEST_RUN (ProgramNs)
// times one packet with the program's code and maps hot in cache; this
// is what a run costs between the work of a real connection.
type PathRuns struct {
	Path      string  `json:"path"`
	Op        string  `json:"op"` // "connection" or "ping"
	Ops       int     `json:"ops"`
	RunsPerOp float64 `json:"runs_per_op"`
	NsPerRun  float64 `json:"ns_per_run"`
}

// runsPerOp divides what the programs did between two readings (each
// summed over hosts and programs) by the operations done between them.
func runsPerOp(before, after ebpf.ProgramStats, ops int) (runs, ns float64) {
	n := after.RunCount - before.RunCount
	if ops <= 0 || n == 0 {
		return 0, 0
	}
	return float64(n) / float64(ops), float64(after.Runtime-before.Runtime) / float64(n)
}

// totalRuns sums the counts of both programs on every host in dps.
func totalRuns(dps map[string]*dataplane.Datapath) (ebpf.ProgramStats, error) {
	var sum ebpf.ProgramStats
	for h, d := range dps {
		runs, err := d.Runs()
		if err != nil {
			return sum, fmt.Errorf("%s: %w", h, err)
		}
		for _, r := range runs {
			sum.RunCount += r.RunCount
			sum.Runtime += r.Runtime
		}
	}
	return sum, nil
}

// programRuns measures PathRuns on (c) and (d), after the rounds: a
// connection-per-request test of seconds and 2,000 pings on each. The
// kernel's statistics are on for every program on the machine while it
// runs (each run then costs a clock read or two more), and off again
// when it returns, unless something else holds them on.
func programRuns(res *DataplaneResult, d *dpLab, seconds int) error {
	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		return fmt.Errorf("program statistics: %w", err)
	}
	defer stats.Close()
	for _, p := range d.paths[2:] {
		for _, op := range []string{"connection", "ping"} {
			before, err := totalRuns(d.dps)
			if err != nil {
				return err
			}
			var n int
			if op == "connection" {
				n, _, err = crrRun(p.client, p.dst, seconds)
			} else {
				var rtts []float64
				rtts, err = pingRTTs(p.client, p.dst, 2000)
				n = len(rtts)
			}
			if err != nil {
				return fmt.Errorf("%s, %s: %w", p.Name, op, err)
			}
			after, err := totalRuns(d.dps)
			if err != nil {
				return err
			}
			r := PathRuns{Path: p.Name, Op: op, Ops: n}
			r.RunsPerOp, r.NsPerRun = runsPerOp(before, after, n)
			res.Runs = append(res.Runs, r)
		}
	}
	return nil
}

func runsMarkdown(b *strings.Builder, runs []PathRuns) {
	if len(runs) == 0 {
		return
	}
	fmt.Fprintf(b, "\nCourier's programs in the real path (port_ingress and tunnel_ingress, both hosts; kernel program statistics on only for these runs, after the rounds):\n\n")
	fmt.Fprintf(b, "| path | operation | operations | program runs per operation | ns per run | program time per operation µs |\n|---|---|---|---|---|---|\n")
	for _, r := range runs {
		fmt.Fprintf(b, "| %s | %s | %d | %.1f | %.0f | %.1f |\n", r.Path, r.Op, r.Ops, r.RunsPerOp, r.NsPerRun, r.RunsPerOp*r.NsPerRun/1000)
	}
}
