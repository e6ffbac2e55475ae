// Package southd keeps the southbound true to the running world, where
// northd only compiles intent: which chassis are alive (from their
// heartbeats), which chassis serve as each VPC's hubs, which port holds a
// contested virtual IP, which learned bindings have gone stale, and how far
// the live hosts have applied the northbound (NB_Global.hv_cfg). Each of
// these is decided once, here, instead of by every host.
//
// Like northd it runs active/standby: the instance holding the southbound
// lock "courier_southd" decides and writes; its writes are fenced by the
// lock. Liveness is judged by when southd saw a heartbeat change, on its
// own clock, so hosts' clocks do not matter; at start every chassis is
// presumed alive for one timeout, so restarting southd moves nothing.
package southd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/internal/daemon"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema"
	"github.com/courier-sdn/courier/schema/nbdb"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// LockName is the southbound lock the active southd holds.
const LockName = "courier_southd"

// Config is southd's configuration.
type Config struct {
	NB, SB []string
	// DeadAfter: a chassis whose heartbeat has not changed for this long
	// is dead.
	DeadAfter time.Duration
	// HubsPerVPC is how many hubs each VPC gets (when enough are alive).
	HubsPerVPC int
	// LearnedAge: learned bindings not refreshed for this long are
	// removed, at most AgeBatch per pass.
	LearnedAge time.Duration
	AgeBatch   int
	// Tick is how often liveness and aging are re-evaluated.
	Tick    time.Duration
	Log     *slog.Logger
	Metrics *Metrics
}

func (c *Config) defaults() {
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
	lock *ops.LockSession
	// seen: per chassis, the last heartbeat value and when it changed
	// (southd's clock).
	seen map[string]beat
}

type beat struct {
	value int
	at    time.Time
}

// New prepares a southd.
func New(cfg Config) *Daemon {
	cfg.defaults()
	return &Daemon{cfg: cfg, log: cfg.Log, m: cfg.Metrics, seen: map[string]beat{},
		lock: ops.NewLockSession(cfg.SB, schema.SBName, LockName, cfg.Log)}
}

// Run decides until ctx ends, reconnecting after failures.
func (d *Daemon) Run(ctx context.Context) error {
	go d.lock.Run(ctx)
	daemon.Reconnect(ctx, d.log, "database session", d.session, nil)
	return nil
}

// session runs the southbound and northbound sessions until one ends. It
// is established once both are open with their monitors read.
func (d *Daemon) session(ctx context.Context, established func()) error {
	sbM, _ := sbdb.FullDatabaseModel()
	nbM, _ := nbdb.FullDatabaseModel()
	notify := make(chan struct{}, 1)
	pb := &sbdb.PortBinding{}
	dp := &sbdb.Datapath{}
	sb, err := ops.Open(ctx, sbM, ops.SessionOptions{Remotes: d.cfg.SB, LeaderOnly: true, EchoInterval: 5 * time.Second,
		Tracker: ops.NewTrackerNotifying(notify), Logger: d.log, Monitor: []client.MonitorOption{
			client.WithTable(&sbdb.SBGlobal{}), client.WithTable(&sbdb.Chassis{}), client.WithTable(&sbdb.ChassisPrivate{}),
			client.WithTable(&sbdb.Hub{}), client.WithTable(&sbdb.LearnedBinding{}),
			client.WithTable(pb, &pb.LogicalPort, &pb.Chassis, &pb.Up, &pb.VirtualIPs, &pb.IPs, &pb.Vpc),
			client.WithTable(dp, &dp.Type, &dp.TunnelKey, &dp.Vpc),
		}})
	if err != nil {
		return err
	}
	defer sb.Close()
	nb, err := ops.Open(ctx, nbM, ops.SessionOptions{Remotes: d.cfg.NB, LeaderOnly: true, EchoInterval: 5 * time.Second,
		Tracker: ops.NewTrackerNotifying(notify), Logger: d.log, Monitor: []client.MonitorOption{client.WithTable(&nbdb.NBGlobal{})}})
	if err != nil {
		return err
	}
	defer nb.Close()
	d.log.Info("connected", "sb", sb.CurrentEndpoint(), "nb", nb.CurrentEndpoint())
	established()
	tick := time.NewTicker(d.cfg.Tick)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-sb.Done():
			return errors.New("southbound session lost")
		case <-nb.Done():
			return errors.New("northbound session lost")
		case <-notify:
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
		active := d.lock.Held()
		d.m.active.Set(map[bool]float64{true: 1, false: 0}[active])
		// Liveness is observed by every instance, so that a standby that
		// takes over knows how long each heartbeat has been silent.
		alive := d.liveness(sb)
		if !active {
			continue
		}
		if err := d.decide(ctx, sb, nb, alive); err != nil {
			d.log.Warn("writing decisions failed", "err", err)
			if errors.Is(err, ops.ErrNoConnection) {
				return err
			}
		}
	}
}

