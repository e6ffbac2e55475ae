// Package hostd is the host agent: one per hypervisor. It registers its
// chassis, claims the ports whose VMs live here, turns the southbound rows
// it monitors into kernel state through the data plane's Apply, and writes
// back only facts about itself (its chassis rows, its claims, what its
// ports announced).
//
// What it monitors, and why conditions are static: a base session watches
// this chassis's rows, the bindings requested by or bound to it, its own
// learned bindings, every chassis (for their VTEP addresses), and on a
// hub-role host the Hub table. One more session per VPC the host takes
// part in watches that VPC's datapaths, flows and hubs (vpc == K), and on
// a hub of the VPC its bindings too. Condition changes cost ovsdb-server a
// scan of the table (DESIGN.md §4), so they happen only when the host
// joins or leaves a VPC or gains or loses a hub duty; libovsdb offers no
// monitor_cond_change, and overlapping monitors in one session corrupt its
// cache, hence one session per scope. A VM interface whose port is not
// requested here is listed in this chassis's claims; when southd binds
// the port here, the base session's condition (chassis == me) brings it
// (claim.go).
package hostd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/courier-sdn/courier/dataplane"
	"github.com/courier-sdn/courier/internal/daemon"
	"github.com/courier-sdn/courier/internal/pki"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/ops/sbops"
	"github.com/courier-sdn/courier/schema/sbdb"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Config is hostd's configuration.
type Config struct {
	Chassis  string
	Hostname string
	EncapIP  netip.Addr
	Hub      bool // the hub role
	// Gateway, when set, gives the chassis the gateway role (eip.go).
	Gateway *GatewayConfig
	SB      []string
	// Credentials, for ssl: remotes, are this chassis's TLS identity
	// (internal/pki): its certificate's common name must be Chassis.
	Credentials *pki.Credentials
	// CertCheck is how often the credentials' files are checked for a
	// replacement (2 s when zero); a replaced certificate makes hostd
	// reconnect at once to present it, the data plane forwarding on.
	CertCheck time.Duration
	PinRoot   string
	Device    string
	// KernelEncap leaves every encapsulation to the VXLAN device.
	KernelEncap bool
	// Heartbeat is how often Chassis_Private.heartbeat is bumped.
	Heartbeat time.Duration
	// CacheIdle removes learned paths unused for that long.
	CacheIdle time.Duration
	// SNATTimeouts: how long connections translated by SNAT are kept
	// idle (default dataplane.DefaultSNATTimeouts).
	SNATTimeouts dataplane.SNATTimeouts
	// SNATPortQuota: the connections one local port may have translated
	// by SNAT at once (0: no quota), its share of the host's table.
	SNATPortQuota int
	// Refresh: a learned path older than this is refreshed through a hub.
	Refresh time.Duration
	// Protection of the hubs and the southbound from a hostile VM, and
	// hub liveness: see dataplane.Config.
	HubBudget, AnnounceBudget, ICMPBudget dataplane.Budget
	UnknownTTL, HubDownAfter              time.Duration
	// ProbeInterval is how often each hub is probed (0: never).
	ProbeInterval time.Duration
	Log           *slog.Logger
	Metrics       *Metrics
	// Ready, if set, is called once the data plane is loaded and
	// interfaces are watched: from then on hostd only reconnects.
	Ready func()
}

