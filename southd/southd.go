// Package southd keeps the southbound true to the running world, where
// northd only compiles intent: which chassis are alive (from their
// heartbeats), which chassis serve as each VPC's hubs, which port holds a
// contested virtual IP, which learned bindings have gone stale, how far
// the live hosts have applied the northbound (NB_Global.hv_cfg), which
// SNAT port blocks each port holds (snat.go) and which SNAT handoffs no
// host will ever install (handoff.go). Each of these is decided once,
// here, instead of by every host.
//
// Like northd it runs active/standby: the instance holding the southbound
// lock "courier_southd" decides and writes; its writes are fenced by the
// lock. Liveness is judged by when southd saw a heartbeat change, on its
// own clock, so hosts' clocks do not matter; at start every chassis is
// presumed alive for one timeout, so restarting southd moves nothing.
package southd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/internal/daemon"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/ops/jsonrpc"
	"github.com/courier-sdn/courier/ops/sbops"
	"github.com/courier-sdn/courier/schema"
	"github.com/courier-sdn/courier/schema/nbdb"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// LockName is the southbound lock the active southd holds.
const LockName = "courier_southd"

// Config is southd's configuration.
type Config struct {
	NB, SB []string
	// TLS is the client configuration for ssl: remotes (nil: none).
	TLS *tls.Config
	// DeadAfter: a chassis whose heartbeat has not changed for this long
	// is dead.
	DeadAfter time.Duration
	// HubsPerVPC is how many hubs each VPC gets (when enough are alive).
	HubsPerVPC int
	// LearnedAge: learned bindings not refreshed for this long are
	// removed, at most AgeBatch per pass.
	LearnedAge time.Duration
	AgeBatch   int
	// HandoffDeadFor: a SNAT_Handoff row whose destination chassis has
	// been dead this long is removed; HandoffMaxAge: any row seen this
	// long is (handoff.go).
	HandoffDeadFor, HandoffMaxAge time.Duration
	// Tick is how often liveness and aging are re-evaluated.
	Tick time.Duration
	// ProbeInterval is how often a silent database server is probed;
	// silent for jsonrpc.ProbeSilence times it, it is given up, and with
	// the southbound the lock (0: jsonrpc.DefaultProbeInterval). A
	// session's initial contents get 12 intervals (a minute by default):
	// at 256,000 ports southd's did not arrive within 10 s on a busy
	// machine, and each new try started over.
	ProbeInterval time.Duration
	Log           *slog.Logger
	Metrics       *Metrics
}

