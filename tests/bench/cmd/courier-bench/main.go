// Command courier-bench runs Courier's benchmarks and writes
// bench/results/<date>.json and a Markdown summary.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/courier-sdn/courier/tests/bench"
)

func main() {
	bin := flag.String("bin", "bin", "directory with Courier's binaries")
	out := flag.String("out", "bench/results", "directory for the results")
	only := flag.String("only", "northd,dataplane,sg,ct,e2e,hostscale,spine,vm,migrate,eip,snat,cli", "comma-separated benchmarks to run (e2e is programming and state; hostscale is #20's host-side scale run, a VPC with every port bound and held by its hubs, churned at several rates; sg is security groups; ct is connection tracking, Courier's table against the kernel's conntrack; eip is the internet to a VM by its EIP against VM to VM, and the loss when a gateway dies; snat is a VM without EIP to the internet by SNAT against VM to VM and the kernel's MASQUERADE (behind an overlay to a gateway: the target; and on a one-hop router), with new connections a second)")
	sizes := flag.String("northd-sizes", "1000,8000,64000", "port counts for the northd benchmark")
	northdRounds := flag.Int("northd-rounds", 5, "northd benchmark: bulk loads per size, each on fresh databases (the median is reported)")
	rounds := flag.Int("rounds", 3, "data plane benchmark: rounds over the five paths, each test on every path in turn (the EIP and SNAT benchmarks: interleaved rounds over their paths, at least 3)")
	seconds := flag.Int("seconds", 5, "data plane benchmark: seconds per iperf3 run")
	present := flag.Int("present", 8000, "programming latency: ports declared before measuring")
	samples := flag.Int("samples", 60, "programming latency: new ports measured")
	statePorts := flag.Int("state-ports", 64000, "per-host state: ports in the VPC")
	stateHosts := flag.Int("state-hosts", 50, "per-host state: hosts with VMs (besides two hubs)")
	boundOn := flag.String("present-bound-on", "", "programming latency: request the present ports on this chassis (hv1..hv4; no VM runs them) so that the hubs hold them all")
	qemuDefaults := flag.Bool("migrate-qemu-defaults", false, "live migration benchmark: QEMU's own migration parameters (downtime-limit 300 ms, max-bandwidth 128 MiB/s) instead of the sandbox's")
	migrations := flag.Int("migrations", 20, "live migration benchmark: moves of each kind, alternately hv1 -> hv2 and back")
	scalePorts := flag.String("scale-ports", "64000", "host scale: port counts of the VPC, one sandbox each")
	scaleRates := flag.String("churn", "20,50,100", "host scale: churn rates (port deletes, adds and moves a second), in turn on the same VPC")
	scaleSamples := flag.Int("scale-samples", 40, "host scale: new ports measured at each churn rate")
	cliSizes := flag.String("cli-sizes", "8000,64000,256000", "CLI benchmark: port counts at which single commands are timed")
	cliSamples := flag.Int("cli-samples", 20, "CLI benchmark: single commands timed per kind and size")
	cliBulk := flag.Int("cli-bulk", 64000, "CLI benchmark: ports in the bulk load")
	sgPorts := flag.String("sg-ports", "8000", "security group propagation: port counts of the VPC, one sandbox each")
	sgGroups := flag.Int("sg-groups", 100, "security group propagation: groups the ports are spread over")
	sgSamples := flag.Int("sg-samples", 30, "security group propagation: changes of each kind measured")
	fifoRun := flag.Bool("fifo", false, "data plane benchmark: run iperf3 and sockperf (client and server) under SCHED_FIFO (chrt -f 50), so that other work on a shared machine does not set the rate")
	debug := flag.Bool("debug", false, "log at debug level (each sample of the programming and host scale benchmarks)")
	spineBase := flag.String("spine-baseline", bench.BaselineRev, "spine benchmark: the git revision whose programs (dataplane/dvr_bpfel.o) this build's are timed against (an old one may no longer run on today's maps)")
	hold := flag.Bool("hold", false, "build the data plane benchmark's paths, print their namespaces and keep them until interrupted (for profiling); measure nothing")
	flag.Parse()
	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if *hold {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if err := bench.HoldDataplane(ctx, bench.Env{BinDir: *bin, Log: log}); err != nil {
			fmt.Fprintln(os.Stderr, "courier-bench:", err)
			os.Exit(1)
		}
		return
	}
	ns, cs, sgs := ints("--northd-sizes", *sizes), ints("--cli-sizes", *cliSizes), ints("--sg-ports", *sgPorts)
	sps, srs := ints("--scale-ports", *scalePorts), ints("--churn", *scaleRates)
	r := &bench.Runner{Env: bench.Env{BinDir: *bin, Log: log}, Only: strings.Split(*only, ","), NorthdSizes: ns, NorthdRounds: *northdRounds, Rounds: *rounds, Seconds: *seconds,
		Present: *present, Samples: *samples, StatePorts: *statePorts, StateHosts: *stateHosts,
		BoundOn: *boundOn, ScalePorts: sps, ScaleRates: srs, ScaleSamples: *scaleSamples, CLISizes: cs, CLISamples: *cliSamples, CLIBulk: *cliBulk,
		SGPorts: sgs, SGGroups: *sgGroups, SGSamples: *sgSamples, FIFO: *fifoRun, SpineBaseline: *spineBase,
		Migrations: *migrations, MigrateQEMUDefaults: *qemuDefaults}
	if err := r.Run(context.Background(), *out); err != nil {
		fmt.Fprintln(os.Stderr, "courier-bench:", err)
		os.Exit(1)
	}
}

// ints parses a comma-separated list of numbers, or exits.
func ints(flagName, list string) []int {
	var out []int
	for _, s := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			fmt.Fprintf(os.Stderr, "courier-bench: bad %s: %v\n", flagName, err)
			os.Exit(2)
		}
		out = append(out, n)
	}
	return out
}
