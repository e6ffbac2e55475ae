// Package nbctl is courier-nbctl, the northbound's command line, modelled
// on ovn-nbctl: several commands separated by "--" commit as one
// transaction, every check runs before anything is sent, and --wait=sb or
// --wait=hv blocks until the change has reached the southbound or every
// live host.
package nbctl

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"github.com/urfave/cli/v2"

	"github.com/courier-sdn/courier/internal/pki"
	"github.com/courier-sdn/courier/internal/version"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema/nbdb"
	"github.com/courier-sdn/courier/tools/cmdline"
)

// Options are courier-nbctl's global options.
type Options struct {
	DB string
	// SB is the southbound, which show --runtime reads ("": not drawn).
	SB      string
	Wait    string // none, sb or hv
	Timeout time.Duration
	Format  string // table, list, csv or json (cmdline.Style)
	// FormatSet, NoHeadings and Bare complete the output's style.
	FormatSet, NoHeadings, Bare bool
	LeaderOnly                  bool
	// TLS is the client configuration for ssl: remotes (internal/pki).
	TLS *tls.Config
}

// App is the courier-nbctl command line.
func App(stdout io.Writer) *cli.App {
	cmds := commands()
	app := &cli.App{
		Name:      "courier-nbctl",
		Version:   version.String(),
		Usage:     "declare VPCs, vxnets, ports and routes in Courier's northbound database",
		UsageText: "courier-nbctl [OPTIONS] COMMAND [ARG...] [-- [OPTIONS] COMMAND [ARG...]]...",
		Description: `Commands separated by "--" are checked in order against the database
and committed as one transaction: if any of them fails, nothing is written.
An error names the offending value and exits with status 1.

With --wait=sb the command returns once northd has compiled the change into
the southbound database; with --wait=hv, once every live host has applied
it to its kernel.

While the database is unreachable, or a cluster has no leader, the command
keeps trying: for --timeout if given, else until it succeeds, as ovn-nbctl
does. A transaction that goes unanswered (the server died) or whose rows
changed after they were read is run again from a fresh read, so a change
is never applied twice; if the unanswered one did commit, the command
succeeds without running again.

Commands:
` + cmdline.Usage(cmds),
		HideHelpCommand: true,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "db", Usage: "northbound `REMOTES` (unix:PATH, tcp:IP:PORT, ssl:IP:PORT; comma-separated for a cluster)", EnvVars: []string{"COURIER_NB_DB"}},
			&cli.StringFlag{Name: "run-dir", Usage: "find nb.sock in `DIR` when --db is not given", EnvVars: []string{"COURIER_RUNDIR"}, Value: ops.DefaultRunDir},
			&cli.StringFlag{Name: "sb", Usage: "southbound `REMOTES` that show --runtime reads (default: $COURIER_SB_DB, else the run directory's sb.sock)"},
			&cli.StringFlag{Name: "wait", Value: "none", Usage: "after committing, wait for `none`, sb (northd has compiled it) or hv (every live host applied it)"},
			&cli.DurationFlag{Name: "timeout", Usage: "give up after `DURATION` (0: keep trying until the database answers)"},
			&cli.BoolFlag{Name: "no-leader-only", Usage: "also accept a clustered server that is not the leader"},
		}, append(cmdline.OutputFlags(), pki.Flags()...)...),
		Action: func(cx *cli.Context) error {
			style, err := cmdline.StyleFrom(cx)
			if err != nil {
				return err
			}
			o := Options{DB: cx.String("db"), Wait: cx.String("wait"), Timeout: cx.Duration("timeout"),
				Format: style.Format, FormatSet: style.FormatSet, NoHeadings: style.NoHeadings, Bare: style.Bare,
				LeaderOnly: !cx.Bool("no-leader-only")}
			if o.DB == "" {
				o.DB = ops.DefaultNBRemote(ops.RunDir(cx.String("run-dir")))
			}
			if o.SB = cx.String("sb"); o.SB == "" {
				o.SB = ops.DefaultSBRemote(ops.RunDir(cx.String("run-dir")))
			}
			if cx.Args().Len() == 0 {
				return cli.ShowAppHelp(cx)
			}
			creds, err := pki.FromFlags(cx)
			if err != nil {
				return err
			}
			if err := pki.Require(creds, strings.Split(o.DB, ",")); err != nil {
				return err
			}
			o.TLS = creds.TLSConfig()
			return Run(context.Background(), o, cx.Args().Slice(), stdout)
		},
	}
	return app
}

// Run executes one invocation: its commands, one transaction, the wait.
func Run(ctx context.Context, o Options, args []string, stdout io.Writer) error {
	switch o.Wait {
	case "none", "sb", "hv":
	default:
		return fmt.Errorf("--wait=%s: want none, sb or hv", o.Wait)
	}
	if err := cmdline.CheckFormat(o.Format); err != nil {
		return err
	}
	remotes, err := ops.ParseRemotes(o.DB)
	if err != nil {
		return err
	}
	table := map[string]*command{}
	for _, c := range commands() {
		table[c.Name] = c
	}
	var invs []parsed
	tables := map[string]bool{nbdb.NBGlobalTable: true}
	for _, words := range cmdline.Split(args) {
		inv, cmd, err := cmdline.Parse("courier-nbctl", table, words)
		var help *cmdline.HelpRequest
		if errors.As(err, &help) {
			_, err = io.WriteString(stdout, help.Text)
			return err
		}
		if err != nil {
			return err
		}
		invs = append(invs, parsed{inv, cmd})
		for _, t := range cmd.Tables {
			tables[t] = true
		}
	}
	if o.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Timeout)
		defer cancel()
	}
	w := rowsWanted(invs, o.TLS)
	c := &conn{o: o, remotes: remotes, monitor: monitored(tables, w), want: w,
		backoff: cmdline.RetryBackoff()}
	sess, a, err := c.commit(ctx, invs, o.Wait != "none")
	if err != nil {
		return err
	}
	if err := a.out.Write(stdout); err != nil || a.cfg == 0 {
		if sess != nil {
			sess.Close()
		}
		return err
	}
	if sess == nil { // the bulk path committed: a session to wait on
		c.monitor = []client.MonitorOption{client.WithTable(&nbdb.NBGlobal{})}
		if sess, err = c.open(ctx); err != nil {
			return fmt.Errorf("lost the database while waiting for nb_cfg %d: %w", a.cfg, err)
		}
	}
	return c.waitFor(ctx, sess, o.Wait, a.cfg)
}

