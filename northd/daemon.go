package northd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"

	"github.com/courier-sdn/courier/internal/daemon"
	"github.com/courier-sdn/courier/northd/engine"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/ops/jsonrpc"
	"github.com/courier-sdn/courier/schema"
	"github.com/courier-sdn/courier/schema/nbdb"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// LockName is the southbound lock the active northd holds.
const LockName = "courier_northd"

// Config is northd's configuration.
type Config struct {
	NB, SB []string // database remotes
	// TLS is the client configuration for ssl: remotes (nil: none).
	TLS *tls.Config
	// MaxTxnOps splits a big southbound change into transactions of at
	// most this many operations, so that one bulk load does not stall the
	// database for every other client.
	MaxTxnOps int
	// ProbeInterval is how often a silent database server is probed;
	// silent for jsonrpc.ProbeSilence times it, it is given up, and with
	// the southbound the lock (0: jsonrpc.DefaultProbeInterval). A
	// session's initial contents get 12 intervals (a minute by default):
	// at 256,000 ports southd's did not arrive within 10 s on a busy
	// machine, and each new try started over.
	ProbeInterval time.Duration
	Log           *slog.Logger
	Metrics       *Metrics
	// OnRun, if set, is called after every engine run (tests use it to
	// see which path ran).
	OnRun func(active bool, st RunStats)
}

// Daemon is a running northd.
type Daemon struct {
	cfg     Config
	log     *slog.Logger
	m       *Metrics
	lock    *jsonrpc.LockSession
	refused *refusals
}

// RunStats describe one engine run.
type RunStats struct {
	Full     bool
	Duration time.Duration
	// Compile, WriteSB and WriteNB split Duration; Waited is the time
	// before it, from the first change's arrival.
	Compile, WriteSB, WriteNB, Waited time.Duration
	SBTxns                            int
	Err                               error
	// Engine is every node's counters after the run.
	Engine map[string]engine.Stats
}

