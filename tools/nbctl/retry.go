package nbctl

// courier-nbctl waits out what a database goes through, a server restart
// or a Raft election with no leader yet, for as long as --timeout allows
// (without --timeout, for as long as it takes, as ovn-nbctl does), and
// retries only what is safe to retry:
//
//   - connecting and reading, always;
//   - a transaction whose "wait" operations failed (state.verify): the
//     rows the commands decided from changed before the commit, and
//     nothing was applied;
//   - a transaction whose connection was lost before its answer came: it
//     may or may not have committed.
//
// Each retry opens a new session, reads the database afresh and runs the
// commands again, as ovn-nbctl does on "try again"; a command therefore
// never applies twice. Before running them again after an unanswered
// transaction, it checks whether that transaction did commit: if the
// fresh read shows every change it was to make (and some change was to
// be made), the invocation succeeds without running anything. The
// alternative, running port-add again and failing with "already exists"
// for a port that this very invocation created, would report an error for
// a change that was made. The cost: if another client made exactly the
// same changes meanwhile, courier-nbctl reports success for them, which is
// what the user asked to see in the database anyway.
//
// An unanswered transaction can also commit after the fresh read: a Raft
// entry the old leader replicated but the new one has not yet applied.
// The commands run again are then refused by their own "wait"
// operations, and the next read finds the earlier transaction applied.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"

	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema/nbdb"
	"github.com/courier-sdn/courier/tools/cmdline"
)

// conn opens the invocation's sessions.
type conn struct {
	o       Options
	remotes []string
	model   *model.ClientDBModel // made when first needed: the bulk path needs none
	monitor []client.MonitorOption
	want    *want // the rows the commands name; nil: whole tables
	tracker *ops.Tracker
	backoff *ops.Backoff
	warned  bool
}

// echoEvery ends a session whose server stopped answering (a hung
// leader), so that the invocation moves on to another server.
const echoEvery = 5 * time.Second

// open connects, retrying until ctx ends. Each session has a tracker of
// its own, which wakes waitFor.
func (c *conn) open(ctx context.Context) (*ops.Session, error) {
	if c.model == nil {
		m, err := nbdb.FullDatabaseModel()
		if err != nil {
			return nil, err
		}
		c.model = &m
	}
	c.tracker = ops.NewTracker()
	s, err := ops.OpenRetrying(ctx, *c.model, ops.SessionOptions{Remotes: c.remotes, LeaderOnly: c.o.LeaderOnly,
		Monitor: c.monitor, Tracker: c.tracker, Logger: slog.Default(), EchoInterval: echoEvery, TLS: c.o.TLS}, c.backoff,
		func(err error) {
			if c.o.Timeout == 0 && !c.warned {
				c.warned = true
				slog.Warn("cannot reach the northbound database (start it with courier-ctl start, or set --db, COURIER_NB_DB or COURIER_RUNDIR); still trying, --timeout bounds the wait",
					"db", c.o.DB, "err", err)
			}
		})
	if ops.IsWrongDatabase(err) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("cannot reach the northbound database at %s (start it with courier-ctl start, or set --db, COURIER_NB_DB or COURIER_RUNDIR): %w", c.o.DB, err)
	}
	return s, nil
}

// attempt is one run of the commands: what they printed, the nb_cfg to
// wait for, and the database as they read it and as they left it.
type attempt struct {
	out           *cmdline.Output
	cfg           int
	before, after map[string]string
	// blind: the generic commands wrote, which the fingerprint does
	// not describe, so whether an unanswered attempt committed cannot
	// be read back and it is not run again.
	blind bool
}

// applied says whether st shows every change the attempt was to make.
func (a *attempt) applied(st *state) bool {
	only := map[string]bool{}
	for k := range union(a.before, a.after) {
		if name, ok := strings.CutPrefix(k, "port "); ok {
			only[name] = true
		}
	}
	now := st.fingerprint(only)
	changed := false
	for k := range union(a.before, a.after) {
		if a.before[k] != a.after[k] {
			changed = true
			if now[k] != a.after[k] {
				return false
			}
		}
	}
	return changed
}

func union(a, b map[string]string) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