func (c *Config) defaults() {
	if c.ProbeInterval <= 0 {
		c.ProbeInterval = jsonrpc.DefaultProbeInterval
	}
	if c.DeadAfter == 0 {
		c.DeadAfter = 5 * time.Second
	}
	if c.HubsPerVPC == 0 {
		c.HubsPerVPC = 2
	}
	if c.LearnedAge == 0 {
		c.LearnedAge = 10 * time.Minute
	}
	if c.AgeBatch == 0 {
		c.AgeBatch = 100
	}
	if c.Tick == 0 {
		c.Tick = 250 * time.Millisecond
	}
	if c.HandoffDeadFor == 0 {
		c.HandoffDeadFor = 2 * time.Minute
	}
	if c.HandoffMaxAge == 0 {
		c.HandoffMaxAge = 10 * time.Minute
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Metrics == nil {
		c.Metrics = NewMetrics(nil)
	}
}

// Daemon is a running southd.
type Daemon struct {
	cfg  Config
	log  *slog.Logger
	m    *Metrics
	lock *jsonrpc.LockSession
	live liveness
	// snat is the session's index of SNAT rows, bindings and blocks.
	snat *snatIndex
	// handoffs: what the session saw of SNAT_Handoff rows (handoff.go)
	handoffs handoffAging
}

// New prepares a southd.
func New(cfg Config) *Daemon {
	cfg.defaults()
	return &Daemon{cfg: cfg, log: cfg.Log, m: cfg.Metrics,
		lock: jsonrpc.NewLockSession(cfg.SB, cfg.TLS, schema.SBName, LockName, cfg.ProbeInterval, cfg.Log)}
}

// Run decides until ctx ends, reconnecting after failures.
func (d *Daemon) Run(ctx context.Context) error {
	go d.lock.Run(ctx)
	daemon.Reconnect(ctx, d.log, "database session", d.session, nil)
	return nil
}

// sessions are southd's two database sessions and their trackers, which
// wake the loop through notify.
type sessions struct {
	sb, nb   *ops.Session
	sbT, nbT *ops.Tracker
	notify   chan struct{}
}

// session runs the southbound and northbound sessions until one ends. It
// is established once both are open with their monitors read.
func (d *Daemon) session(ctx context.Context, established func()) error {
	s, err := d.connect(ctx)
	if err != nil {
		return err
	}
	defer s.sb.Close()
	defer s.nb.Close()
	d.log.Info("connected", "sb", s.sb.CurrentEndpoint(), "nb", s.nb.CurrentEndpoint())
	d.live.restart()
	d.snat = newSNATIndex()
	d.snat.stale = true // built from the monitor's rows at the first pass
	d.handoffs = newHandoffAging()
	ectx, stopEchoes := context.WithCancel(ctx)
	defer stopEchoes()
	go d.echoes(ectx, s.sb)
	established()
	return d.loop(ctx, s)
}

// connect opens both sessions, with the columns southd decides from.
func (d *Daemon) connect(ctx context.Context) (*sessions, error) {
	sbM, _ := sbdb.FullDatabaseModel()
	nbM, _ := nbdb.FullDatabaseModel()
	s := &sessions{notify: make(chan struct{}, 1)}
	pb := &sbdb.PortBinding{}
	dp := &sbdb.Datapath{}
	ho := &sbdb.SNATHandoff{}
	// The southbound's changes feed the SNAT index (snatindex.go) and
	// name what a pass reads (pass.go).
	s.sbT = newSBTracker(s.notify)
	var err error
	s.sb, err = ops.Open(ctx, sbM, ops.SessionOptions{Remotes: d.cfg.SB, LeaderOnly: true, TLS: d.cfg.TLS,
		EchoInterval: d.cfg.ProbeInterval, EchoTimeout: jsonrpc.ProbeSilence * d.cfg.ProbeInterval, ConnectTimeout: 12 * d.cfg.ProbeInterval,
		Tracker: s.sbT, Logger: d.log, Monitor: []client.MonitorOption{
			client.WithTable(&sbdb.SBGlobal{}), client.WithTable(&sbdb.Chassis{}), client.WithTable(&sbdb.ChassisPrivate{}),
			client.WithTable(&sbdb.Hub{}), client.WithTable(&sbdb.LearnedBinding{}),
			client.WithTable(pb, &pb.LogicalPort, &pb.Chassis, &pb.RequestedChassis, &pb.MigrationDestination, &pb.MigrationPrepared, &pb.Up, &pb.VirtualIPs, &pb.IPs, &pb.Vpc, &pb.Datapath, &pb.LearnedLimit,
				&pb.Eip, &pb.SNATDemand, &pb.MAC),
			client.WithTable(&sbdb.SNAT{}), client.WithTable(&sbdb.SNATBlock{}),
			client.WithTable(dp, &dp.Name, &dp.Type, &dp.TunnelKey, &dp.Vpc, &dp.Cidr, &dp.GatewayIP),
			// who a handoff is for, not its connections (handoff.go)
			client.WithTable(ho, &ho.LogicalPort, &ho.FromChassis, &ho.ToChassis),
		}})
	if err != nil {
		return nil, err
	}
	port := &nbdb.Port{}
	s.nbT = ops.NewTrackerNotifying(s.notify)
	s.nb, err = ops.Open(ctx, nbM, ops.SessionOptions{Remotes: d.cfg.NB, LeaderOnly: true, TLS: d.cfg.TLS,
		EchoInterval: d.cfg.ProbeInterval, EchoTimeout: jsonrpc.ProbeSilence * d.cfg.ProbeInterval, ConnectTimeout: 12 * d.cfg.ProbeInterval,
		Tracker: s.nbT, Logger: d.log, Monitor: []client.MonitorOption{client.WithTable(&nbdb.NBGlobal{}),
			client.WithTable(port, &port.Name, &port.Up, &port.Chassis)}})
	if err != nil {
		s.sb.Close()
		return nil, err
	}
	return s, nil
}

// loop decides whenever something it decides from may have changed
// (gate.go), until a session ends.
func (d *Daemon) loop(ctx context.Context, s *sessions) error {
	sb, nb := s.sb, s.nb
	tick := time.NewTicker(d.cfg.Tick)
	defer tick.Stop()
	var gate passGate
	pend := newPending() // the first pass is a full one
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-sb.Done():
			return errors.New("southbound session lost")
		case <-nb.Done():
			return errors.New("northbound session lost")
		case <-s.notify:
		case <-tick.C:
		case <-d.lock.Changed():
		}
		// Decide only from live sessions: an ended one has no rows, and
		// deciding from nothing would, for one, drop every hub.
		select {
		case <-sb.Done():
			return errors.New("southbound session lost")
		case <-nb.Done():
			return errors.New("northbound session lost")
		default:
		}
		sbCh, nbCh := s.sbT.Drain(), s.nbT.Drain()
		d.syncSNATIndex(sb, sbCh)
		pend.add(sbCh, nbCh)
		if worthDeciding(sbCh) || !nbCh.Empty() {
			gate.pending = true
		}
		active := d.lock.Held()
		d.m.active.Set(map[bool]float64{true: 1, false: 0}[active])
		// Liveness is observed by every instance, so that a standby that
		// takes over knows how long each heartbeat has been silent.
		alive, fresh := d.judgeLiveness(sb)
		if !active || !fresh {
			gate.active = false
			if !active {
				// the first pass once active reads everything
				pend.reset()
				pend.full = true
			}
			continue
		}
		now := time.Now()
		if !gate.due(now, alive, active, safetyPass) {
			continue
		}
		full := pend.full || gate.whole(now, alive, active, fullPass)
		err := d.decide(ctx, sb, nb, alive, pend, full)
		gate.done(now, alive, active, full, err)
		if err == nil {
			pend.reset()
			continue
		}
		d.log.Warn("writing decisions failed", "err", err)
		if errors.Is(err, ops.ErrNoConnection) {
			return err
		}
	}
}