// New returns a northd ready to Run.
func New(cfg Config) *Daemon {
	if cfg.MaxTxnOps == 0 {
		cfg.MaxTxnOps = 20000
	}
	if cfg.ProbeInterval <= 0 {
		cfg.ProbeInterval = jsonrpc.DefaultProbeInterval
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	return &Daemon{cfg: cfg, log: cfg.Log, m: cfg.Metrics, refused: newRefusals(cfg.Log),
		lock: jsonrpc.NewLockSession(cfg.SB, cfg.TLS, schema.SBName, LockName, cfg.ProbeInterval, cfg.Log)}
}

// Run keeps northd going until ctx ends: sessions are reopened after any
// failure and the state is then recompiled from scratch.
func (d *Daemon) Run(ctx context.Context) error {
	go d.lock.Run(ctx)
	daemon.Reconnect(ctx, d.log, "database session", d.session, d.m.sessions.Inc)
	return nil
}

var sbTables = []model.Model{&sbdb.SBGlobal{}, &sbdb.Datapath{}, &sbdb.LogicalFlow{}, &sbdb.SNAT{}, &sbdb.ExternalNetwork{}}

func monitorAll(ms []model.Model) []client.MonitorOption {
	var out []client.MonitorOption
	for _, m := range ms {
		out = append(out, client.WithTable(m))
	}
	return out
}

// sbMonitor watches what northd writes, except bindings (bindwatch.go).
func sbMonitor() []client.MonitorOption {
	return monitorAll(sbTables)
}

// rereadSBBindings replaces northd's view of the bindings with what the
// southbound holds now.
func rereadSBBindings(ctx context.Context, sb *ops.Session, tlsc *tls.Config, n *compiler) error {
	dec, err := jsonrpc.NewRowDecoder(&sbdb.PortBinding{})
	if err != nil {
		return err
	}
	rows, err := jsonrpc.ReadTable(ctx, sb.CurrentEndpoint(), tlsc, schema.SBName, sbdb.PortBindingTable, dec)
	if err != nil {
		return err
	}
	pbs := make([]*sbdb.PortBinding, len(rows))
	for i, r := range rows {
		pbs[i] = r.(*sbdb.PortBinding)
	}
	n.sb.resetBindings(pbs)
	return nil
}

// conn is one pair of database sessions and what follows them: the
// northbound through its watch, the southbound's bindings through theirs.
type conn struct {
	nb, sb         *ops.Session
	nbT, sbT       *ops.Tracker
	nbWatch, watch interface{ Done() <-chan struct{} }
	n              *compiler
	closers        []func()
}

func (c *conn) close() {
	for i := len(c.closers) - 1; i >= 0; i-- {
		c.closers[i]()
	}
}

// session runs one pair of database sessions until one of them ends. It
// is established once both are open and their contents read.
func (d *Daemon) session(ctx context.Context, established func()) error {
	c, err := d.connect(ctx)
	if c != nil {
		defer c.close()
	}
	if err != nil {
		return err
	}
	d.log.Info("connected", "nb", c.nb.CurrentEndpoint(), "sb", c.sb.CurrentEndpoint())
	established()
	return d.loop(ctx, c)
}

// connect opens the sessions and watches and reads the southbound's
// initial contents. The conn it returns, even with an error, holds what
// was opened, for close.
func (d *Daemon) connect(ctx context.Context) (*conn, error) {
	nbModel, _ := nbdb.FullDatabaseModel()
	sbModel, _ := sbdb.FullDatabaseModel()
	c := &conn{nbT: ops.NewTracker(), sbT: ops.NewTracker(), n: newCompiler()}
	// The southbound view takes northd's rows when its writes commit: a
	// row somebody deletes before the insert is delivered must still
	// reach it as a delete.
	c.sbT.KeepBrief = true
	for _, r := range []struct {
		remotes []string
		db      string
		table   string
	}{{d.cfg.NB, schema.NBName, nbdb.NBGlobalTable}, {d.cfg.SB, schema.SBName, sbdb.SBGlobalTable}} {
		if err := jsonrpc.EnsureGlobalRow(ctx, r.remotes, d.cfg.TLS, r.db, r.table); err != nil {
			return c, fmt.Errorf("initialize %s: %w", r.table, err)
		}
	}
	// The northbound session only writes; the rows come through nbWatch,
	// on the same server (nbwatch.go says why).
	nb, err := ops.Open(ctx, nbModel, ops.SessionOptions{Remotes: d.cfg.NB, LeaderOnly: true,
		EchoInterval: d.cfg.ProbeInterval, EchoTimeout: jsonrpc.ProbeSilence * d.cfg.ProbeInterval, ConnectTimeout: 12 * d.cfg.ProbeInterval, Logger: d.log, TLS: d.cfg.TLS})
	if err != nil {
		return c, err
	}
	c.nb, c.closers = nb, append(c.closers, nb.Close)
	sb, err := ops.Open(ctx, sbModel, ops.SessionOptions{Remotes: d.cfg.SB, LeaderOnly: true,
		Tracker: c.sbT, Monitor: sbMonitor(),
		EchoInterval: d.cfg.ProbeInterval, EchoTimeout: jsonrpc.ProbeSilence * d.cfg.ProbeInterval, ConnectTimeout: 12 * d.cfg.ProbeInterval, Logger: d.log, TLS: d.cfg.TLS})
	if err != nil {
		return c, err
	}
	c.sb, c.closers = sb, append(c.closers, sb.Close)
	nbWatch, err := watchNB(ctx, nb.CurrentEndpoint(), d.cfg.TLS, c.nbT, d.log)
	if err != nil {
		return c, fmt.Errorf("watch the northbound: %w", err)
	}
	c.nbWatch, c.closers = nbWatch, append(c.closers, nbWatch.Close)
	c.n.pendingNB.Merge(c.nbT.Drain())
	// The first run must see the whole initial contents, not the part of
	// it that the monitor's events have delivered so far.
	if err := loadInitial(ctx, sb, c.sbT, &c.n.pendingSB, sbTables); err != nil {
		return c, err
	}
	watch, err := watchBindings(ctx, sb.CurrentEndpoint(), d.cfg.TLS, c.sbT, d.log)
	if err != nil {
		return c, fmt.Errorf("watch bindings: %w", err)
	}
	c.watch, c.closers = watch, append(c.closers, watch.Close)
	return c, nil
}

// wait returns when something happened: a change, the lock, the retry
// timer; or an error when a session or watch ended.
func (c *conn) wait(ctx context.Context, lock <-chan struct{}, retry <-chan time.Time) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-c.nb.Done():
		return errors.New("northbound session lost")
	case <-c.nbWatch.Done():
		return errors.New("northbound watch lost")
	case <-c.sb.Done():
		return errors.New("southbound session lost")
	case <-c.watch.Done():
		return errors.New("southbound binding watch lost")
	case <-c.nbT.Notify():
	case <-c.sbT.Notify():
	case <-lock:
	case <-retry:
	}
	return nil
}

