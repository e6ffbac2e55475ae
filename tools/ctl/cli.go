package ctl

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/courier-sdn/courier/internal/central"
	"github.com/courier-sdn/courier/internal/cliargs"
	"github.com/courier-sdn/courier/internal/dbconf"
	"github.com/courier-sdn/courier/internal/pki"
	"github.com/courier-sdn/courier/internal/version"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema"
)

// The central daemons' metrics addresses when courier-ctl is not told
// others. A second run directory on the same machine must choose its own
// (--northd-metrics, --southd-metrics) or none.
const (
	DefaultNorthdMetrics = "127.0.0.1:9650"
	DefaultSouthdMetrics = "127.0.0.1:9651"
)

// startFlags are the flags of the commands that start services.
func startFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "nb-listen", Usage: "also listen for northbound clients on `REMOTE` (ptcp:PORT[:IP], or with --tls pssl:PORT[:IP]); repeatable"},
		&cli.StringSliceFlag{Name: "sb-listen", Usage: "also listen for southbound clients on `REMOTE`; with --tls, pssl: listeners are the hypervisors' (role " + schema.RoleChassis + "); repeatable"},
		&cli.BoolFlag{Name: "tls", Usage: "serve the databases over mutual TLS with role-based access control (default listeners: " +
			"northbound pssl:6641:127.0.0.1, southbound pssl:6642:127.0.0.1 for hypervisors and pssl:6645:127.0.0.1 for northd and southd)"},
		&cli.StringFlag{Name: "pki-dir", Usage: "with --tls, the PKI `DIR` (courier-ctl pki); the CA and the servers' and daemons' certificates are created there if missing",
			EnvVars: []string{"COURIER_PKI_DIR"}, Value: pki.DefaultDir},
		&cli.StringFlag{Name: "sb-central-listen", Value: "pssl:6645:127.0.0.1",
			Usage: "with --tls, where northd and southd reach the southbound (`REMOTE`, role " + schema.RoleCentral + "); never where hypervisors can reach it"},
		&cli.BoolFlag{Name: "no-daemons", Usage: "start the databases only, not courier-northd and courier-southd"},
		&cli.StringFlag{Name: "northd-metrics", Value: DefaultNorthdMetrics,
			Usage: "courier-northd serves Prometheus metrics on `ADDR` (host:port; empty: none); each run directory of a machine needs its own"},
		&cli.StringFlag{Name: "southd-metrics", Value: DefaultSouthdMetrics,
			Usage: "courier-southd serves Prometheus metrics on `ADDR` (host:port; empty: none)"},
		&cli.StringFlag{Name: "nb-remotes", Usage: "the daemons connect to the northbound at `REMOTES`, comma-separated " +
			"(default: this run directory's nb.sock); a cluster member lists every member's, its own included"},
		&cli.StringFlag{Name: "sb-remotes", Usage: "the daemons connect to the southbound at `REMOTES` (as --nb-remotes)"},
	}
}