// newSBTracker is the southbound session's tracker. It keeps a row
// inserted and deleted within one batch, as a delete
// (ops.Changes.KeepBrief): the SNAT index holds rows before their
// inserts are delivered (the blocks southd committed, and every row a
// rebuild reads from libovsdb's cache, which is ahead of its events), so
// a delete must reach it even when its insert came in the same batch;
// dropped together, both would leave the block's ports taken for good.
func newSBTracker(notify chan struct{}) *ops.Tracker {
	t := ops.NewTrackerNotifying(notify)
	t.KeepBrief = true
	return t
}

// decide writes every decision that changed, in one fenced transaction:
// for every binding and port when full, else for those pend names
// (pass.go).
func (d *Daemon) decide(ctx context.Context, sb, nb *ops.Session, alive map[string]bool, pend *pending, full bool) error {
	start := time.Now()
	defer func() { d.m.decide.Observe(time.Since(start).Seconds()) }()
	d.m.passes.WithLabelValues(map[bool]string{true: "full", false: "changes"}[full]).Inc()
	read := func() []*sbdb.PortBinding {
		if full {
			return ops.Rows[sbdb.PortBinding](sb)
		}
		return pend.changedBindings(sb)
	}
	pbs := read()
	var only map[string]bool // the ports whose claims are judged (nil: all)
	if !full {
		only = pend.names
	}
	var txn []ovsdb.Operation
	txn = append(txn, d.markLiveness(ops.Rows[sbdb.ChassisPrivate](sb), pbs, alive)...)
	txn = append(txn, d.grantClaims(sb, pbs, alive, only)...)
	txn = append(txn, d.clearStalePrepared(pbs)...)
	hubOps, hubs := d.assignHubs(sb, hubChassis(nb), alive)
	txn = append(txn, hubOps...)
	learnedOps, learnedShown := d.arbitrate(sb)
	txn = append(txn, learnedOps...)
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if len(txn) > 0 {
		if _, err := ops.Transact(cctx, d.lock, txn...); err != nil {
			return err
		}
	}

	if len(hubOps) > 0 {
		d.await(cctx, "hub assignments", func() bool { return hubsShown(sb, hubs) })
	}
	if len(learnedOps) > 0 {
		d.await(cctx, "learned binding decisions", learnedShown)
	}
	d.m.phase.WithLabelValues("write_sb").Observe(time.Since(start).Seconds())
	acked := time.Now()
	if err := d.ackHosts(cctx, sb, nb, alive); err != nil {
		return err
	}
	d.m.phase.WithLabelValues("ack_hosts").Observe(time.Since(acked).Seconds())
	if len(txn) > 0 {
		pbs = read() // with what was just written
	}
	ports := func() []*nbdb.Port { return pend.changedPorts(nb) }
	if full {
		ports = func() []*nbdb.Port { return ops.Rows[nbdb.Port](nb) }
	}
	if err := d.reportPorts(cctx, nb, ports(), pbs); err != nil {
		return err
	}
	// Blocks go in transactions of their own: a block refused by the
	// index (decided from rows the monitor had not shown yet) must not
	// hold back liveness, grants or hubs.
	allocated := time.Now()
	err := d.allocateSNAT(cctx)
	d.m.phase.WithLabelValues("snat").Observe(time.Since(allocated).Seconds())
	return errors.Join(err, d.expireHandoffs(cctx, sb, alive))
}