// loop compiles and writes as changes come, until a session ends.
func (d *Daemon) loop(ctx context.Context, c *conn) error {
	n := c.n
	// rereadBindings is set whenever northd's view of the bindings may be
	// incomplete: before its first write, when it takes over from another
	// instance, after a write failed.
	needFull, wasActive, rereadBindings := true, false, true
	var firstSeen time.Time // when the first change of the next run arrived
	retry := time.NewTimer(0)
	defer retry.Stop()
	for {
		if err := c.wait(ctx, d.lock.Changed(), retry.C); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		nbCh, sbCh := c.nbT.Drain(), c.sbT.Drain()
		if firstSeen.IsZero() && size(nbCh)+size(sbCh) > 0 {
			firstSeen = time.Now()
		}
		n.pendingNB.Merge(nbCh)
		n.pendingSB.Merge(sbCh)
		active := d.lock.Held()
		if size(sbCh) > 1000 {
			coalesce(c.nbT, c.sbT, &n.pendingNB, &n.pendingSB)
		}
		if n.pendingSB.Overflow { // the northbound comes through a watch, which drops nothing
			return errors.New("libovsdb dropped monitor events; rebuilding from a new session")
		}
		if active && !wasActive {
			// Taking over. A standby compiles as it goes, so the compiled
			// state is current; what the southbound holds is not known:
			// read the bindings and compare every row.
			n.out.full, rereadBindings = true, true
		}
		wasActive = active
		d.m.active.Set(b2f(active))
		if !needFull && n.pendingNB.Empty() && n.pendingSB.Empty() && n.out.empty() {
			continue
		}
		if active && rereadBindings {
			if err := rereadSBBindings(ctx, c.sb, d.cfg.TLS, n); err != nil {
				return fmt.Errorf("read bindings: %w", err)
			}
			rereadBindings = false
		}
		var waited time.Duration
		if !firstSeen.IsZero() {
			waited, firstSeen = time.Since(firstSeen), time.Time{}
		}
		st := d.runOnce(ctx, n, c.nb, c.sb, active, needFull, waited)
		if st.Err != nil {
			d.log.Warn("writing the result failed; will read the bindings again and recompute", "err", st.Err)
			needFull, rereadBindings = true, true
			retry.Reset(500 * time.Millisecond)
			if errors.Is(st.Err, ops.ErrNoConnection) {
				return st.Err
			}
			continue
		}
		needFull = false
	}
}

// runOnce runs the engine and, when active, writes the result.
func (d *Daemon) runOnce(ctx context.Context, n *compiler, nb, sb *ops.Session, active, full bool, waited time.Duration) RunStats {
	start := time.Now()
	n.run(full)
	st := RunStats{Full: full, Compile: time.Since(start), Waited: waited}
	if active {
		cfg := 0
		if n.nb.global != nil {
			cfg = n.nb.global.NbCfg
		}
		t := time.Now()
		txns, err := n.writeSB(ctx, d.lock, n.out, cfg, d.cfg.MaxTxnOps)
		st.SBTxns = txns
		st.WriteSB = time.Since(t)
		d.m.sbTxns.Add(float64(txns))
		if err == nil {
			t = time.Now()
			err = n.writeNB(ctx, nb.Client, n.out, cfg, d.cfg.MaxTxnOps, d.refused)
			st.WriteNB = time.Since(t)
		}
		st.Err = err
	}
	d.m.ports.track(n.ports) // before the changes are consumed
	if st.Err == nil {
		n.consumed()
	}
	st.Duration = time.Since(start)
	level := slog.LevelDebug
	if st.Duration > 500*time.Millisecond {
		level = slog.LevelInfo
	}
	// waited is from the first change's arrival to the run's start:
	// coalescing a burst of southbound changes, reading the bindings.
	d.log.Log(ctx, level, "run", "full", full, "active", active, "waited", waited, "took", st.Duration, "compile", st.Compile,
		"write_sb", st.WriteSB, "sb_txns", st.SBTxns, "write_nb", st.WriteNB)
	d.m.observe(n, st)
	if d.cfg.OnRun != nil {
		st.Engine = n.eng.Stats()
		d.cfg.OnRun(active, st)
	}
	return st
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// loadInitial waits until the tracker has delivered the session's whole
// initial contents (as many rows per table as the cache holds) and merges
// them into pending.
func loadInitial(ctx context.Context, s *ops.Session, t *ops.Tracker, pending *ops.Changes, tables []model.Model) error {
	deadline := time.After(60 * time.Second)
	for {
		pending.Merge(t.Drain())
		complete := true
		for _, m := range tables {
			name := tableName(s, m)
			if len(pending.Table(name)) < s.Cache().Table(name).Len() {
				complete = false
			}
		}
		if complete {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline:
			return errors.New("timed out loading the initial database contents")
		case <-s.Done():
			return errors.New("session lost while loading")
		case <-t.Notify():
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// tableName is the table a model type maps to in s.
func tableName(s *ops.Session, m model.Model) string {
	return s.Cache().DatabaseModel().FindTable(reflect.TypeOf(m))
}

func size(c ops.Changes) int {
	n := 0
	for _, t := range c.Tables {
		n += len(t)
	}
	return n
}

// coalesce keeps draining while changes keep coming, for at most a second.
func coalesce(nbT, sbT *ops.Tracker, nb, sb *ops.Changes) {
	deadline := time.After(time.Second)
	for {
		select {
		case <-nbT.Notify():
		case <-sbT.Notify():
		case <-time.After(20 * time.Millisecond):
			return
		case <-deadline:
			return
		}
		nb.Merge(nbT.Drain())
		sb.Merge(sbT.Drain())
	}
}