// App is the courier-ctl command line.
func App() *cli.App {
	return &cli.App{
		Name:    "courier-ctl",
		Version: version.String(),
		Action:  cliargs.UnknownCommand,
		Usage:   "start, stop and inspect Courier's central services",
		Description: `courier-ctl runs the northbound and southbound ovsdb-servers and the
central daemons (courier-northd, courier-southd) in a run directory, as
ovn-ctl does for OVN. Database files are created with ovsdb-tool when
missing and converted when the schema is newer than the file.

The run directory holds nb.sock and sb.sock; courier-nbctl and
courier-sbctl find them through --run-dir or COURIER_RUNDIR.

Across machines, "start --tls" serves both databases over mutual TLS
with role-based access control: a CA and certificates in --pki-dir (see
"courier-ctl pki"), the listeners in the databases' own Connection tables
(courier-nbctl and courier-sbctl set-connection change them), hypervisors
on the southbound's --sb-listen with the role courier-chassis, northd and
southd on --sb-central-listen with courier-central.

For several machines, make each database a Raft cluster: run
"cluster-create" in the first member's run directory and "cluster-join"
in two more, then point clients at all members, for example
  --db unix:/run/c1/nb.sock,unix:/run/c2/nb.sock,unix:/run/c3/nb.sock
and give each member's daemons every member too (--nb-remotes,
--sb-remotes), or they stop working when that member's servers stop.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "run-dir", Usage: "sockets, pid files and logs live in `DIR`", EnvVars: []string{"COURIER_RUNDIR"}, Value: ops.DefaultRunDir},
			&cli.StringFlag{Name: "db-dir", Usage: "database files live in `DIR` (default: the run directory)", EnvVars: []string{"COURIER_DBDIR"}},
			&cli.StringFlag{Name: "ovsdb-allocator", Value: central.AllocatorAuto, EnvVars: []string{"COURIER_OVSDB_ALLOCATOR"},
				Usage: "run ovsdb-server with `MALLOC`: auto (jemalloc when libjemalloc.so.2 is installed), jemalloc (required) or system; jemalloc cuts ovsdb-server's CPU for bulk transactions by about 40%"},
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "log what is done"},
		},
		Commands: []*cli.Command{
			{
				Name:   "start",
				Usage:  "create missing databases and start the servers and daemons",
				Before: cliargs.None,
				Flags:  startFlags(),
				Action: withConfig(func(c *central.Config, cx *cli.Context) error {
					return c.Start(context.Background())
				}),
			},
			pkiCommand(),
			{
				Name:   "stop",
				Usage:  "stop the daemons and the servers of the run directory",
				Before: cliargs.None,
				Action: withConfig(func(c *central.Config, cx *cli.Context) error {
					return c.Stop()
				}),
			},
			{
				Name:   "status",
				Usage:  "show which services of the run directory are running",
				Before: cliargs.None,
				Action: withConfig(status),
			},
			{
				Name:      "cluster-create",
				Usage:     "create the first member of a Raft cluster of each database and start it",
				ArgsUsage: " ",
				Before:    cliargs.None,
				Flags: append([]cli.Flag{
					&cli.StringFlag{Name: "nb-raft", Usage: "this member's northbound Raft `ADDRESS` (tcp:IP:PORT)", Required: true},
					&cli.StringFlag{Name: "sb-raft", Usage: "this member's southbound Raft `ADDRESS` (tcp:IP:PORT)", Required: true},
				}, startFlags()...),
				Action: withConfig(func(c *central.Config, cx *cli.Context) error {
					return c.ClusterCreate(context.Background(), map[string]string{"nb": cx.String("nb-raft"), "sb": cx.String("sb-raft")})
				}),
			},
			{
				Name:   "cluster-join",
				Usage:  "join this run directory to existing Raft clusters and start it",
				Before: cliargs.None,
				Flags: append([]cli.Flag{
					&cli.StringFlag{Name: "nb-raft", Usage: "this member's northbound Raft `ADDRESS` (tcp:IP:PORT)", Required: true},
					&cli.StringFlag{Name: "sb-raft", Usage: "this member's southbound Raft `ADDRESS`", Required: true},
					&cli.StringSliceFlag{Name: "nb-peer", Usage: "Raft `ADDRESS` of an existing northbound member; repeatable", Required: true},
					&cli.StringSliceFlag{Name: "sb-peer", Usage: "Raft `ADDRESS` of an existing southbound member; repeatable", Required: true},
				}, startFlags()...),
				Action: withConfig(func(c *central.Config, cx *cli.Context) error {
					return c.ClusterJoin(context.Background(),
						map[string]string{"nb": cx.String("nb-raft"), "sb": cx.String("sb-raft")},
						map[string][]string{"nb": cx.StringSlice("nb-peer"), "sb": cx.StringSlice("sb-peer")})
				}),
			},
		},
	}
}

// status is "courier-ctl status": exit status 3 (LSB's "not running")
// when a service is down.
func status(c *central.Config, _ *cli.Context) error {
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SERVICE\tSTATE\tPID\tDETAIL")
	down := 0
	for _, s := range c.Status() {
		state, pid := "stopped", "-"
		if s.Running {
			state, pid = "running", fmt.Sprint(s.PID)
		} else {
			down++
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", s.Name, state, pid, s.Detail)
	}
	w.Flush()
	if down > 0 {
		return cli.Exit("", 3)
	}
	return nil
}

// withConfig is an Action running fn on the configuration its flags say.
func withConfig(fn func(c *central.Config, cx *cli.Context) error) cli.ActionFunc {
	return func(cx *cli.Context) error {
		c, err := configFrom(cx)
		if err != nil {
			return err
		}
		return fn(c, cx)
	}
}

func configFrom(cx *cli.Context) (*central.Config, error) {
	level := slog.LevelWarn
	if cx.Bool("verbose") {
		level = slog.LevelInfo
	}
	c := &central.Config{
		RunDir:    cx.String("run-dir"),
		DBDir:     cx.String("db-dir"),
		Listen:    map[string][]string{"nb": cx.StringSlice("nb-listen"), "sb": cx.StringSlice("sb-listen")},
		Allocator: cx.String("ovsdb-allocator"),
		Log:       slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})),
	}
	if !cx.Bool("no-daemons") {
		c.Daemons = central.Daemons(cx.String("northd-metrics"), cx.String("southd-metrics"))
	}
	if cx.Bool("tls") {
		if err := tlsFromFlags(c, cx); err != nil {
			return nil, err
		}
	}
	c.DaemonRemotes = map[string][]string{}
	for _, d := range central.Databases {
		if v := cx.String(d.Short + "-remotes"); v != "" {
			r, err := ops.ParseRemotes(v)
			if err != nil {
				return nil, fmt.Errorf("--%s-remotes: %w", d.Short, err)
			}
			c.DaemonRemotes[d.Short] = r
		}
	}
	return c, nil
}

// Main runs the command line and returns the exit code.
func Main(args []string) int {
	if err := App().Run(args); err != nil {
		if ec, ok := err.(cli.ExitCoder); ok {
			if msg := strings.TrimSpace(ec.Error()); msg != "" {
				fmt.Fprintln(os.Stderr, "courier-ctl:", msg)
			}
			return ec.ExitCode()
		}
		fmt.Fprintln(os.Stderr, "courier-ctl:", err)
		return 1
	}
	return 0
}

// tlsFromFlags turns --tls, --pki-dir and the listen flags into the TLS
// configuration: pssl: listeners move into the databases (Connection
// rows), the rest stays on ovsdb-server's command line.
func tlsFromFlags(c *central.Config, cx *cli.Context) error {
	c.PKIDir = cx.String("pki-dir")
	c.Connections = map[string][]dbconf.Listener{}
	role := map[string]string{"nb": "", "sb": schema.RoleChassis}
	for _, d := range central.Databases {
		var plain []string
		for _, l := range c.Listen[d.Short] {
			if !strings.HasPrefix(l, "pssl:") {
				plain = append(plain, l)
				continue
			}
			if _, err := dbconf.ParseListeners([]string{l}, false); err != nil {
				return fmt.Errorf("--%s-listen: %w", d.Short, err)
			}
			c.Connections[d.Short] = append(c.Connections[d.Short], dbconf.Listener{Target: l, Role: role[d.Short]})
		}
		c.Listen[d.Short] = plain
	}
	def := central.DefaultConnections()
	if len(c.Connections["nb"]) == 0 {
		c.Connections["nb"] = def["nb"]
	}
	if len(c.Connections["sb"]) == 0 {
		c.Connections["sb"] = def["sb"][:1]
	}
	central := cx.String("sb-central-listen")
	if _, err := dbconf.ParseListeners([]string{central}, false); err != nil || !strings.HasPrefix(central, "pssl:") {
		return fmt.Errorf("--sb-central-listen %q: want pssl:PORT[:IP]", central)
	}
	c.Connections["sb"] = append(c.Connections["sb"], dbconf.Listener{Target: central, Role: schema.RoleCentral})
	return nil
}
