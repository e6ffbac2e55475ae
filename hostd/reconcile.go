package hostd

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"

	"github.com/courier-sdn/courier/dataplane"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/ops/sbops"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// reconcile brings the kernel in line with what is monitored: claims and
// releases ports, opens or closes VPC sessions, computes the whole desired
// data plane and applies it (Apply writes only what differs), then writes
// back what this host can vouch for: ports up, nb_cfg applied, status.
func (d *Daemon) reconcile(ctx context.Context) {
	start := time.Now()
	d.dirty, d.reconciled = false, start
	// Read nb_cfg before anything else of the session: the rows read
	// after it are at least that new.
	cfgs := []int{sbCfg(d.base.Client)}
	// The base session's changes only wake reconciles up: reconciles
	// read whole tables. Drain them so they do not pile up.
	d.baseTracker.Drain()
	pbs := d.withActivations(ops.Rows[sbdb.PortBinding](d.base)) // activation.go
	if d.baseDown() {
		// No rows is not "no ports": leaving the VPCs and applying an
		// empty state would cut every VM off until the southbound is
		// back. The main loop reconnects.
		d.log.Warn("not applying: the base session ended; the data plane keeps its state")
		return
	}
	d.claim(ctx, pbs)
	claimed := time.Now()

	want := d.wantedVPCs(pbs)
	d.syncVPCs(ctx, want)
	// Apply only what healthy sessions say: a VPC whose session is down
	// (a database restarting) is not a VPC the host left. Until every
	// session it needs is back, the kernel keeps what it has and keeps
	// forwarding.
	if missing := d.unhealthy(want); missing != "" {
		d.status["sessions"] = missing
		d.log.Warn("not applying: the southbound view is incomplete; the data plane keeps its state", "why", missing)
		d.retryLater()
		return
	}
	delete(d.status, "sessions")

	snap := d.takeSnapshot(pbs)
	if d.gw != nil { // its nb_cfg before its rows, as for the base session
		cfgs = append(cfgs, sbCfg(d.gw.Client))
	}
	gw, ok := d.gatewaySnapshot(snap.encap, snap.mtu)
	if !ok {
		d.status["sessions"] = "gateway session down or uplink missing"
		d.log.Warn("not applying: the gateway's view is incomplete; the data plane keeps its state")
		d.retryLater()
		return
	}
	snap.gateway = gw
	for _, vs := range d.vpcs {
		cfgs = append(cfgs, sbCfg(vs.s.Client))
	}
	next := desired(snap)
	st, flowErrs := next.state, next.flowErrs

	if missing := d.unhealthy(want); missing != "" {
		d.log.Warn("a session ended while computing; not applying", "why", missing)
		d.retryLater()
		return
	}
	computed := time.Now()
	d.physEIPs = len(st.PhysEIPs) > 0
	d.exportDeparted(ctx, st, pbs) // snathandoff.go: before the apply forgets them
	as, err := d.dp.Apply(st)
	applied := time.Now()
	d.m.reconcile(time.Since(start), as, err, len(flowErrs))
	d.report(err, flowErrs)
	if err == nil {
		d.applied(ctx, pbs, snap, next, minOf(cfgs))
	}
	d.writeStatus(ctx)
	if as.Written+as.Removed+as.Attached+as.Detached > 0 {
		d.log.Debug("applied", "written", as.Written, "removed", as.Removed, "attached", as.Attached,
			"detached", as.Detached, "ports", len(st.Ports), "bindings", hubLen(st.HubTable),
			"claim", claimed.Sub(start), "compute", computed.Sub(claimed), "kernel", applied.Sub(computed), "write_back", time.Since(applied))
	}
	d.m.monitored(d.base, d.vpcs)
}

// wantedVPCs is the VPCs this host takes part in: those of its bound
// ports (value false), and those it is a hub of (true).
func (d *Daemon) wantedVPCs(pbs []*sbdb.PortBinding) map[int]bool {
	want := map[int]bool{}
	for _, pb := range pbs {
		if d.ours(pb) {
			want[pb.Vpc] = want[pb.Vpc] || false
		}
	}
	if d.cfg.Hub {
		for _, h := range ops.Rows[sbdb.Hub](d.base) {
			if slices.Contains(h.Chassis, d.cfg.Chassis) {
				want[h.Vpc] = true
			}
		}
	}
	return want
}

// applied writes back, and tells, what an applied state makes true: its
// ports up, migrations prepared, moved bindings to whom the hub taught
// them, hubs to probe, SNAT's use, and nb_cfg (cfg) once every VPC's
// datapaths are there.
func (d *Daemon) applied(ctx context.Context, pbs []*sbdb.PortBinding, snap *snapshot, next *desiredState, cfg int) {
	st := next.state
	d.markUp(ctx, next.up)
	d.markPrepared(ctx, pbs, st) // activation.go
	d.teachMoved(snap.hub, next.hubOf)
	d.setProbes(st)
	d.noteSNAT(snap, st)
	d.handOffSNAT(ctx, pbs, st) // snathandoff.go
	if next.ready {
		d.ack(ctx, cfg)
	}
}

// report records in the host's status what the last apply left undone.
func (d *Daemon) report(applyErr error, flowErrs []string) {
	if applyErr != nil {
		d.dirty = true
		d.log.Error("applying the southbound to the kernel failed", "err", applyErr)
		d.status["apply"] = applyErr.Error()
	} else {
		delete(d.status, "apply")
	}
	if len(flowErrs) > 0 {
		sort.Strings(flowErrs)
		d.status["lflows"] = fmt.Sprintf("%d flows not applied; first: %s", len(flowErrs), flowErrs[0])
		d.log.Warn("logical flows this data plane cannot apply", "count", len(flowErrs), "first", flowErrs[0])
	} else {
		delete(d.status, "lflows")
	}
}