// Daemon is a running hostd.
type Daemon struct {
	cfg    Config
	tls    *tls.Config
	log    *slog.Logger
	m      *Metrics
	dp     Dataplane
	sender LearnSender
	// mtu is what VMs are offered and their ports allow: the underlay's
	// MTU less VXLAN's overhead (vmMTU), followed each second
	// (followMTU); 0 until an underlay is found. underMTU is the last
	// underlay MTU the VXLAN device took (only followMTU's goroutine
	// touches it).
	mtu      atomic.Int32
	underMTU int

	notify chan struct{}
	base   *ops.Session
	// gw: on a gateway, the bindings with an EIP (eip.go)
	gw *ops.Session
	// uplink: a gateway's uplink address, read again when addrs (the
	// indexes of interfaces whose addresses changed) names it
	// (uplink.go)
	uplink uplinkCache
	addrs  chan int
	// underlay: the underlay NIC's index at the last reconcile (-1: none
	// found; 0: none yet), and physEIPs: whether that reconcile served
	// physical EIPs, which may not be sent to the NIC's addresses
	// (phys_deny, written by Apply) and need the NIC (phys_ingress)
	underlay int
	physEIPs bool
	// baseTracker only wakes the loop; reconcile drains it.
	baseTracker *ops.Tracker
	vpcs        map[int]*vpcSession
	// vpcOpenFailed: VPC sessions' failed opens in a row (sessions.go)
	vpcOpenFailed map[int]int

	nl      *netlink.Handle // this host's namespace
	ifaces  map[string]int  // logical port -> ifindex of its VM interface
	byIndex map[int]string
	taps    map[int]bool // the VM interfaces that are taps, by ifindex
	// activated: migrated ports this host bound on their guests'
	// announcement, until the monitor brings the binding back
	// (activation.go)
	activated map[string]bool

	acked     int
	refreshed time.Time
	// dirty: the last reconcile left something undone (a write failed);
	// reconciled: when it started. Without changes, hostd reconciles only
	// to retry, or every safetyReconcile.
	dirty      bool
	reconciled time.Time
	status     map[string]string
	logLimit   logLimiter
	// probes: the hubs and gateways this host probes, each with a VNI
	// it serves; probingSince, when this process began probing.
	probes       map[netip.Addr]probeTarget
	probingSince time.Time
	// hub is the bindings of the VPCs this host is a hub of, kept row by
	// row (hubTable); hubChecked, when its kernel map was last compared
	// whole.
	hub        *hubTable
	hubChecked time.Time
	// SNAT (snat.go): the local ports it translates, by ifindex, with
	// their block size and blocks held, and what it knows of their use;
	// snatMu guards them (keepSNAT sweeps from its own goroutine).
	snatMu    sync.Mutex
	snatPorts map[int]*sbdb.PortBinding
	snatSize  map[int]int
	snatHeld  map[int]int
	snatState map[int]*snatDemand
	snatQuota map[int]uint64 // as written to the data plane
	blockSeen map[string]int // SNAT blocks by row UUID: the order they appeared in
	blockSeq  int
	snatSwept time.Time
	// handoff: a live-migrated port's SNAT connections (snathandoff.go)
	handoff snatHandoff
}

type vpcSession struct {
	vpc     int
	hub     bool
	s       *ops.Session
	tracker *ops.Tracker
	dead    chan struct{}
	// flows is the VPC's compiled logical flows, kept until the
	// tracker reports a change to Logical_Flow or Datapath: compiling a
	// VPC's thousands of flows on every port change would dominate the
	// time to program a port. parts compiles only what changed.
	flows *flowConfig
	parts *flowParts
	// eips: the VPC's EIPs, by binding UUID, for hairpins (hairpin.go);
	// eipList, in order, and eipKey, which names that list
	eips    map[string]dataplane.VPCEIP
	eipList []dataplane.VPCEIP
	eipKey  string
}

// compiled returns the session's compiled flows, compiling again the
// parts that ch, its changes since the last call, touch; all of them the
// first time, or when the tracker lost changes.
func (vs *vpcSession) compiled(dps map[string]*sbdb.Datapath, ch ops.Changes) *flowConfig {
	if vs.flows == nil || ch.Overflow {
		if vs.parts == nil {
			vs.parts = newFlowParts(vs.vpc)
		}
		vs.parts.reset(ops.Rows[sbdb.LogicalFlow](vs.s))
		vs.flows = vs.parts.compile(dps)
	} else if vs.parts.apply(ch) || vs.parts.newDPs(dps) {
		// dps may be older than ch (takeSnapshot reads them first): a
		// datapath's change compiled with its old row is compiled again
		// once its new row is given
		vs.flows = vs.parts.compile(dps)
	}
	return vs.flows
}

type bindingKey struct {
	vpc uint32
	ip  netip.Addr
}

const (
	defaultHeartbeat = time.Second
	defaultRefresh   = 30 * time.Second
	// safetyReconcile: with nothing changed and nothing to retry, hostd
	// still recomputes everything this often, in case the kernel's state
	// was changed behind its back.
	safetyReconcile  = time.Minute
	defaultCacheIdle = 5 * time.Minute
	// defaultProbeInterval: with hubs judged down after 300 ms of
	// silence, a dead hub is passed over (for one that answers) within
	// about 400 ms.
	defaultProbeInterval = 100 * time.Millisecond
)

