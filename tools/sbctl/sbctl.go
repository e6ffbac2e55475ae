// Package sbctl is courier-sbctl: a view of the southbound for operators,
// in the manner of ovn-sbctl. It shows what northd compiled, what southd
// decided and what each host reported. What it writes: the database's
// own listeners and TLS files (set-connection, set-ssl: internal/dbconf),
// the rows of a chassis that is gone (chassis-del), and whatever an
// operator writes with the generic commands (tools/dbcmd).
package sbctl

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
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
	"github.com/courier-sdn/courier/pipeline"
	"github.com/courier-sdn/courier/schema"
	"github.com/courier-sdn/courier/schema/sbdb"
	"github.com/courier-sdn/courier/tools/cmdline"
	"github.com/courier-sdn/courier/tools/dbcmd"
)

// view is the southbound rows an invocation needs.
type view struct {
	ctx context.Context
	c   client.Client
	ops []ovsdb.Operation // what the commands write, committed as one transaction
	db  *dbcmd.DB         // the generic commands' view, made when first needed
}

// generic is the generic commands' view of the southbound (tools/dbcmd).
func (v *view) generic() (*dbcmd.DB, error) {
	if v.db == nil {
		s, err := Schema()
		if err != nil {
			return nil, err
		}
		v.db = dbcmd.New(v.ctx, s, v.c, &v.ops)
	}
	return v.db, nil
}

// Schema is the southbound's schema as the generic commands read it: a
// binding is named by its logical port.
func Schema() (*dbcmd.Schema, error) {
	return dbcmd.ParseSchema(schema.SB, map[string]string{sbdb.PortBindingTable: "logical_port"})
}

func list[T any, PT ops.Row[T]](v *view) []PT {
	rows, _ := ops.List[T, PT](v.ctx, v.c, nil)
	return rows
}

type command = cmdline.Command[*view]

var (
	tChassis = sbdb.ChassisTable
	tPriv    = sbdb.ChassisPrivateTable
	tDP      = sbdb.DatapathTable
	tPB      = sbdb.PortBindingTable
	tLF      = sbdb.LogicalFlowTable
	tHub     = sbdb.HubTable
	tLearned = sbdb.LearnedBindingTable
	tGlobal  = sbdb.SBGlobalTable
)

func commands() []*command {
	return append([]*command{
		{Name: "show", Summary: "print every chassis with its encap IP, roles, liveness and bound ports, or draw them with the VPCs' hubs", Max: 0,
			Flags: []cmdline.Flag{{Name: "format", Arg: "text|dot|svg", Usage: "dot: a Graphviz graph; svg: drawn by Graphviz's dot"},
				{Name: "runtime", Usage: "with dot or svg, also draw what hosts learned (accepted learned bindings)"}},
			Tables: []string{tChassis, tPriv, tPB, tDP, tHub, tLearned}, Run: cmdShow},
		{Name: "chassis-list", Summary: "list chassis", Max: 0,
			Tables: []string{tChassis, tPriv}, Run: cmdChassisList},
		{Name: "datapath-list", Summary: "list datapaths (one per VPC and per vxnet)", Max: 0,
			Tables: []string{tDP}, Run: cmdDatapathList},
		{Name: "binding-list", Summary: "list port bindings", Max: 0,
			Flags:  []cmdline.Flag{{Name: "chassis", Arg: "NAME", Usage: "only ports bound to or requested on this chassis"}},
			Tables: []string{tPB, tDP}, Run: cmdBindingList},
		{Name: "lflow-list", Args: "[DATAPATH]", Summary: "list logical flows, per datapath, in the order the pipeline evaluates them", Max: 1,
			Flags:  []cmdline.Flag{{Name: "uuid", Usage: "show each flow's UUID"}},
			Tables: []string{tLF, tDP}, Run: cmdLflowList},
		{Name: "learned-list", Summary: "list bindings learned by hosts from traffic", Max: 0,
			Tables: []string{tLearned}, Run: cmdLearnedList},
		{Name: "hub-list", Summary: "list the hubs southd assigned to each VPC", Max: 0,
			Tables: []string{tHub, tChassis, tDP}, Run: cmdHubList},
		{Name: "chassis-del", Args: "CHASSIS", Summary: "delete a chassis that is gone (its Chassis and Chassis_Private rows): southd then moves its hubs and ports",
			Min: 1, Max: 1, Flags: []cmdline.Flag{{Name: "if-exists", Usage: "do nothing if there is no such chassis"}},
			Tables: []string{tChassis, tPriv}, Run: cmdChassisDel},
	}, append(connCommands(), dbcmd.Commands(func(v *view) (*dbcmd.DB, error) { return v.generic() })...)...)
}