func isMe(c *string, me string) bool { return c != nil && *c == me }

// baseDown says whether the base session has ended: closed, or its
// cache already dropped (libovsdb drops it when the connection goes,
// before the session's end is noticed). Its rows then read as none.
func (d *Daemon) baseDown() bool {
	select {
	case <-d.base.Done():
		return true
	default:
	}
	return d.base.Cache() == nil
}

// unhealthy says which session the host needs is down, or "".
func (d *Daemon) unhealthy(want map[int]bool) string {
	if d.baseDown() {
		return "base session down"
	}
	for vpc := range want {
		vs, ok := d.vpcs[vpc]
		if !ok {
			return fmt.Sprintf("no session for VPC %d", vpc)
		}
		select {
		case <-vs.dead:
			return fmt.Sprintf("session for VPC %d down", vpc)
		default:
		}
	}
	return ""
}

// retryLater reconciles again in a second.
func (d *Daemon) retryLater() {
	time.AfterFunc(time.Second, d.kick)
}

// ours: see the function of the same name.
func (d *Daemon) ours(pb *sbdb.PortBinding) bool { return ours(d.cfg.Chassis, d.ifaces, pb) }

// sbCfg is the nb_cfg a session has seen in SB_Global.
func sbCfg(c client.Client) int {
	for _, g := range ops.Rows[sbdb.SBGlobal](c) {
		return g.NbCfg
	}
	return 0
}

func minOf(v []int) int {
	m := v[0]
	for _, x := range v[1:] {
		if x < m {
			m = x
		}
	}
	return m
}

// markUp reports the ports whose DVR is programmed.
func (d *Daemon) markUp(ctx context.Context, pbs []*sbdb.PortBinding) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for _, pb := range pbs {
		if _, err := d.guarded(cctx, sbops.SetPortBindingUp(pb, true)); err != nil {
			d.dirty = true
			d.log.Warn("mark port up", "port", pb.LogicalPort, "err", err)
		}
	}
}

// ack tells the southbound (and through southd, courier-nbctl --wait=hv)
// that this host's kernel reflects nb_cfg.
func (d *Daemon) ack(ctx context.Context, cfg int) {
	if cfg <= d.acked {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := d.transact(cctx, sbops.SetChassisPrivateNbCfg(d.cfg.Chassis, cfg, time.Now()))
	if err != nil {
		d.dirty = true
		d.log.Warn("acknowledge nb_cfg", "cfg", cfg, "err", err)
		return
	}
	d.acked = cfg
}

// writeStatus publishes what this host could not apply.
func (d *Daemon) writeStatus(ctx context.Context) {
	var have map[string]string
	for _, p := range ops.Rows[sbdb.ChassisPrivate](d.base) {
		have = p.Status
	}
	if equalMaps(have, d.status) {
		return
	}
	m := map[string]string{}
	for k, v := range d.status {
		if len(v) > 200 {
			v = v[:200]
		}
		m[k] = v
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := d.transact(cctx, sbops.SetChassisPrivateStatus(d.cfg.Chassis, m)); err != nil {
		d.dirty = true
		d.log.Warn("write status", "err", err)
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func hubLen(t *dataplane.BindingTable) int {
	if t == nil {
		return 0
	}
	return t.Len()
}

// teachMoved: a hub whose binding of an address moved or went away
// tells the hosts it taught about it, instead of waiting for their next
// packet; only the addresses whose binding changed since the last call
// are looked at, in one pass over what the hub told whom, and only in
// VPCs it still serves (a hub that lost its duty knows nothing new about
// them, and telling every sender to forget would throw their direct
// paths away for nothing). A sender told that an address
// was unknown (it then holds its packets back for a moment) is told the
// new binding at once, so a new port is reachable from the hosts that
// tried it before it came up without waiting for that moment to end.
func (d *Daemon) teachMoved(h *hubTable, hubOf map[uint32]bool) {
	moved := h.takeMoved()
	keys := map[dataplane.BindingKey]bool{}
	for k := range moved {
		if hubOf[k.vpc] {
			keys[dataplane.BindingKey{VPC: k.vpc, IP: k.ip}] = true
		}
	}
	told, err := d.dp.TaughtAbout(keys)
	if err != nil {
		d.log.Warn("read whom this hub taught", "err", err)
		return
	}
	for dk, senders := range told {
		k := bindingKey{dk.VPC, dk.IP}
		b, ok := h.kernel.Get(dk)
		if old := moved[k]; old != nil {
			d.tell(k, senders, *old, b, ok)
		} else if ok {
			d.tell(k, senders, b, b, true) // it was unknown
		}
	}
}

// tell sends senders the binding of an address (b, ok) or that it is
// gone; old is what they were told before (its VNI carries the message).
func (d *Daemon) tell(k bindingKey, senders []netip.Addr, old, b dataplane.Binding, ok bool) {
	for _, s := range senders {
		msg := dataplane.LearnMsg{Op: dataplane.OpForget, VNI: old.VNI, IP: k.ip}
		if ok {
			msg = dataplane.LearnMsg{Op: dataplane.OpLearn, VNI: b.VNI, IP: k.ip, MAC: b.MAC, VTEP: b.VTEP}
		}
		if err := d.sender.Send(s, old.VNI, msg); err != nil {
			d.log.Warn("send learn message", "to", s, "err", err)
		}
	}
	if len(senders) > 0 {
		d.log.Info("told senders of a moved binding", "vpc", k.vpc, "ip", k.ip, "senders", len(senders), "gone", !ok)
	}
}