// commit runs the commands against a fresh read and commits them, again
// from a fresh read for as long as ctx allows when the outcome is unknown
// or the rows read changed before the commit. It returns the session
// (open) and the attempt that committed.
func (c *conn) commit(ctx context.Context, invs []parsed, wait bool) (*ops.Session, *attempt, error) {
	var unsure []*attempt // attempts that may have committed
	if bulkChain(invs, c.want) {
		a, err := c.tryBulk(ctx, invs, wait)
		switch {
		case err == nil:
			return nil, a, nil // no session: waitFor opens one
		case errors.Is(err, errNoBulk):
			slog.Debug("bulk path unavailable; opening a session", "err", err)
		case unanswered(err):
			unsure = append(unsure, a)
		case verifyFailed(err) || errors.Is(err, errClaimRace):
			slog.Debug("rows changed before the commit; reading again", "err", err)
		default:
			return nil, nil, err
		}
	}
	for {
		sess, err := c.open(ctx)
		if err != nil {
			return nil, nil, mayHaveApplied(err, unsure)
		}
		a, err := c.try(ctx, sess, invs, wait, unsure)
		if err == nil {
			return sess, a, nil
		}
		sess.Close()
		unanswered := unanswered(err)
		switch {
		case ctx.Err() != nil && unanswered:
			return nil, nil, mayHaveApplied(err, append(unsure, a))
		case ctx.Err() != nil:
			return nil, nil, mayHaveApplied(err, unsure)
		case unanswered && a != nil && a.blind:
			return nil, nil, mayHaveApplied(err, []*attempt{a})
		case unanswered:
			if a != nil { // nil: the read failed, nothing was sent
				unsure = append(unsure, a)
			}
			slog.Debug("transaction unanswered; reading again", "err", err)
			pause(ctx, c.backoff.Next())
		case verifyFailed(err) || errors.Is(err, errClaimRace):
			slog.Debug("rows changed before the commit; reading again", "err", err)
		default:
			return nil, nil, err
		}
	}
}

// unanswered: the transaction may or may not have committed.
func unanswered(err error) bool {
	return errors.Is(err, ops.ErrNoConnection) || errors.Is(err, context.DeadlineExceeded) || serverTryAgain(err)
}

// output is where an attempt's commands print.
func (c *conn) output() *cmdline.Output {
	return &cmdline.Output{Style: cmdline.Style{Format: c.o.Format, FormatSet: c.o.FormatSet,
		NoHeadings: c.o.NoHeadings, Bare: c.o.Bare}}
}

// try reads the database through sess and, unless an earlier attempt
// turns out to have committed, runs the commands and commits them.
func (c *conn) try(ctx context.Context, sess *ops.Session, invs []parsed, wait bool, unsure []*attempt) (*attempt, error) {
	st, err := loadState(ctx, sess, c.want.with(unsure))
	if err != nil {
		return nil, err
	}
	defer st.close()
	st.sbRemote, st.tls = c.o.SB, c.o.TLS
	for _, a := range unsure {
		if a.applied(st) {
			slog.Debug("the unanswered transaction had committed")
			if wait {
				if st.global == nil {
					return nil, errors.New("the NB_Global row is missing; run courier-ctl start or courier-nbctl init")
				}
				// At least the value it set: waiting for it is enough.
				a.cfg = st.global.NbCfg
			}
			return a, nil
		}
	}
	a := &attempt{out: c.output(), before: st.fingerprint(st.touched)}
	cfg, err := execute(ctx, sess, st, invs, wait, a.out)
	a.cfg = cfg
	if err != nil { // only an attempt that may have committed is read back
		a.after = st.fingerprint(st.touched)
	}
	a.blind = st.db != nil && st.db.Writes
	return a, err
}

// with is w, plus the ports earlier attempts that may have committed
// describe: commands that read only what they name do not read the
// ports they create (port-add), and whether such an attempt committed
// is read from those ports.
func (w *want) with(unsure []*attempt) *want {
	if w == nil || len(unsure) == 0 {
		return w
	}
	more := *w
	more.ports = slices.Clone(w.ports)
	for _, a := range unsure {
		for k := range union(a.before, a.after) {
			if name, ok := strings.CutPrefix(k, "port "); ok {
				more.ports = append(more.ports, name)
			}
		}
	}
	return &more
}