// New prepares a hostd.
func New(cfg Config) *Daemon {
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = defaultHeartbeat
	}
	if cfg.CacheIdle == 0 {
		cfg.CacheIdle = defaultCacheIdle
	}
	if cfg.SNATTimeouts == (dataplane.SNATTimeouts{}) {
		cfg.SNATTimeouts = dataplane.DefaultSNATTimeouts
	}
	if cfg.Hostname == "" {
		cfg.Hostname, _ = os.Hostname()
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	if cfg.CertCheck == 0 {
		cfg.CertCheck = 2 * time.Second
	}
	return &Daemon{cfg: cfg, tls: cfg.Credentials.TLSConfig(), log: cfg.Log, m: cfg.Metrics, notify: make(chan struct{}, 1),
		vpcs: map[int]*vpcSession{}, vpcOpenFailed: map[int]int{}, ifaces: map[string]int{}, byIndex: map[int]string{},
		taps: map[int]bool{}, status: map[string]string{},
		handoff:  snatHandoff{departed: map[string]departedSNAT{}, seen: map[string]time.Time{}, origin: map[string]portOrigin{}},
		logLimit: logLimiter{every: 10 * time.Second, last: map[string]time.Time{}}}
}

func (d *Daemon) kick() {
	select {
	case d.notify <- struct{}{}:
	default:
	}
}

// Run loads the data plane and keeps the host in step with the
// southbound until ctx ends. The data plane outlives hostd: on exit its
// programs and maps stay pinned and keep forwarding.
func (d *Daemon) Run(ctx context.Context) error {
	dp, err := dataplane.Load(dataplane.Config{Chassis: d.cfg.Chassis, PinRoot: d.cfg.PinRoot, VTEP: d.cfg.EncapIP,
		Device: d.cfg.Device, KernelEncap: d.cfg.KernelEncap, Hub: d.cfg.Hub, RefreshInterval: d.cfg.Refresh, Log: d.log,
		HubBudget: d.cfg.HubBudget, AnnounceBudget: d.cfg.AnnounceBudget, ICMPBudget: d.cfg.ICMPBudget, UnknownTTL: d.cfg.UnknownTTL,
		HubDownAfter: d.cfg.HubDownAfter})
	if err != nil {
		return err
	}
	d.dp = dp
	d.m.attach(dp)
	defer dp.Close()
	if err := d.loadDeparted(); err != nil { // snathandoff.go
		// forwarding matters more: those ports' connections break
		d.log.Error("departed ports' SNAT connections are lost", "err", err)
	}
	upkeep := newLogLimiter()
	d.followMTU(d.followUnderlay(upkeep), upkeep)
	sender, err := dataplane.NewSender(d.cfg.EncapIP)
	if err != nil {
		return fmt.Errorf("learn message socket: %w", err)
	}
	defer sender.Close()
	d.sender = sender
	if lo, err := dp.LearnOut(); err == nil {
		defer lo.Close()
		go d.sendForKernel(lo)
	} else {
		d.log.Error("the kernel's learn messages that need hostd cannot be read; bulk flows through a hub will not be taught", "err", err)
	}

	links := make(chan linkEvent, 1024)
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	if d.nl, err = netlink.NewHandle(); err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	defer d.nl.Close()
	go watchRouting(wctx, routeWatch{ns: netns.None(), log: d.log, changed: dp.RoutesChanged, told: d.m.routeChanges.Inc})
	go watchLinks(wctx, linkWatch{ns: netns.None(), rcvbuf: linkBuffer, queue: 1024, log: d.log, onLost: d.m.linkResyncs.Inc}, links)
	d.addrs = make(chan int, 64)
	go watchAddrs(wctx, netns.None(), d.log, d.addrs)
	d.scanLinks()
	events := make(chan dataplane.Event, 256)
	if er, err := dp.Events(); err == nil {
		defer er.Close()
		go func() {
			for {
				e, err := er.Read()
				if err != nil {
					return
				}
				events <- e
			}
		}()
	}
	if d.cfg.Ready != nil {
		d.cfg.Ready()
	}
	go d.keepSNAT(ctx)
	go d.keepUnderlay(wctx, upkeep)
	rotated := d.cfg.Credentials.Watch(ctx, d.cfg.CertCheck)
	session := func(ctx context.Context, established func()) error {
		return d.session(ctx, established, links, events, rotated)
	}
	daemon.Reconnect(ctx, d.log, "southbound session (the data plane keeps forwarding)", session, d.m.sessionRestarts.Inc)
	d.closeVPCs()
	return nil
}