// liveness updates when each chassis's heartbeat last changed and returns
// which chassis are alive now.
func (d *Daemon) liveness(sb *ops.Session) map[string]bool {
	now := time.Now()
	alive := map[string]bool{}
	for _, p := range ops.Rows[sbdb.ChassisPrivate](sb) {
		b, ok := d.seen[p.Name]
		if !ok || b.value != p.Heartbeat {
			// A chassis first seen now is presumed alive for one
			// timeout, so a southd restart declares nobody dead.
			d.seen[p.Name] = beat{value: p.Heartbeat, at: now}
			b = d.seen[p.Name]
		}
		alive[p.Name] = now.Sub(b.at) < d.cfg.DeadAfter
	}
	for name := range d.seen {
		if _, ok := alive[name]; !ok {
			delete(d.seen, name)
		}
	}
	return alive
}

// decide writes every decision that changed, in one fenced transaction.
func (d *Daemon) decide(ctx context.Context, sb, nb *ops.Session, alive map[string]bool) error {
	var txn []ovsdb.Operation
	txn = append(txn, d.markLiveness(sb, alive)...)
	hubOps, hubs := d.assignHubs(sb, alive)
	txn = append(txn, hubOps...)
	txn = append(txn, d.arbitrate(sb)...)
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if len(txn) > 0 {
		if _, err := ops.Transact(cctx, d.lock, txn...); err != nil {
			return err
		}
	}
	if len(hubOps) > 0 {
		d.awaitHubs(cctx, sb, hubs)
	}
	return d.ackHosts(cctx, sb, nb, alive)
}

// markLiveness records each chassis's state and marks the ports of dead
// chassis down (their VMs may come back: they are not unbound).
func (d *Daemon) markLiveness(sb *ops.Session, alive map[string]bool) []ovsdb.Operation {
	var txn []ovsdb.Operation
	live, dead := 0, 0
	for _, p := range ops.Rows[sbdb.ChassisPrivate](sb) {
		a := alive[p.Name]
		if a {
			live++
		} else {
			dead++
		}
		if p.Alive == nil || *p.Alive != a {
			txn = append(txn, ovsdb.Operation{Op: ovsdb.OperationUpdate, Table: sbdb.ChassisPrivateTable,
				Where: []ovsdb.Condition{{Column: "_uuid", Function: ovsdb.ConditionEqual, Value: ovsdb.UUID{GoUUID: p.UUID}}},
				Row:   ovsdb.Row{"alive": a}})
			if p.Alive != nil {
				d.log.Info("chassis liveness changed", "chassis", p.Name, "alive", a)
			}
		}
	}
	d.m.chassis.WithLabelValues("alive").Set(float64(live))
	d.m.chassis.WithLabelValues("dead").Set(float64(dead))
	for _, pb := range ops.Rows[sbdb.PortBinding](sb) {
		if pb.Chassis != nil && !alive[*pb.Chassis] && pb.Up != nil && *pb.Up {
			txn = append(txn, ovsdb.Operation{Op: ovsdb.OperationUpdate, Table: sbdb.PortBindingTable,
				Where: []ovsdb.Condition{{Column: "_uuid", Function: ovsdb.ConditionEqual, Value: ovsdb.UUID{GoUUID: pb.UUID}},
					{Column: "chassis", Function: ovsdb.ConditionEqual, Value: *pb.Chassis}},
				Row: ovsdb.Row{"up": false}})
		}
	}
	return txn
}