func cmdShow(v *view, inv *cmdline.Invocation, out *cmdline.Output) error {
	if f := inv.Value("format"); f != "" && f != "text" {
		return drawShow(v, f, inv.Has("runtime"), out)
	}
	priv := map[string]*sbdb.ChassisPrivate{}
	for _, p := range list[sbdb.ChassisPrivate](v) {
		priv[p.Name] = p
	}
	bound := map[string][]string{}
	for _, pb := range list[sbdb.PortBinding](v) {
		if pb.Chassis != nil {
			bound[*pb.Chassis] = append(bound[*pb.Chassis], pb.LogicalPort+upNote(pb.Up))
		}
	}
	chs := list[sbdb.Chassis](v)
	sort.Slice(chs, func(i, j int) bool { return chs[i].Name < chs[j].Name })
	var b strings.Builder
	for _, c := range chs {
		roles := strings.Join(c.Roles, ",")
		if roles == "" {
			roles = "-"
		}
		fmt.Fprintf(&b, "Chassis %s\n    hostname: %s\n    encap vxlan ip: %s\n    roles: %s\n", c.Name, c.Hostname, c.EncapIP, roles)
		if p := priv[c.Name]; p != nil {
			fmt.Fprintf(&b, "    state: %s, nb_cfg %d\n", aliveText(p.Alive), p.NbCfg)
			for _, k := range sortedKeys(p.Status) {
				fmt.Fprintf(&b, "    status %s: %s\n", k, p.Status[k])
			}
		}
		ports := bound[c.Name]
		sort.Strings(ports)
		for _, p := range ports {
			fmt.Fprintf(&b, "    Port_Binding %s\n", p)
		}
	}
	out.Text(b.String())
	return nil
}

func upNote(up *bool) string {
	if up != nil && *up {
		return ""
	}
	return " (down)"
}

func aliveText(a *bool) string {
	switch {
	case a == nil:
		return "unknown"
	case *a:
		return "alive"
	default:
		return "dead"
	}
}

func cmdChassisList(v *view, _ *cmdline.Invocation, out *cmdline.Output) error {
	priv := map[string]*sbdb.ChassisPrivate{}
	for _, p := range list[sbdb.ChassisPrivate](v) {
		priv[p.Name] = p
	}
	var rows [][]any
	for _, c := range list[sbdb.Chassis](v) {
		state, cfg := "unknown", any(nil)
		if p := priv[c.Name]; p != nil {
			state, cfg = aliveText(p.Alive), p.NbCfg
		}
		rows = append(rows, []any{c.Name, c.EncapIP, c.Roles, state, cfg})
	}
	out.Table([]string{"NAME", "ENCAP_IP", "ROLES", "STATE", "NB_CFG"}, rows)
	return nil
}

func cmdChassisDel(v *view, inv *cmdline.Invocation, _ *cmdline.Output) error {
	name := inv.Args[0]
	found := false
	for _, t := range []string{tChassis, tPriv} {
		var n int
		if t == tChassis {
			n = len(slices.DeleteFunc(list[sbdb.Chassis](v), func(c *sbdb.Chassis) bool { return c.Name != name }))
		} else {
			n = len(slices.DeleteFunc(list[sbdb.ChassisPrivate](v), func(c *sbdb.ChassisPrivate) bool { return c.Name != name }))
		}
		if n > 0 {
			found = true
			v.ops = append(v.ops, ovsdb.Operation{Op: ovsdb.OperationDelete, Table: t,
				Where: []ovsdb.Condition{{Column: "name", Function: ovsdb.ConditionEqual, Value: name}}})
		}
	}
	if !found && !inv.Has("if-exists") {
		return fmt.Errorf("no chassis named %q", name)
	}
	return nil
}