// markLiveness records each chassis's state and marks the ports of dead
// chassis down (their VMs may come back: they are not unbound). privs is
// read after alive was judged: a chassis registered in between is in
// privs but not in alive, and waits for the next pass rather than be
// declared dead at its first sight.
func (d *Daemon) markLiveness(privs []*sbdb.ChassisPrivate, pbs []*sbdb.PortBinding, alive map[string]bool) []ovsdb.Operation {
	var txn []ovsdb.Operation
	live, dead := 0, 0
	newcomers := unjudged(privs, alive)
	for _, p := range privs {
		a := alive[p.Name]
		switch {
		case newcomers[p.Name]:
			continue
		case a:
			live++
		default:
			dead++
		}
		if p.Alive == nil || *p.Alive != a {
			txn = append(txn, sbops.SetChassisPrivateAlive(p.UUID, a))
			d.log.Info("chassis liveness changed", "chassis", p.Name, "alive", a, "first_judgment", p.Alive == nil)
		}
	}
	d.m.chassis.WithLabelValues("alive").Set(float64(live))
	d.m.chassis.WithLabelValues("dead").Set(float64(dead))
	for _, pb := range pbs {
		if pb.Chassis != nil && !alive[*pb.Chassis] && !newcomers[*pb.Chassis] && pb.Up != nil && *pb.Up {
			txn = append(txn, sbops.SetPortBindingUp(pb, false))
		}
	}
	return txn
}

// hubChassis reads schema.HubChassisOption: nil when unset.
func hubChassis(nb *ops.Session) map[string]bool {
	for _, g := range ops.Rows[nbdb.NBGlobal](nb) {
		v, ok := g.Options[schema.HubChassisOption]
		if !ok {
			return nil
		}
		allowed := map[string]bool{}
		for _, c := range strings.Split(v, ",") {
			if c = strings.TrimSpace(c); c != "" {
				allowed[c] = true
			}
		}
		return allowed
	}
	return nil
}