type parsed struct {
	inv *cmdline.Invocation
	cmd *command
}

// execute runs the commands against st, read just before, and commits.
// It returns the nb_cfg to wait for (0 when not waiting).
func execute(ctx context.Context, sess *ops.Session, st *state, invs []parsed, wait bool, out *cmdline.Output) (int, error) {
	syncOnly := false
	for _, p := range invs {
		if err := p.cmd.Run(st, p.inv, out); err != nil {
			return 0, err
		}
		if p.cmd.Name == "sync" {
			syncOnly = true
		}
	}
	st.ops = append(st.ops, st.compact.mutations()...)
	if st.db == nil { // the generic commands' results are found by index
		st.ops = mergeInserts(st.ops)
	}
	guards := len(st.claims.guards)
	st.ops = st.claims.wrap(st.ops)
	cfgIndex := -1
	if wait && (len(st.ops) > 0 || syncOnly) {
		if st.global == nil {
			return 0, errors.New("the NB_Global row is missing; run courier-ctl start or courier-nbctl init")
		}
		// Written out rather than through libovsdb's mapper, the same
		// operations: the bulk path (bulk.go) has no libovsdb client.
		g := st.global
		g.NbCfgTimestamp = int(time.Now().UnixMilli())
		st.ops = append(st.ops,
			ovsdb.Operation{Op: ovsdb.OperationUpdate, Table: nbdb.NBGlobalTable, Where: ops.WhereUUID(g.UUID),
				Row: ovsdb.Row{"nb_cfg_timestamp": g.NbCfgTimestamp}},
			ovsdb.Operation{Op: ovsdb.OperationMutate, Table: nbdb.NBGlobalTable, Where: ops.WhereUUID(g.UUID),
				Mutations: []ovsdb.Mutation{{Column: "nb_cfg", Mutator: ovsdb.MutateOperationAdd, Value: 1}}},
			ovsdb.Operation{Op: ovsdb.OperationSelect, Table: nbdb.NBGlobalTable,
				Where: ops.All(), Columns: []string{"nb_cfg"}})
		cfgIndex = len(st.ops) - 1
	}
	opsCommitted.Add(int64(len(st.ops) + st.compact.count()))
	if hook := beforeCommit.Swap(nil); hook != nil {
		(*hook)()
	}
	if st.compact != nil {
		return st.commitCompact(ctx, guards, cfgIndex)
	}
	res, err := ops.Transact(ctx, st.transactor(sess), st.ops...)
	if err != nil {
		return 0, st.claimError(ctx, existsError(err))
	}
	if st.db != nil {
		st.db.Committed(res[guards:])
	}
	if cfgIndex < 0 {
		return 0, nil
	}
	rows := res[cfgIndex].Rows
	if len(rows) != 1 {
		return 0, errors.New("could not read back nb_cfg")
	}
	switch v := rows[0]["nb_cfg"].(type) {
	case float64:
		return int(v), nil
	case int:
		return v, nil
	default:
		return 0, fmt.Errorf("unexpected nb_cfg value %v", v)
	}
}

var tableModels = map[string]model.Model{
	nbdb.NBGlobalTable: &nbdb.NBGlobal{}, nbdb.VPCTable: &nbdb.VPC{}, nbdb.VxnetTable: &nbdb.Vxnet{},
	nbdb.PortTable: &nbdb.Port{}, nbdb.RouteTable: &nbdb.Route{},
	nbdb.SecurityGroupTable: &nbdb.SecurityGroup{}, nbdb.SecurityGroupRuleTable: &nbdb.SecurityGroupRule{},
	nbdb.ExternalNetworkTable: &nbdb.ExternalNetwork{}, nbdb.EIPTable: &nbdb.EIP{}, nbdb.SNATTable: &nbdb.SNAT{},
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// DocApp is App with its commands spelled out for the generated man
// page and completions (doc/).
func DocApp() *cli.App {
	app := App(io.Discard)
	app.Commands = cmdline.CLICommands(commands())
	return app
}

// Main runs courier-nbctl and returns its exit status.
func Main(args []string) int {
	// One invocation lives for one transaction: collecting its garbage
	// at the default pace was a fifth of the CPU of a chain of thousands
	// of port-adds, and at GOGC=400 still a tenth. It collects none until
	// its heap reaches 1 GiB (a chain of 2,000 port-adds peaks at 30 MB
	// resident; reading every port of 256,000 may come near); GOGC or
	// GOMEMLIMIT, if set, still decide.
	if os.Getenv("GOGC") == "" && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetGCPercent(-1)
		debug.SetMemoryLimit(1 << 30)
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	app := App(os.Stdout)
	if err := app.Run(cmdline.GlobalArgs(app.Flags, args)); err != nil {
		msg := strings.TrimSpace(err.Error())
		if msg != "" {
			fmt.Fprintln(os.Stderr, "courier-nbctl:", msg)
		}
		if ec, ok := err.(cli.ExitCoder); ok {
			return ec.ExitCode()
		}
		return 1
	}
	return 0
}