// session runs the base southbound session until it ends. It is
// established once the chassis is registered: its monitors are up and
// their contents read.
func (d *Daemon) session(ctx context.Context, established func(), links chan linkEvent, events chan dataplane.Event,
	rotated <-chan struct{}) error {
	if err := d.openBase(ctx); err != nil {
		return err
	}
	defer func() {
		d.base.Close()
		d.base = nil
	}()
	if d.cfg.Gateway != nil {
		if err := d.openGateway(ctx); err != nil {
			return err
		}
		defer func() {
			d.gw.Close()
			d.gw = nil
		}()
	}
	if err := d.register(ctx); err != nil {
		return fmt.Errorf("register chassis: %w", err)
	}
	d.log.Info("connected", "sb", d.base.CurrentEndpoint(), "chassis", d.cfg.Chassis, "encap_ip", d.cfg.EncapIP, "hub", d.cfg.Hub)
	if c := d.cfg.Credentials; c != nil {
		d.log.Info("presenting certificate", "cn", c.CommonName(), "serial", c.Serial(), "expires", c.NotAfter())
	}
	// Beat at once: after an outage, southd judges liveness by what it
	// sees from now on, and the sooner it sees this chassis the better.
	if err := d.heartbeat(ctx); err != nil {
		d.log.Warn("heartbeat", "err", err)
	}
	established()
	return d.serve(ctx, links, events, rotated)
}

// serve reacts to the session's changes, interfaces, the data plane's
// events and its timers until the session ends, reconciling after each
// burst of changes.
func (d *Daemon) serve(ctx context.Context, links chan linkEvent, events chan dataplane.Event, rotated <-chan struct{}) error {
	beat := time.NewTicker(d.cfg.Heartbeat)
	defer beat.Stop()
	var probe <-chan time.Time
	if d.cfg.ProbeInterval > 0 {
		t := time.NewTicker(d.cfg.ProbeInterval)
		defer t.Stop()
		probe = t.C
	}
	upkeep := time.NewTicker(time.Second)
	defer upkeep.Stop()
	snat := time.NewTicker(snatTick)
	defer snat.Stop()
	d.kick()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-d.base.Done():
			return errors.New("base session lost")
		case <-rotated:
			// Every session reconnects with the new certificate; the
			// data plane keeps its state meanwhile, as in an outage.
			d.m.certReloads.Inc()
			d.closeVPCs()
			return errors.New("certificate replaced on disk; reconnecting to present it")
		case e := <-links:
			d.onLink(e)
		case i := <-d.addrs:
			if !d.uplink.forget(i) && !d.underlayAddrChanged(i) {
				continue // neither the uplink's address nor the underlay NIC's
			}
		case e := <-events:
			d.event(ctx, e)
		case <-beat.C:
			if err := d.heartbeat(ctx); err != nil {
				d.log.Warn("heartbeat", "err", err)
			}
			continue
		case <-probe:
			d.probe()
			continue
		case <-snat.C:
			d.snatUpkeep(ctx)
			continue
		case <-upkeep.C:
			if n, err := d.dp.ExpireCache(d.cfg.CacheIdle); err == nil && n > 0 {
				d.log.Debug("aged out idle learned paths", "n", n)
			}
			d.refreshLearned(ctx)
			if !d.dirty && time.Since(d.reconciled) < safetyReconcile {
				continue // nothing changed: nothing to do
			}
		case <-d.notify:
		}
		// Coalesce a burst of changes into one reconcile.
		for drained := false; !drained; {
			select {
			case e := <-links:
				d.onLink(e)
			case <-d.notify:
			case i := <-d.addrs:
				d.uplink.forget(i) // read again by this reconcile
			default:
				drained = true
			}
		}
		d.reconcile(ctx)
	}
}

// underlayAddrChanged says whether an address change on interface index
// i (0: on any, or changes may have been missed) calls for a reconcile
// while physical EIPs are served: a change of the underlay NIC's
// addresses, which Apply writes into phys_deny, or, while no interface
// holds the VTEP address (an address flushed and added again, the VTEP
// moved to another NIC), any change, which may bring it back.
func (d *Daemon) underlayAddrChanged(i int) bool {
	return d.physEIPs && (d.underlay < 0 || i == 0 || i == d.underlay)
}

// heartbeat tells southd this chassis is alive.
func (d *Daemon) heartbeat(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := d.transact(cctx, sbops.BumpHeartbeat(d.cfg.Chassis))
	return err
}