// assignHubs gives every VPC HubsPerVPC live hub-role chassis (among the
// allowed ones, when the operator names them): current hubs that are
// alive stay, missing ones are filled with the least loaded candidates
// (then by name), so nothing moves while nothing changes.
func (d *Daemon) assignHubs(sb *ops.Session, allowed map[string]bool, alive map[string]bool) ([]ovsdb.Operation, map[int][]string) {
	candidates := []string{}
	for _, c := range ops.Rows[sbdb.Chassis](sb) {
		if slices.Contains(c.Roles, "hub") && alive[c.Name] && (allowed == nil || allowed[c.Name]) {
			candidates = append(candidates, c.Name)
		}
	}
	sort.Strings(candidates)
	vpcs := map[int]bool{}
	for _, dp := range ops.Rows[sbdb.Datapath](sb) {
		if dp.Type == "vpc" {
			vpcs[dp.TunnelKey] = true
		}
	}
	rows := map[int]*sbdb.Hub{}
	load := map[string]int{}
	for _, h := range ops.Rows[sbdb.Hub](sb) {
		rows[h.Vpc] = h
		for _, c := range h.Chassis {
			if alive[c] && slices.Contains(candidates, c) {
				load[c]++
			}
		}
	}
	var txn []ovsdb.Operation
	want := map[int][]string{}
	keys := make([]int, 0, len(vpcs))
	for v := range vpcs {
		keys = append(keys, v)
	}
	sort.Ints(keys)
	for _, vpc := range keys {
		var keep []string
		if h := rows[vpc]; h != nil {
			for _, c := range h.Chassis {
				if slices.Contains(candidates, c) {
					keep = append(keep, c)
				}
			}
		}
		sort.Strings(keep)
		if len(keep) > d.cfg.HubsPerVPC {
			for _, c := range keep[d.cfg.HubsPerVPC:] {
				load[c]--
			}
			keep = keep[:d.cfg.HubsPerVPC]
		}
		for len(keep) < d.cfg.HubsPerVPC {
			best := ""
			for _, c := range candidates {
				if slices.Contains(keep, c) {
					continue
				}
				if best == "" || load[c] < load[best] {
					best = c
				}
			}
			if best == "" {
				break
			}
			keep = append(keep, best)
			load[best]++
		}
		sort.Strings(keep)
		h := rows[vpc]
		want[vpc] = keep
		switch {
		case h == nil:
			txn = append(txn, sbops.UpsertHub(h, vpc, keep))
			d.log.Info("assigned hubs", "vpc", vpc, "hubs", keep)
			d.m.hubMoves.Add(float64(len(keep)))
		case !ops.EqualSets(h.Chassis, keep):
			txn = append(txn, sbops.UpsertHub(h, vpc, keep))
			d.log.Info("moved hubs", "vpc", vpc, "from", h.Chassis, "to", keep)
			d.m.hubMoves.Add(float64(diffCount(h.Chassis, keep)))
		}
	}
	for vpc, h := range rows {
		if !vpcs[vpc] {
			txn = append(txn, sbops.DeleteHub(h.UUID))
		}
	}
	return txn, want
}

// await waits, briefly, until the monitor shows what was just written.
// Decisions are written on the lock's connection and read back through
// the monitor's, which lags: deciding again from the old rows would, for
// one, insert a second Hub row for a VPC (refused by the schema's index,
// failing the whole transaction), and judge learned bindings again.
func (d *Daemon) await(ctx context.Context, what string, shown func() bool) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	for !shown() {
		select {
		case <-ctx.Done():
			d.log.Debug("the monitor has not caught up yet", "with", what)
			return
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// hubsShown: the monitor shows exactly these hub assignments.
func hubsShown(sb *ops.Session, want map[int][]string) bool {
	have := map[int][]string{}
	for _, h := range ops.Rows[sbdb.Hub](sb) {
		have[h.Vpc] = h.Chassis
	}
	caught := len(have) == len(want)
	for vpc, w := range want {
		caught = caught && ops.EqualSets(have[vpc], w)
	}
	return caught
}

func diffCount(a, b []string) int {
	n := 0
	for _, x := range b {
		if !slices.Contains(a, x) {
			n++
		}
	}
	return n
}

// ackHosts sets NB_Global.hv_cfg to what every live chassis has applied.
// Dead chassis do not count: --wait=hv must not hang on them.
func (d *Daemon) ackHosts(ctx context.Context, sb, nb *ops.Session, alive map[string]bool) error {
	sbCfg := 0
	for _, g := range ops.Rows[sbdb.SBGlobal](sb) {
		sbCfg = g.NbCfg
	}
	cfg, ts := sbCfg, 0
	for _, p := range ops.Rows[sbdb.ChassisPrivate](sb) {
		if !alive[p.Name] {
			continue
		}
		if p.NbCfg < cfg {
			cfg = p.NbCfg
		}
		if p.NbCfgTimestamp > ts {
			ts = p.NbCfgTimestamp
		}
	}
	gs := ops.Rows[nbdb.NBGlobal](nb)
	if len(gs) == 0 || gs[0].HvCfg == cfg {
		return nil
	}
	if ts == 0 {
		ts = int(time.Now().UnixMilli())
	}
	g := *gs[0]
	g.HvCfg, g.HvCfgTimestamp = cfg, ts
	o, err := ops.ByUUID(nb, &g).Update(&g, &g.HvCfg, &g.HvCfgTimestamp)
	if err != nil {
		return err
	}
	if _, err := ops.Transact(ctx, nb, o...); err != nil {
		return fmt.Errorf("write hv_cfg: %w", err)
	}
	return nil
}