func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// mayHaveApplied says so in err when an attempt went unanswered.
func mayHaveApplied(err error, unsure []*attempt) error {
	for _, a := range unsure {
		if a != nil {
			return fmt.Errorf("%w (a transaction went unanswered: the change may or may not have been applied)", err)
		}
	}
	return err
}

// verifyFailed: a "wait" of state.verify failed, nothing was applied.
func verifyFailed(err error) bool {
	var te *ops.TxnError
	return errors.As(err, &te) && te.Op == "wait" && te.Err == "timed out"
}

// serverTryAgain: the server could not complete the transaction because
// of the cluster (it lost leadership while committing), and does not say
// whether it committed.
func serverTryAgain(err error) bool {
	var te *ops.TxnError
	return errors.As(err, &te) && (te.Err == "cluster error" || te.Err == "not leader" || te.Err == "try again")
}

// waitFor blocks until NB_Global's sb_cfg (or hv_cfg) reaches cfg. It
// only reads, so a lost session is opened again. It closes the session.
func (c *conn) waitFor(ctx context.Context, sess *ops.Session, what string, cfg int) error {
	defer func() { sess.Close() }()
	for {
		if gs := ops.Rows[nbdb.NBGlobal](sess); len(gs) == 1 {
			got := gs[0].SbCfg
			if what == "hv" {
				got = gs[0].HvCfg
			}
			if got >= cfg {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("timed out waiting for %s to reach nb_cfg %d", map[string]string{"sb": "northd (sb_cfg)", "hv": "the hosts (hv_cfg)"}[what], cfg)
		case <-sess.Done():
			sess.Close()
			s, err := c.open(ctx)
			if err != nil {
				return fmt.Errorf("lost the database while waiting for nb_cfg %d: %w", cfg, err)
			}
			sess = s
		case <-c.tracker.Notify():
			c.tracker.Drain()
		case <-time.After(time.Second):
		}
	}
}

// fingerprint describes what the commands can change, row by row, by
// name and without UUIDs or the status columns that northd writes, so
// that two reads of the same configuration compare equal. When the
// commands read only the rows they name, only the ports in only are
// described (those they name or create: no other can change), so that
// a chain of thousands of port-adds does not describe every port of
// their vxnets twice; only == nil describes every port read.
func (st *state) fingerprint(only map[string]bool) map[string]string {
	fp := map[string]string{}
	for name, vpc := range st.vpcs {
		fp["vpc "+name] = "exists"
		nexthops := map[string][]string{} // more than one: a route added twice
		for _, r := range st.routesOf(vpc) {
			nexthops[r.Prefix] = append(nexthops[r.Prefix], r.Nexthop)
		}
		for prefix, nhs := range nexthops {
			slices.Sort(nhs)
			fp["route "+name+" "+prefix] = strings.Join(nhs, ",")
		}
	}
	for name, vx := range st.vxnets {
		vpc := st.vxnetVPC[vx.UUID]
		if vpc == nil || st.vpcs[vpc.Name] != vpc {
			continue
		}
		fp["vxnet "+name] = fmt.Sprintf("vpc=%s cidr=%s gateway=%s vni=%s", vpc.Name, vx.Cidr, str(vx.Gateway), num(vx.Vni))
	}
	for name, p := range st.ports {
		if only != nil && !only[name] {
			continue
		}
		vx := st.portVxnet[p.UUID]
		if vx == nil || fp["vxnet "+vx.Name] == "" || st.vxnets[vx.Name] != vx {
			continue
		}
		sec := "-"
		if p.PortSecurity != nil {
			sec = fmt.Sprint(*p.PortSecurity)
		}
		fp["port "+name] = fmt.Sprintf("vxnet=%s mac=%s ips=%v vips=%v chassis=%s security=%s",
			vx.Name, p.MAC, slices.Sorted(slices.Values(p.IPs)), slices.Sorted(slices.Values(p.VirtualIPs)), str(p.RequestedChassis), sec)
	}
	return fp
}

func str(p *string) string {
	if p == nil {
		return "-"
	}
	return *p
}

func num(p *int) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprint(*p)
}
