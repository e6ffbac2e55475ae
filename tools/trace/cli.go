// Package trace is courier-trace: what Courier does to a packet, stage by
// stage, as ovn-trace shows it for OVN. Logically, from the southbound's
// flows; or live (--chassis), by running each chassis's real DVR programs
// on the packet against its own maps (BPF_PROG_RUN), changing nothing.
package trace

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/courier-sdn/courier/dataplane"
	"github.com/courier-sdn/courier/internal/pki"
	"github.com/courier-sdn/courier/internal/version"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/tools/sandbox"
)

// Options are a trace's settings.
type Options struct {
	SB      []string
	Creds   *pki.Credentials
	Chassis string // live: the chassis the packet starts on
	Sites   Sites  // live: where data planes are
	Timeout time.Duration
}

// Run traces a microflow.
func Run(ctx context.Context, o Options, microflow string) (*Trace, error) {
	if o.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Timeout)
		defer cancel()
	}
	port, p, err := parseMicroflow(microflow)
	if err != nil {
		return nil, err
	}
	w, err := readWorld(ctx, o.SB, o.Creds.TLSConfig(), port)
	if err != nil {
		return nil, err
	}
	if err := p.complete(w); err != nil {
		return nil, err
	}
	var tr *Trace
	if o.Chassis == "" {
		tr = logical(w, p)
	} else if tr, err = live(w, p, o.Sites, o.Chassis); err != nil {
		return nil, err
	}
	tr.Microflow = microflow
	return tr, nil
}

// SandboxSites finds the data planes of the sandbox in runDir, each in
// its host's namespace; nil if runDir holds no sandbox.
func SandboxSites(runDir string) Sites {
	if _, err := sandbox.Open(runDir); err != nil {
		return nil
	}
	return func(chassis string) (Site, bool) {
		pinRoot, ns, ok := sandbox.Locate(runDir, chassis)
		return Site{PinRoot: pinRoot, NetNS: ns}, ok
	}
}

// App is the courier-trace command line.
func App(stdout io.Writer) *cli.App {
	return &cli.App{
		Name:      "courier-trace",
		Version:   version.String(),
		Usage:     "show what Courier does to a packet, stage by stage",
		UsageText: "courier-trace [OPTIONS] MICROFLOW",
		Description: `MICROFLOW says which packet, in the logical flow language, as ovn-trace's
does: a conjunction of field == value, with inport naming the port it
comes from, for example

  courier-trace 'inport == "vm1" && ip4.dst == 10.0.2.10 && tcp.dst == 80'
  courier-trace 'inport == "vm1" && arp.tpa == 10.0.1.1'

What it does not say comes from the port: its MAC and first IP as the
source, the destination's MAC (or the gateway's, for another vxnet), TTL
64, an ICMP echo request unless a TCP or UDP field is given. Spoof a
source with eth.src or ip4.src.

Without --chassis the trace is logical: it walks the southbound's logical
flows, printing for each stage the flow that matched (priority, match,
actions, and the northd source line that built it), then on to the
chassis the packet is sent to.

With --chassis NAME (the chassis the port is on) it is live: it runs that
chassis's real DVR program on the packet through BPF_PROG_RUN, against its
own maps, and prints what each stage decided; then the tunnel program of
each host the packet is sent to, when that host's data plane is on this
machine (every one, in the sandbox). A live trace changes nothing: no
counter, learned path, budget, event or learn message. It needs root. In
the sandbox, COURIER_RUNDIR is enough to find every chassis; elsewhere it
runs on the hypervisor itself, with --pin-root.`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "db", Usage: "southbound `REMOTES` (comma-separated)", EnvVars: []string{"COURIER_SB_DB"}},
			&cli.StringFlag{Name: "run-dir", Usage: "find sb.sock, and a sandbox, in `DIR`", EnvVars: []string{"COURIER_RUNDIR"}, Value: ops.DefaultRunDir},
			&cli.StringFlag{Name: "chassis", Usage: "trace live, starting on chassis `NAME`"},
			&cli.StringFlag{Name: "pin-root", Value: dataplane.DefaultPinRoot, Usage: "live, outside a sandbox: data planes pinned under `DIR`"},
			&cli.BoolFlag{Name: "detailed", Usage: "every stage and what decided it (the default)"},
			&cli.BoolFlag{Name: "summary", Usage: "one line per chassis"},
			&cli.BoolFlag{Name: "minimal", Usage: "the outcome only"},
			&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: "text", Usage: "text or json"},
			&cli.DurationFlag{Name: "timeout", Value: 30 * time.Second, Usage: "give up after `DURATION`"},
		}, pki.Flags()...),
		Action: func(cx *cli.Context) error { return action(cx, stdout) },
	}
}

func action(cx *cli.Context, stdout io.Writer) error {
	switch {
	case cx.NArg() == 0:
		return fmt.Errorf("give a MICROFLOW, for example 'inport == \"vm1\" && ip4.dst == 10.0.2.10'")
	case cx.NArg() > 1:
		return fmt.Errorf("unexpected argument %q after the microflow (quote the microflow as one argument)", cx.Args().Get(1))
	}
	level := Detailed
	for _, l := range []string{Summary, Minimal} {
		if cx.Bool(l) {
			level = l
		}
	}
	if f := cx.String("format"); f != "text" && f != "json" {
		return fmt.Errorf("--format %q: want text or json", f)
	}
	db := cx.String("db")
	if db == "" {
		db = ops.DefaultSBRemote(ops.RunDir(cx.String("run-dir")))
	}
	sb, err := ops.ParseRemotes(db)
	if err != nil {
		return err
	}
	creds, err := pki.FromFlags(cx)
	if err != nil {
		return err
	}
	if err := pki.Require(creds, sb); err != nil {
		return err
	}
	o := Options{SB: sb, Creds: creds, Chassis: cx.String("chassis"), Timeout: cx.Duration("timeout")}
	if o.Chassis != "" {
		if o.Sites = SandboxSites(ops.RunDir(cx.String("run-dir"))); o.Sites == nil {
			o.Sites = LocalSites(cx.String("pin-root"))
		}
	}
	tr, err := Run(context.Background(), o, cx.Args().First())
	if err != nil {
		return err
	}
	return tr.Write(stdout, level, strings.ToLower(cx.String("format")))
}
