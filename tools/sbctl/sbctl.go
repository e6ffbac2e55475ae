// Package sbctl is courier-sbctl: a view of the southbound for operators,
// in the manner of ovn-sbctl. It shows what northd compiled, what southd
// decided and what each host reported, without changing any of it; the
// only things it writes are the database's own listeners and TLS files
// (set-connection, set-ssl: internal/dbconf).
package sbctl

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strconv"
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
	"github.com/courier-sdn/courier/schema/sbdb"
	"github.com/courier-sdn/courier/tools/cmdline"
)

// view is the southbound rows an invocation needs.
type view struct {
	ctx context.Context
	c   client.Client
	ops []ovsdb.Operation // what the commands write, committed as one transaction
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
		{Name: "show", Summary: "print every chassis with its encap IP, roles, liveness and bound ports", Max: 0,
			Tables: []string{tChassis, tPriv, tPB}, Run: cmdShow},
		{Name: "chassis-list", Summary: "list chassis", Max: 0,
			Tables: []string{tChassis, tPriv}, Run: cmdChassisList},
		{Name: "datapath-list", Summary: "list datapaths (one per VPC and per vxnet)", Max: 0,
			Tables: []string{tDP}, Run: cmdDatapathList},
		{Name: "binding-list", Summary: "list port bindings", Max: 0,
			Flags:  []cmdline.Flag{{Name: "chassis", Arg: "NAME", Usage: "only ports bound to or requested on this chassis"}},
			Tables: []string{tPB, tDP}, Run: cmdBindingList},
		{Name: "lflow-list", Args: "[DATAPATH]", Summary: "list logical flows, per datapath and stage", Max: 1,
			Tables: []string{tLF, tDP}, Run: cmdLflowList},
		{Name: "learned-list", Summary: "list bindings learned by hosts from traffic", Max: 0,
			Tables: []string{tLearned}, Run: cmdLearnedList},
		{Name: "hub-list", Summary: "list the hubs southd assigned to each VPC", Max: 0,
			Tables: []string{tHub, tChassis, tDP}, Run: cmdHubList},
	}, connCommands()...)
}

func cmdShow(v *view, _ *cmdline.Invocation, out *cmdline.Output) error {
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
	var rows [][]string
	for _, c := range list[sbdb.Chassis](v) {
		state, cfg := "unknown", "-"
		if p := priv[c.Name]; p != nil {
			state, cfg = aliveText(p.Alive), strconv.Itoa(p.NbCfg)
		}
		rows = append(rows, []string{c.Name, c.EncapIP, dash(strings.Join(c.Roles, ",")), state, cfg})
	}
	out.Table([]string{"NAME", "ENCAP_IP", "ROLES", "STATE", "NB_CFG"}, rows)
	return nil
}

func cmdDatapathList(v *view, _ *cmdline.Invocation, out *cmdline.Output) error {
	var rows [][]string
	for _, d := range list[sbdb.Datapath](v) {
		rows = append(rows, []string{d.Name, d.Type, strconv.Itoa(d.TunnelKey), strconv.Itoa(d.Vpc),
			dash(deref(d.Cidr)), dash(deref(d.GatewayIP)), d.GatewayMAC})
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
	var rows [][]string
	for _, pb := range list[sbdb.PortBinding](v) {
		if only != "" && deref(pb.Chassis) != only && deref(pb.RequestedChassis) != only {
			continue
		}
		dp := "?"
		if d := dps[pb.Datapath]; d != nil {
			dp = d.Name
		}
		up := "no"
		if pb.Up != nil && *pb.Up {
			up = "yes"
		}
		rows = append(rows, []string{pb.LogicalPort, dp, strconv.Itoa(pb.TunnelKey), pb.MAC,
			dash(strings.Join(pb.IPs, ",")), dash(strings.Join(pb.VirtualIPs, ",")),
			dash(deref(pb.RequestedChassis)), dash(deref(pb.Chassis)), up})
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
			fmt.Fprintf(&b, "  table=%d (%-10s), priority=%-5d, match=(%s), action=(%s)\n", st.ID, f.Stage, f.Priority, f.Match, f.Actions)
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
	var rows [][]string
	for _, l := range list[sbdb.LearnedBinding](v) {
		age := fmt.Sprintf("%.1fs", float64(now-int64(l.Timestamp))/1000)
		rows = append(rows, []string{strconv.Itoa(l.Vpc), l.IP, l.MAC, l.LogicalPort, l.Chassis, l.Kind, strconv.Itoa(l.Seq), age})
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
	var rows [][]string
	for _, h := range list[sbdb.Hub](v) {
		chs := append([]string{}, h.Chassis...)
		sort.Strings(chs)
		var parts []string
		for _, c := range chs {
			parts = append(parts, fmt.Sprintf("%s(%s)", c, dash(encap[c])))
		}
		rows = append(rows, []string{strconv.Itoa(h.Vpc), dash(vpcName[h.Vpc]), dash(strings.Join(parts, " "))})
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
		Description: "Views of what northd compiled, what southd decided and what hosts reported, and the " +
			"southbound's own listeners and TLS files.\n\nCommands:\n" + cmdline.Usage(cmds),
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "db", Usage: "southbound `REMOTES` (comma-separated)", EnvVars: []string{"COURIER_SB_DB"}},
			&cli.StringFlag{Name: "run-dir", Usage: "find sb.sock in `DIR` when --db is not given", EnvVars: []string{"COURIER_RUNDIR"}, Value: ops.DefaultRunDir},
			&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: "table", Usage: "output `FORMAT`: table or json"},
			&cli.DurationFlag{Name: "timeout", Value: 30 * time.Second, Usage: "give up after `DURATION`"},
		}, pki.Flags()...),
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
			return Run(context.Background(), db, creds.TLSConfig(), cx.String("format"), cx.Duration("timeout"), cx.Args().Slice(), stdout)
		},
	}
}

// Run executes commands against the southbound at db (tlsc for ssl:).
func Run(ctx context.Context, db string, tlsc *tls.Config, format string, timeout time.Duration, args []string, stdout io.Writer) error {
	if format != "table" && format != "json" {
		return fmt.Errorf("--format=%s: want table or json", format)
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
		if err != nil {
			return fmt.Errorf("cannot reach the southbound database at %s (set --db, COURIER_SB_DB or COURIER_RUNDIR): %w", db, err)
		}
		out, err := read(ctx, sess, invs, format)
		sess.Close()
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
func read(ctx context.Context, sess *ops.Session, invs []parsed, format string) (*cmdline.Output, error) {
	ctx, cancel := sess.Context(ctx)
	defer cancel()
	v := &view{ctx: ctx, c: sess.Client}
	out := &cmdline.Output{Format: format}
	for _, p := range invs {
		if err := p.cmd.Run(v, p.inv, out); err != nil {
			return nil, err
		}
	}
	select {
	case <-sess.Done():
		return nil, fmt.Errorf("%w: the session ended while reading", ops.ErrNoConnection)
	default:
	}
	// What the commands write (listeners, TLS files) sets values whole:
	// committing it again after a lost answer changes nothing more.
	if _, err := ops.Transact(ctx, sess, v.ops...); err != nil {
		return nil, err
	}
	return out, nil
}

// Main runs courier-sbctl and returns its exit status.
func Main(args []string) int {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err := App(os.Stdout).Run(args); err != nil {
		fmt.Fprintln(os.Stderr, "courier-sbctl:", err)
		return 1
	}
	return 0
}
