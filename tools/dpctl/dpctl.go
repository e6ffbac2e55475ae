// Package dpctl is courier-dpctl: what a host's data plane holds and has
// done, read from its pinned maps (so it works while hostd is down).
package dpctl

import (
	"fmt"
	"io"
	"net/netip"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/courier-sdn/courier/dataplane"
	"github.com/courier-sdn/courier/internal/cliargs"
	"github.com/courier-sdn/courier/internal/version"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/tools/sandbox"
)

// App is the courier-dpctl command line.
func App(out io.Writer) *cli.App {
	open := func(cx *cli.Context) (*dataplane.Datapath, error) {
		pinRoot, _ := where(cx)
		return dataplane.OpenPinned(pinRoot, cx.String("chassis"))
	}
	with := func(fn func(d *dataplane.Datapath, w io.Writer) error) cli.ActionFunc {
		return func(cx *cli.Context) error {
			if err := cliargs.None(cx); err != nil {
				return err
			}
			d, err := open(cx)
			if err != nil {
				return err
			}
			defer d.ClosePinned()
			return fn(d, out)
		}
	}
	list := func(title string, get func(*dataplane.Dump) []string) cli.ActionFunc {
		return with(func(d *dataplane.Datapath, w io.Writer) error {
			dump, err := d.Dump()
			if err != nil {
				return err
			}
			for _, l := range get(dump) {
				fmt.Fprintln(w, l)
			}
			if len(get(dump)) == 0 {
				fmt.Fprintf(w, "(no %s)\n", title)
			}
			return nil
		})
	}
	return &cli.App{
		Name:            "courier-dpctl",
		Version:         version.String(),
		Usage:           "show what a host's eBPF data plane holds and has done",
		HideHelpCommand: true,
		Action:          cliargs.UnknownCommand,
		Description: `Reads the maps courier-hostd pinned under PIN-ROOT/CHASSIS; works whether or
not hostd runs, from any network namespace. Only cache-flush writes (and monitor, which
switches drop reports on while it runs). In the sandbox, COURIER_RUNDIR is enough to find
every chassis.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "chassis", Usage: "the chassis whose data plane to read", Required: true},
			&cli.StringFlag{Name: "pin-root", Usage: "where hostd pins (see courier-hostd --pin-root; default: the sandbox's, else " + dataplane.DefaultPinRoot + ")"},
			&cli.StringFlag{Name: "run-dir", EnvVars: []string{"COURIER_RUNDIR"}, Value: ops.DefaultRunDir,
				Usage: "a sandbox's run directory: find the chassis there"},
		},
		Commands: []*cli.Command{
			{Name: "ports", Usage: "VM ports (by host-side ifindex)", Action: list("ports", func(d *dataplane.Dump) []string { return d.Ports })},
			{Name: "vxnets", Usage: "vxnets and their flags", Action: list("vxnets", func(d *dataplane.Dump) []string { return d.Vxnets })},
			{Name: "vpcs", Usage: "VPCs and their flags", Action: list("VPCs", func(d *dataplane.Dump) []string { return d.VPCs })},
			{Name: "routes", Usage: "VPC routes", Action: list("routes", func(d *dataplane.Dump) []string { return d.Routes })},
			{Name: "hubs", Usage: "each VPC's hubs; when each hub and gateway last answered this host's probes, and whether the DVR passes over it", Action: with(hubs)},
			{Name: "locals", Usage: "addresses held by local ports", Action: list("local addresses", func(d *dataplane.Dump) []string { return d.Locals })},
			{Name: "eips", Usage: "EIPs of local ports and their networks' gateways; on a gateway, where each EIP's port is",
				Action: list("EIPs", func(d *dataplane.Dump) []string { return d.EIPs })},
			{Name: "cache", Usage: "learned direct paths, with age and hits", Action: with(cache)},
			{Name: "counters", Usage: "packet counters and drops by reason", Action: with(counters)},
			{Name: "sg", Usage: "security groups: local ports' identities, what identities mean, groups' rules (group numbers are hostd's, per VPC)", Action: with(sg)},
			{Name: "ct", Usage: "connections the security groups track, with who opened them and when they are forgotten unless renewed", Action: with(ct)},
			monitorCommand(out),
			{Name: "cache-flush", Usage: "forget learned paths (all, or to IP); their next packets go through a hub and are learned again",
				ArgsUsage: "[IP]", Action: func(cx *cli.Context) error {
					var ip netip.Addr
					if cx.NArg() > 1 {
						return fmt.Errorf("cache-flush takes at most one IP")
					}
					if cx.NArg() == 1 {
						a, err := netip.ParseAddr(cx.Args().First())
						if err != nil || !a.Is4() {
							return fmt.Errorf("cache-flush: %q is not an IPv4 address", cx.Args().First())
						}
						ip = a
					}
					pinRoot, _ := where(cx)
					n, err := dataplane.FlushPinnedCache(pinRoot, cx.String("chassis"), ip)
					if err != nil {
						return err
					}
					fmt.Fprintf(out, "forgot %d learned paths\n", n)
					return nil
				}},
		},
	}
}

func hubs(d *dataplane.Datapath, out io.Writer) error {
	dump, err := d.Dump()
	if err != nil {
		return err
	}
	for _, h := range dump.Hubs {
		fmt.Fprintln(out, h)
	}
	if len(dump.Hubs) == 0 {
		fmt.Fprintln(out, "(no hubs)")
	}
	states, err := d.HubStates()
	if err != nil {
		return unjudgedHubs(d, out, err)
	}
	for _, s := range states {
		fmt.Fprintf(out, "probe %s: last answered %s ago, %s\n", s.Addr, s.Ago.Round(time.Millisecond), hubVerdict(s))
	}
	return nil
}

// hubVerdict says what the DVR does with a hub or gateway it probes.
func hubVerdict(s dataplane.HubState) string {
	switch {
	case !s.Down:
		return "up"
	case s.Unused:
		return "down; none of this host's VPCs or networks sends through it"
	case len(s.Kept) == 0:
		return "down: the DVR passes over it"
	}
	return "down, yet the DVR still sends through it for " + strings.Join(s.Kept, ", ") + ": none of their hubs or gateways is up"
}

// unjudgedHubs lists the probes when whether a hub is down cannot be
// known (why: err).
func unjudgedHubs(d *dataplane.Datapath, out io.Writer, why error) error {
	seen, err := d.HubSeen()
	if err != nil {
		return err
	}
	var hs []netip.Addr
	for h := range seen {
		hs = append(hs, h)
	}
	sort.Slice(hs, func(i, j int) bool { return hs[i].Less(hs[j]) })
	for _, h := range hs {
		fmt.Fprintf(out, "probe %s: last answered %s ago, up or down unknown: %v\n", h, seen[h].Round(time.Millisecond), why)
	}
	return nil
}

func cache(d *dataplane.Datapath, out io.Writer) error {
	es, err := d.Cache()
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "VPC\tIP\tHOST\tVNI\tMAC\tAGE\tIDLE\tHITS")
	for _, e := range es {
		fmt.Fprintf(w, "%d\t%s\t%s\t%d\t%s\t%s\t%s\t%d\n", e.VPC, e.IP, e.VTEP, e.VNI, e.MAC,
			e.Age.Round(time.Millisecond), e.Idle.Round(time.Millisecond), e.Hits)
	}
	return w.Flush()
}

func counters(d *dataplane.Datapath, out io.Writer) error {
	cs, err := d.Counters()
	if err != nil {
		return err
	}
	ds, err := d.Drops()
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	print := func(kind string, m map[string]uint64) {
		var keys []string
		for k, v := range m {
			if v > 0 {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "%s\t%s\t%d\n", kind, k, m[k])
		}
	}
	fmt.Fprintln(w, "KIND\tNAME\tPACKETS")
	print("count", cs)
	print("drop", ds)
	w.Flush()
	if hist, err := d.LearnLatency(); err == nil {
		var parts []string
		for i, n := range hist {
			if n > 0 {
				parts = append(parts, fmt.Sprintf("<%dµs:%d", 2<<i, n))
			}
		}
		if len(parts) > 0 {
			fmt.Fprintf(out, "learning latency (first miss to learned entry): %s\n", strings.Join(parts, " "))
		}
	}
	return nil
}

// where says where the chassis's data plane is pinned, and in which
// network namespace its interfaces are ("" for this one): --pin-root,
// else the sandbox of --run-dir, else the default.
func where(cx *cli.Context) (pinRoot, netns string) {
	if p := cx.String("pin-root"); p != "" {
		return p, ""
	}
	if p, ns, ok := sandbox.Locate(ops.RunDir(cx.String("run-dir")), cx.String("chassis")); ok {
		return p, ns
	}
	return dataplane.DefaultPinRoot, ""
}

// Main runs courier-dpctl.
func Main(args []string) int {
	if err := App(os.Stdout).Run(args); err != nil {
		fmt.Fprintln(os.Stderr, "courier-dpctl:", err)
		return 1
	}
	return 0
}