// assignHubs gives every VPC HubsPerVPC live hub-role chassis: current
// hubs that are alive stay, missing ones are filled with the least loaded
// candidates (then by name), so nothing moves while nothing changes.
func (d *Daemon) assignHubs(sb *ops.Session, alive map[string]bool) ([]ovsdb.Operation, map[int][]string) {
	candidates := []string{}
	for _, c := range ops.Rows[sbdb.Chassis](sb) {
		if slices.Contains(c.Roles, "hub") && alive[c.Name] {
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
		set := make([]any, len(keep))
		for i, c := range keep {
			set[i] = c
		}
		want[vpc] = keep
		switch {
		case h == nil:
			txn = append(txn, ovsdb.Operation{Op: ovsdb.OperationInsert, Table: sbdb.HubTable,
				Row: ovsdb.Row{"vpc": vpc, "chassis": ovsdb.OvsSet{GoSet: set}}})
			d.log.Info("assigned hubs", "vpc", vpc, "hubs", keep)
			d.m.hubMoves.Add(float64(len(keep)))
		case !sameSet(h.Chassis, keep):
			txn = append(txn, ovsdb.Operation{Op: ovsdb.OperationUpdate, Table: sbdb.HubTable,
				Where: []ovsdb.Condition{{Column: "_uuid", Function: ovsdb.ConditionEqual, Value: ovsdb.UUID{GoUUID: h.UUID}}},
				Row:   ovsdb.Row{"chassis": ovsdb.OvsSet{GoSet: set}}})
			d.log.Info("moved hubs", "vpc", vpc, "from", h.Chassis, "to", keep)
			d.m.hubMoves.Add(float64(diffCount(h.Chassis, keep)))
		}
	}
	for vpc, h := range rows {
		if !vpcs[vpc] {
			txn = append(txn, ovsdb.Operation{Op: ovsdb.OperationDelete, Table: sbdb.HubTable,
				Where: []ovsdb.Condition{{Column: "_uuid", Function: ovsdb.ConditionEqual, Value: ovsdb.UUID{GoUUID: h.UUID}}}})
		}
	}
	return txn, want
}

// awaitHubs waits, briefly, until the monitor shows the hub assignments
// just written. Decisions are written on the lock's connection and read
// back through the monitor's, which lags: deciding again before the new
// rows arrive would insert a second Hub row for a VPC (refused by the
// schema's index, failing the whole transaction).
func (d *Daemon) awaitHubs(ctx context.Context, sb *ops.Session, want map[int][]string) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	for {
		have := map[int][]string{}
		for _, h := range ops.Rows[sbdb.Hub](sb) {
			have[h.Vpc] = h.Chassis
		}
		caught := len(have) == len(want)
		for vpc, w := range want {
			caught = caught && sameSet(have[vpc], w)
		}
		if caught {
			return
		}
		select {
		case <-ctx.Done():
			d.log.Debug("the monitor has not caught up with the hub assignments yet", "want", want)
			return
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func sameSet(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
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

// arbitrate removes the learned bindings judgeLearned condemns.
func (d *Daemon) arbitrate(sb *ops.Session) []ovsdb.Operation {
	del := judgeLearned(ops.Rows[sbdb.PortBinding](sb), ops.Rows[sbdb.LearnedBinding](sb), time.Now(),
		d.cfg.LearnedAge, d.cfg.AgeBatch)
	var txn []ovsdb.Operation
	for u, why := range del {
		txn = append(txn, ovsdb.Operation{Op: ovsdb.OperationDelete, Table: sbdb.LearnedBindingTable,
			Where: []ovsdb.Condition{{Column: "_uuid", Function: ovsdb.ConditionEqual, Value: ovsdb.UUID{GoUUID: u}}}})
		d.m.learned.WithLabelValues(why).Inc()
	}
	return txn
}

// judgeLearned says which learned bindings to remove, and why: not
// allowed ("rejected": the port may not hold the address, or the chassis
// does not host the port), not the newest holder of a virtual IP
// ("superseded": highest sequence, then timestamp, wins), or not refreshed
// within age ("aged", at most batch of them per pass: OVN's MAC_Binding
// table grew without bound for years).
func judgeLearned(pbs []*sbdb.PortBinding, lbs []*sbdb.LearnedBinding, now time.Time, age time.Duration, batch int) map[string]string {
	ports := map[string]*sbdb.PortBinding{}
	for _, pb := range pbs {
		ports[pb.LogicalPort] = pb
	}
	del := map[string]string{}
	type key struct {
		vpc int
		ip  string
	}
	holders := map[key][]*sbdb.LearnedBinding{}
	nowMs := now.UnixMilli()
	aged := 0
	sorted := slices.Clone(lbs)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Timestamp < sorted[j].Timestamp })
	for _, lb := range sorted {
		pb := ports[lb.LogicalPort]
		switch {
		case pb == nil:
			del[lb.UUID] = "rejected"
		case pb.Chassis == nil || *pb.Chassis != lb.Chassis:
			del[lb.UUID] = "rejected"
		case lb.Kind == "virtual_ip" && !slices.Contains(pb.VirtualIPs, lb.IP):
			del[lb.UUID] = "rejected"
		case lb.Kind == "unknown" && len(pb.IPs) > 0:
			del[lb.UUID] = "rejected"
		case nowMs-int64(lb.Timestamp) > age.Milliseconds():
			if aged < batch { // oldest first
				del[lb.UUID] = "aged"
				aged++
			}
		default:
			holders[key{lb.Vpc, lb.IP}] = append(holders[key{lb.Vpc, lb.IP}], lb)
		}
	}
	for _, hs := range holders {
		if len(hs) < 2 {
			continue
		}
		sort.Slice(hs, func(i, j int) bool {
			if hs[i].Seq != hs[j].Seq {
				return hs[i].Seq > hs[j].Seq
			}
			return hs[i].Timestamp > hs[j].Timestamp
		})
		for _, lb := range hs[1:] {
			del[lb.UUID] = "superseded"
		}
	}
	return del
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