func cmdDatapathList(v *view, _ *cmdline.Invocation, out *cmdline.Output) error {
	var rows [][]any
	for _, d := range list[sbdb.Datapath](v) {
		rows = append(rows, []any{d.Name, d.Type, d.TunnelKey, d.Vpc,
			cmdline.Opt(deref(d.Cidr)), cmdline.Opt(deref(d.GatewayIP)), d.GatewayMAC})
	}
	out.Table([]string{"NAME", "TYPE", "KEY", "VPC", "CIDR", "GATEWAY", "GATEWAY_MAC"}, rows)
	return nil
}

func cmdBindingList(v *view, inv *cmdline.Invocation, out *cmdline.Output) error {
	dps := map[string]*sbdb.Datapath{}
	for _, d := range list[sbdb.Datapath](v) {
		dps[d.UUID] = d
	}
	only := inv.Value("chassis")
	var rows [][]any
	for _, pb := range list[sbdb.PortBinding](v) {
		if only != "" && deref(pb.Chassis) != only && deref(pb.RequestedChassis) != only {
			continue
		}
		dp := "?"
		if d := dps[pb.Datapath]; d != nil {
			dp = d.Name
		}
		rows = append(rows, []any{pb.LogicalPort, dp, pb.TunnelKey, pb.MAC, pb.IPs, pb.VirtualIPs,
			cmdline.Opt(deref(pb.RequestedChassis)), cmdline.Opt(deref(pb.Chassis)), pb.Up != nil && *pb.Up})
	}
	out.Table([]string{"PORT", "DATAPATH", "KEY", "MAC", "IPS", "VIPS", "REQUESTED", "CHASSIS", "UP"}, rows)
	return nil
}

func cmdLflowList(v *view, inv *cmdline.Invocation, out *cmdline.Output) error {
	dps := map[string]*sbdb.Datapath{}
	for _, d := range list[sbdb.Datapath](v) {
		dps[d.UUID] = d
	}
	byDP := map[string][]*sbdb.LogicalFlow{}
	for _, f := range list[sbdb.LogicalFlow](v) {
		byDP[f.Datapath] = append(byDP[f.Datapath], f)
	}
	var keys []string
	for k := range byDP {
		keys = append(keys, k)
	}
	name := func(u string) string {
		if d := dps[u]; d != nil {
			return d.Name
		}
		return u
	}
	sort.Slice(keys, func(i, j int) bool { return name(keys[i]) < name(keys[j]) })
	var b strings.Builder
	found := false
	for _, k := range keys {
		d := dps[k]
		if len(inv.Args) == 1 && (d == nil || d.Name != inv.Args[0]) {
			continue
		}
		found = true
		flows := byDP[k]
		sort.Slice(flows, func(i, j int) bool {
			si, _ := pipeline.ByName(flows[i].Stage)
			sj, _ := pipeline.ByName(flows[j].Stage)
			if si.ID != sj.ID {
				return si.ID < sj.ID
			}
			if flows[i].Priority != flows[j].Priority {
				return flows[i].Priority > flows[j].Priority
			}
			return flows[i].Match < flows[j].Match
		})
		key := ""
		if d != nil {
			key = fmt.Sprintf(" (%s %d)", d.Type, d.TunnelKey)
		}
		fmt.Fprintf(&b, "Datapath: %s%s\n", name(k), key)
		for _, f := range flows {
			st, _ := pipeline.ByName(f.Stage)
			id := ""
			if inv.Has("uuid") {
				id = "uuid=" + f.UUID[:8] + ", "
			}
			src := ""
			if s := f.ExternalIDs["source"]; s != "" {
				src = " [" + s + "]"
			}
			fmt.Fprintf(&b, "  %stable=%d (%-10s), priority=%-5d, match=(%s), action=(%s)%s\n", id, st.ID, f.Stage, f.Priority, f.Match, f.Actions, src)
		}
	}
	if len(inv.Args) == 1 && !found {
		return fmt.Errorf("no logical flows for datapath %q (see datapath-list)", inv.Args[0])
	}
	out.Text(b.String())
	return nil
}

