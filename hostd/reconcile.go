package hostd

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"sort"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"

	"github.com/courier-sdn/courier/dataplane"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/ops/sbops"
	"github.com/courier-sdn/courier/pipeline"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// reconcile brings the kernel in line with what is monitored: claims and
// releases ports, opens or closes VPC sessions, computes the whole desired
// data plane and applies it (Apply writes only what differs), then writes
// back what this host can vouch for: ports up, nb_cfg applied, status.
func (d *Daemon) reconcile(ctx context.Context) {
	start := time.Now()
	me := d.cfg.Chassis
	// Read nb_cfg before anything else of the session: the rows read
	// after it are at least that new.
	cfgs := []int{sbCfg(d.base.Client)}
	// The base session's changes only wake reconciles up: reconciles
	// read whole tables. Drain them so they do not pile up.
	d.baseTracker.Drain()
	pbs := ops.Rows[sbdb.PortBinding](d.base)
	d.claim(ctx, pbs)
	claimed := time.Now()

	// The VPCs this host takes part in: those of its bound ports, and
	// those it is a hub of.
	want := map[int]bool{}
	for _, pb := range pbs {
		if d.ours(pb) {
			want[pb.Vpc] = want[pb.Vpc] || false
		}
	}
	if d.cfg.Hub {
		for _, h := range ops.Rows[sbdb.Hub](d.base) {
			for _, c := range h.Chassis {
				if c == me {
					want[h.Vpc] = true
				}
			}
		}
	}
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

	encap := map[string]netip.Addr{}
	for _, c := range ops.Rows[sbdb.Chassis](d.base) {
		if a, err := netip.ParseAddr(c.EncapIP); err == nil {
			encap[c.Name] = a
		}
	}
	st := &dataplane.State{}
	dps := map[string]*sbdb.Datapath{}
	var flowErrs []string
	ready := true
	bindings := map[bindingKey]dataplane.Binding{}
	hubOf := map[uint32]bool{}
	dhcp := map[string]pipeline.DHCPReply{}
	for _, vs := range d.vpcs {
		cfgs = append(cfgs, sbCfg(vs.s.Client))
		vdps := map[string]*sbdb.Datapath{}
		for _, dp := range ops.Rows[sbdb.Datapath](vs.s) {
			vdps[dp.UUID] = dp
			dps[dp.UUID] = dp
		}
		if len(vdps) == 0 {
			ready = false // not compiled yet, or still loading
		}
		fc := vs.compiled(vdps)
		flowErrs = append(flowErrs, fc.errs...)
		maps.Copy(dhcp, fc.dhcp)
		for _, dp := range vdps {
			switch dp.Type {
			case "vpc":
				st.VPCs = append(st.VPCs, dataplane.VPC{ID: uint32(dp.TunnelKey), GwMAC: parseMAC(dp.GatewayMAC), Flags: fc.vpcFlags})
			case "vxnet":
				if dp.Cidr == nil || dp.GatewayIP == nil {
					continue
				}
				cidr, err1 := netip.ParsePrefix(*dp.Cidr)
				gw, err2 := netip.ParseAddr(*dp.GatewayIP)
				if err1 != nil || err2 != nil {
					flowErrs = append(flowErrs, fmt.Sprintf("datapath %s: bad CIDR or gateway", dp.Name))
					continue
				}
				st.Vxnets = append(st.Vxnets, dataplane.Vxnet{VNI: uint32(dp.TunnelKey), VPC: uint32(dp.Vpc), CIDR: cidr,
					GwIP: gw, GwMAC: parseMAC(dp.GatewayMAC), Flags: fc.vxFlags[dp.UUID]})
			}
		}
		st.Routes = append(st.Routes, fc.routes...)
		for _, h := range ops.Rows[sbdb.Hub](vs.s) {
			hs := dataplane.Hubs{VPC: uint32(h.Vpc)}
			for _, c := range h.Chassis {
				if a, ok := encap[c]; ok {
					hs.VTEPs = append(hs.VTEPs, a)
				}
			}
			st.Hubs = append(st.Hubs, hs)
		}
		if vs.hub {
			hubOf[uint32(vs.vpc)] = true
			d.hubBindings(vs, vdps, encap, bindings)
		}
	}
	for _, b := range bindings {
		st.Bindings = append(st.Bindings, b)
	}
	// This host's ports.
	var up []*sbdb.PortBinding
	byName := map[string]*sbdb.PortBinding{}
	for _, pb := range pbs {
		byName[pb.LogicalPort] = pb
		ifindex := d.ifaces[pb.LogicalPort]
		dp := dps[pb.Datapath]
		if !d.ours(pb) || dp == nil {
			continue
		}
		mac := parseMAC(pb.MAC)
		if mac == nil {
			continue
		}
		p := dataplane.Port{Ifindex: ifindex, Name: pb.LogicalPort, VNI: uint32(dp.TunnelKey), VPC: uint32(pb.Vpc), MAC: mac,
			MTU: d.mtu, Security: pb.PortSecurity, Unknown: len(pb.IPs) == 0, TunnelKey: uint32(pb.TunnelKey),
			DHCP: portDHCP(dhcp, pb, dp, d.mtu)}
		for _, s := range pb.IPs {
			if a, err := netip.ParseAddr(s); err == nil {
				p.IPs = append(p.IPs, a)
			}
		}
		for _, s := range pb.VirtualIPs {
			if a, err := netip.ParseAddr(s); err == nil {
				p.VIPs = append(p.VIPs, a)
			}
		}
		st.Ports = append(st.Ports, p)
		if pb.Up == nil || !*pb.Up {
			up = append(up, pb)
		}
	}
	// Addresses this host's ports hold beyond their fixed IPs, once
	// southd has accepted them.
	for _, lb := range ops.Rows[sbdb.LearnedBinding](d.base) {
		if !lb.Accepted {
			continue
		}
		ifindex := d.ifaces[lb.LogicalPort]
		a, err := netip.ParseAddr(lb.IP)
		if pb := byName[lb.LogicalPort]; pb != nil && d.ours(pb) && ifindex != 0 && err == nil {
			st.Locals = append(st.Locals, dataplane.Local{VPC: uint32(lb.Vpc), IP: a, Ifindex: ifindex})
		}
	}

	// Every VM interface gets the DVR as soon as it appears, so that
	// declaring its port only writes map entries.
	for _, ifindex := range d.ifaces {
		st.Interfaces = append(st.Interfaces, ifindex)
	}

	if missing := d.unhealthy(want); missing != "" {
		d.log.Warn("a session ended while computing; not applying", "why", missing)
		d.retryLater()
		return
	}
	computed := time.Now()
	as, err := d.dp.Apply(st)
	applied := time.Now()
	d.m.reconcile(time.Since(start), as, err, len(flowErrs))
	if err != nil {
		d.log.Error("applying the southbound to the kernel failed", "err", err)
		d.status["apply"] = err.Error()
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
	if err == nil {
		d.markUp(ctx, up)
		d.teach(bindings, hubOf)
		d.setProbes(st)
		if ready {
			d.ack(ctx, minOf(cfgs))
		}
	}
	d.writeStatus(ctx)
	if as.Written+as.Removed+as.Attached+as.Detached > 0 {
		d.log.Debug("applied", "written", as.Written, "removed", as.Removed, "attached", as.Attached,
			"detached", as.Detached, "ports", len(st.Ports), "bindings", len(st.Bindings),
			"claim", claimed.Sub(start), "compute", computed.Sub(claimed), "kernel", applied.Sub(computed), "write_back", time.Since(applied))
	}
	d.m.monitored(d.base, d.vpcs)
}

func isMe(c *string, me string) bool { return c != nil && *c == me }

// unhealthy says which session the host needs is down, or "".
func (d *Daemon) unhealthy(want map[int]bool) string {
	select {
	case <-d.base.Done():
		return "base session down"
	default:
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

// ours: a port whose VM interface is here and which is bound here, or
// requested here (then it is ours by right, even before our claim has come
// back through the monitor: it must be programmed before this host
// acknowledges the configuration that created it).
func (d *Daemon) ours(pb *sbdb.PortBinding) bool {
	if d.ifaces[pb.LogicalPort] == 0 {
		return false
	}
	return isMe(pb.Chassis, d.cfg.Chassis) || (pb.Chassis == nil && isMe(pb.RequestedChassis, d.cfg.Chassis))
}

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

// hubBindings adds every binding of a VPC this host is a hub of: bound
// ports' fixed IPs, then the learned addresses southd accepted (it alone
// picks the holder of a contested address). A learned address never
// shadows a fixed one: southd refuses such a row, and until it has, the
// fixed binding stands.
func (d *Daemon) hubBindings(vs *vpcSession, dps map[string]*sbdb.Datapath, encap map[string]netip.Addr, out map[bindingKey]dataplane.Binding) {
	fixed := map[bindingKey]bool{}
	for _, pb := range ops.Rows[sbdb.PortBinding](vs.s) {
		// Where the port is: its chassis, or, until a host has claimed
		// it, the chassis it is requested on, whose hostd programs it
		// before acknowledging.
		at := pb.Chassis
		if at == nil {
			at = pb.RequestedChassis
		}
		if at == nil {
			continue
		}
		vtep, ok := encap[*at]
		dp := dps[pb.Datapath]
		if !ok || dp == nil {
			continue
		}
		for _, s := range pb.IPs {
			if a, err := netip.ParseAddr(s); err == nil {
				out[bindingKey{uint32(pb.Vpc), a}] = dataplane.Binding{VPC: uint32(pb.Vpc), IP: a, VTEP: vtep,
					VNI: uint32(dp.TunnelKey), MAC: parseMAC(pb.MAC)}
				fixed[bindingKey{uint32(pb.Vpc), a}] = true
			}
		}
	}
	for _, lb := range ops.Rows[sbdb.LearnedBinding](vs.s) {
		vtep, ok := encap[lb.Chassis]
		a, err := netip.ParseAddr(lb.IP)
		if !lb.Accepted || !ok || err != nil || fixed[bindingKey{uint32(lb.Vpc), a}] {
			continue
		}
		out[bindingKey{uint32(lb.Vpc), a}] = dataplane.Binding{VPC: uint32(lb.Vpc), IP: a, VTEP: vtep, VNI: uint32(lb.Vni), MAC: parseMAC(lb.MAC)}
	}
}

// teach: a hub whose binding of an address moved or went away tells the
// hosts it taught about it, instead of waiting for their next packet.
// Only for VPCs it still serves: a hub that lost its duty (southd moved
// it, or judged it dead during a database outage) knows nothing new about
// the VPC's addresses, and telling every sender to forget would throw
// their direct paths away for nothing.
func (d *Daemon) teach(now map[bindingKey]dataplane.Binding, hubOf map[uint32]bool) {
	for k, old := range d.taught {
		if !hubOf[k.vpc] {
			continue
		}
		b, ok := now[k]
		if ok && b.VTEP == old.VTEP && b.VNI == old.VNI && b.MAC.String() == old.MAC.String() {
			continue
		}
		senders, err := d.dp.Taught(k.vpc, k.ip)
		if err != nil {
			continue
		}
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
	d.taught = now
}