func cmdLearnedList(v *view, _ *cmdline.Invocation, out *cmdline.Output) error {
	now := time.Now().UnixMilli()
	var rows [][]any
	for _, l := range list[sbdb.LearnedBinding](v) {
		age := float64(now-int64(l.Timestamp)) / 1000
		rows = append(rows, []any{l.Vpc, l.IP, l.MAC, l.LogicalPort, l.Chassis, l.Kind, l.Seq,
			cmdline.Shown{Text: fmt.Sprintf("%.1fs", age), V: age}})
	}
	out.Table([]string{"VPC", "IP", "MAC", "PORT", "CHASSIS", "KIND", "SEQ", "AGE"}, rows)
	return nil
}

func cmdHubList(v *view, _ *cmdline.Invocation, out *cmdline.Output) error {
	vpcName := map[int]string{}
	for _, d := range list[sbdb.Datapath](v) {
		if d.Type == pipeline.DPVPC {
			vpcName[d.TunnelKey] = d.Name
		}
	}
	encap := map[string]string{}
	for _, c := range list[sbdb.Chassis](v) {
		encap[c.Name] = c.EncapIP
	}
	var rows [][]any
	for _, h := range list[sbdb.Hub](v) {
		chs := append([]string{}, h.Chassis...)
		sort.Strings(chs)
		var parts []string
		for _, c := range chs {
			parts = append(parts, fmt.Sprintf("%s(%s)", c, dash(encap[c])))
		}
		rows = append(rows, []any{h.Vpc, cmdline.Opt(vpcName[h.Vpc]), cmdline.Shown{Text: dash(strings.Join(parts, " ")), V: chs}})
	}
	out.Table([]string{"VPC", "DATAPATH", "HUBS"}, rows)
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func sortedKeys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

var tableModels = map[string]model.Model{
	tGlobal:  &sbdb.SBGlobal{},
	tChassis: &sbdb.Chassis{}, tPriv: &sbdb.ChassisPrivate{}, tDP: &sbdb.Datapath{},
	tPB: &sbdb.PortBinding{}, tLF: &sbdb.LogicalFlow{}, tHub: &sbdb.Hub{}, tLearned: &sbdb.LearnedBinding{},
}

// App is the courier-sbctl command line.
func App(stdout io.Writer) *cli.App {
	cmds := commands()
	return &cli.App{
		Name:            "courier-sbctl",
		Version:         version.String(),
		Usage:           "inspect Courier's southbound database",
		UsageText:       "courier-sbctl [OPTIONS] COMMAND [ARG...] [-- COMMAND [ARG...]]...",
		HideHelpCommand: true,
		Description: "Views of what northd compiled, what southd decided and what hosts reported; the " +
			"southbound's own listeners and TLS files; chassis-del for a chassis that is gone; and the generic " +
			"database commands (list, find, get, set, ...) of ovn-sbctl.\n\nCommands:\n" + cmdline.Usage(cmds),
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "db", Usage: "southbound `REMOTES` (comma-separated)", EnvVars: []string{"COURIER_SB_DB"}},
			&cli.StringFlag{Name: "run-dir", Usage: "find sb.sock in `DIR` when --db is not given", EnvVars: []string{"COURIER_RUNDIR"}, Value: ops.DefaultRunDir},
			&cli.DurationFlag{Name: "timeout", Value: 30 * time.Second, Usage: "give up after `DURATION`"},
		}, append(cmdline.OutputFlags(), pki.Flags()...)...),
		Action: func(cx *cli.Context) error {
			if cx.Args().Len() == 0 {
				return cli.ShowAppHelp(cx)
			}
			db := cx.String("db")
			if db == "" {
				db = ops.DefaultSBRemote(ops.RunDir(cx.String("run-dir")))
			}
			creds, err := pki.FromFlags(cx)
			if err != nil {
				return err
			}
			if err := pki.Require(creds, strings.Split(db, ",")); err != nil {
				return err
			}
			style, err := cmdline.StyleFrom(cx)
			if err != nil {
				return err
			}
			return RunWith(context.Background(), Options{DB: db, TLS: creds.TLSConfig(), Style: style, Timeout: cx.Duration("timeout")},
				cx.Args().Slice(), stdout)
		},
	}
}

// Options are courier-sbctl's global options.
type Options struct {
	DB      string
	TLS     *tls.Config // for ssl: remotes
	Style   cmdline.Style
	Timeout time.Duration
}

// Run executes commands against the southbound at db (tlsc for ssl:).
func Run(ctx context.Context, db string, tlsc *tls.Config, format string, timeout time.Duration, args []string, stdout io.Writer) error {
	return RunWith(ctx, Options{DB: db, TLS: tlsc, Style: cmdline.Style{Format: format}, Timeout: timeout}, args, stdout)
}

// RunWith executes commands against the southbound.
func RunWith(ctx context.Context, o Options, args []string, stdout io.Writer) error {
	db, tlsc, timeout := o.DB, o.TLS, o.Timeout
	if o.Style.Format == "" {
		o.Style.Format = cmdline.FormatTable
	}
	if err := cmdline.CheckFormat(o.Style.Format); err != nil {
		return err
	}
	remotes, err := ops.ParseRemotes(db)
	if err != nil {
		return err
	}
	table := map[string]*command{}
	for _, c := range commands() {
		table[c.Name] = c
	}
	var invs []parsed
	tables := map[string]bool{}
	for _, words := range cmdline.Split(args) {
		inv, cmd, err := cmdline.Parse("courier-sbctl", table, words)
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
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	dbModel, err := sbdb.FullDatabaseModel()
	if err != nil {
		return err
	}
	var monitor []client.MonitorOption
	for t := range tables {
		monitor = append(monitor, client.WithTable(tableModels[t]))
	}
	// Reading is always safe to retry: wait out a restart or an election
	// within the timeout, and read again from a new session if one ends
	// while its rows are being read.
	for {
		sess, err := ops.OpenRetrying(ctx, dbModel, ops.SessionOptions{Remotes: remotes, Monitor: monitor, Logger: slog.Default(), TLS: tlsc},
			cmdline.RetryBackoff(), nil)
		if ops.IsWrongDatabase(err) {
			return err
		}
		if err != nil {
			return fmt.Errorf("cannot reach the southbound database at %s (set --db, COURIER_SB_DB or COURIER_RUNDIR): %w", db, err)
		}
		out, blind, err := read(ctx, sess, invs, o.Style)
		sess.Close()
		if errors.Is(err, ops.ErrNoConnection) && blind {
			return fmt.Errorf("%w (the change may or may not have been applied)", err)
		}
		if errors.Is(err, ops.ErrNoConnection) && ctx.Err() == nil {
			continue
		}
		if err != nil {
			return err
		}
		return out.Write(stdout)
	}
}

type parsed struct {
	inv *cmdline.Invocation
	cmd *command
}

// read runs the commands against sess's rows, and commits what they
// write.
// blind: the generic commands wrote, which is not safe to run twice.
func read(ctx context.Context, sess *ops.Session, invs []parsed, style cmdline.Style) (out *cmdline.Output, blind bool, err error) {
	ctx, cancel := sess.Context(ctx)
	defer cancel()
	v := &view{ctx: ctx, c: sess.Client}
	out = &cmdline.Output{Style: style}
	for _, p := range invs {
		if err := p.cmd.Run(v, p.inv, out); err != nil {
			return nil, false, err
		}
	}
	select {
	case <-sess.Done():
		return nil, false, fmt.Errorf("%w: the session ended while reading", ops.ErrNoConnection)
	default:
	}
	// What the specific commands write (listeners, TLS files) sets
	// values whole: committing it again after a lost answer changes
	// nothing more. The generic commands' writes may not be.
	blind = v.db != nil && v.db.Writes
	res, err := ops.Transact(ctx, sess, v.ops...)
	if err != nil {
		return nil, blind, err
	}
	if v.db != nil {
		v.db.Committed(res)
	}
	return out, blind, nil
}

// DocApp is App with its commands spelled out for the generated man
// page and completions (doc/).
func DocApp() *cli.App {
	app := App(io.Discard)
	app.Commands = cmdline.CLICommands(commands())
	return app
}

// Main runs courier-sbctl and returns its exit status.
func Main(args []string) int {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	app := App(os.Stdout)
	if err := app.Run(cmdline.GlobalArgs(app.Flags, args)); err != nil {
		fmt.Fprintln(os.Stderr, "courier-sbctl:", err)
		return 1
	}
	return 0
}
