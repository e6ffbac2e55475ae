package hostd

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/ops/jsonrpc"
	"github.com/courier-sdn/courier/schema/sbdb"
)

func (d *Daemon) openBase(ctx context.Context) error {
	m, err := sbdb.FullDatabaseModel()
	if err != nil {
		return err
	}
	me := d.cfg.Chassis
	pb := &sbdb.PortBinding{}
	priv := &sbdb.ChassisPrivate{}
	lb := &sbdb.LearnedBinding{}
	blk := &sbdb.SNATBlock{}
	ho := &sbdb.SNATHandoff{}
	mon := []client.MonitorOption{
		client.WithTable(&sbdb.SBGlobal{}),
		client.WithTable(&sbdb.Chassis{}),
		// Its own row, all but the heartbeat it bumps every second:
		// each bump came back as a change and woke a reconcile, a hub's
		// 1.3% of a core idle at 64,000 bindings (0.6% elsewhere).
		client.WithConditionalTable(priv, []model.Condition{{Field: &priv.Name, Function: ovsdb.ConditionEqual, Value: me}},
			&priv.Name, &priv.Alive, &priv.Claims, &priv.ExternalIDs, &priv.NbCfg, &priv.NbCfgTimestamp, &priv.Status),
		// Either condition matches: monitor conditions are a disjunction.
		client.WithConditionalTable(pb, []model.Condition{
			{Field: &pb.RequestedChassis, Function: ovsdb.ConditionEqual, Value: &me},
			{Field: &pb.Chassis, Function: ovsdb.ConditionEqual, Value: &me},
			// a live migration's destination prepares the port (activation.go)
			{Field: &pb.MigrationDestination, Function: ovsdb.ConditionEqual, Value: &me}}),
		client.WithConditionalTable(lb, []model.Condition{{Field: &lb.Chassis, Function: ovsdb.ConditionEqual, Value: me}}),
		// SNAT: every VPC's (a row per VPC), and this host's ports' blocks
		client.WithTable(&sbdb.SNAT{}),
		client.WithConditionalTable(blk, []model.Condition{{Field: &blk.Chassis, Function: ovsdb.ConditionEqual, Value: &me}}),
		// a live-migrated port's SNAT connections, to or from here (snathandoff.go)
		client.WithConditionalTable(ho, []model.Condition{
			{Field: &ho.ToChassis, Function: ovsdb.ConditionEqual, Value: me},
			{Field: &ho.FromChassis, Function: ovsdb.ConditionEqual, Value: me}}),
	}
	if d.cfg.Hub {
		mon = append(mon, client.WithTable(&sbdb.Hub{}))
	}
	d.baseTracker = ops.NewTrackerNotifying(d.notify)
	s, err := ops.Open(ctx, m, d.sbOptions(mon, d.baseTracker))
	if err != nil {
		return err
	}
	d.base = s
	return nil
}

// register creates or updates this host's Chassis and Chassis_Private
// rows. Those are the only rows hostd creates besides learned bindings.
func (d *Daemon) register(ctx context.Context) error {
	roles := []string{}
	if d.cfg.Hub {
		roles = append(roles, "hub")
	}
	other := map[string]string{}
	if g := d.cfg.Gateway; g != nil {
		roles = append(roles, "gateway")
		other[otherConfigGateways] = strings.Join(g.Networks, ",")
	}
	want := &sbdb.Chassis{Name: d.cfg.Chassis, Hostname: d.cfg.Hostname, EncapIP: d.cfg.EncapIP.String(), Roles: roles}
	var txn []ovsdb.Operation
	var have *sbdb.Chassis
	for _, c := range ops.Rows[sbdb.Chassis](d.base) {
		if c.Name == d.cfg.Chassis {
			have = c
		}
	}
	switch {
	case have == nil:
		want.UUID = "chassis"
		want.OtherConfig = other
		o, err := d.base.Create(want)
		if err != nil {
			return err
		}
		txn = append(txn, o...)
	case have.EncapIP != want.EncapIP || have.Hostname != want.Hostname || !ops.EqualSets(have.Roles, want.Roles) ||
		have.OtherConfig[otherConfigGateways] != other[otherConfigGateways]:
		want.UUID = have.UUID
		want.OtherConfig = maps.Clone(have.OtherConfig)
		if want.OtherConfig == nil {
			want.OtherConfig = map[string]string{}
		}
		delete(want.OtherConfig, otherConfigGateways)
		maps.Copy(want.OtherConfig, other)
		o, err := ops.ByUUID(d.base, want).Update(want, &want.EncapIP, &want.Hostname, &want.Roles, &want.OtherConfig)
		if err != nil {
			return err
		}
		txn = append(txn, o...)
	}
	if len(ops.Rows[sbdb.ChassisPrivate](d.base)) == 0 {
		o, err := d.base.Create(&sbdb.ChassisPrivate{UUID: "private", Name: d.cfg.Chassis})
		if err != nil {
			return err
		}
		txn = append(txn, o...)
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := d.transact(cctx, txn...); err != nil {
		return err
	}
	return nil
}

// vpcMonitor is what a host watches of a VPC it takes part in.
func vpcMonitor(vpc int, hub bool) []client.MonitorOption {
	dp := &sbdb.Datapath{}
	lf := &sbdb.LogicalFlow{}
	h := &sbdb.Hub{}
	mon := []client.MonitorOption{
		client.WithTable(&sbdb.SBGlobal{}),
		client.WithConditionalTable(dp, []model.Condition{{Field: &dp.Vpc, Function: ovsdb.ConditionEqual, Value: vpc}}),
		client.WithConditionalTable(lf, []model.Condition{{Field: &lf.Vpc, Function: ovsdb.ConditionEqual, Value: vpc}}),
		client.WithConditionalTable(h, []model.Condition{{Field: &h.Vpc, Function: ovsdb.ConditionEqual, Value: vpc}}),
	}
	pb := &sbdb.PortBinding{}
	if hub {
		lb := &sbdb.LearnedBinding{}
		mon = append(mon,
			client.WithConditionalTable(pb, []model.Condition{{Field: &pb.Vpc, Function: ovsdb.ConditionEqual, Value: vpc}},
				&pb.LogicalPort, &pb.Datapath, &pb.Vpc, &pb.MAC, &pb.IPs, &pb.Chassis, &pb.RequestedChassis, &pb.Eip, &pb.EipVpc),
			client.WithConditionalTable(lb, []model.Condition{{Field: &lb.Vpc, Function: ovsdb.ConditionEqual, Value: vpc}}))
		return mon
	}
	// The VPC's EIPs alone, for hairpins (hairpin.go).
	eipVPC := vpc
	return append(mon, client.WithConditionalTable(pb, []model.Condition{{Field: &pb.EipVpc, Function: ovsdb.ConditionEqual, Value: &eipVPC}},
		&pb.LogicalPort, &pb.Vpc, &pb.IPs, &pb.Eip, &pb.EipVpc))
}

// syncVPCs opens a session for every VPC in want (value: whether this
// host is one of its hubs) and closes the others. A session whose hub duty
// changed is reopened with the wider or narrower monitor.
func (d *Daemon) syncVPCs(ctx context.Context, want map[int]bool) {
	for vpc, vs := range d.vpcs {
		hub, ok := want[vpc]
		select {
		case <-vs.dead:
			ok = false
		default:
		}
		if !ok || hub != vs.hub {
			vs.s.Close()
			delete(d.vpcs, vpc)
			d.log.Info("left VPC", "vpc", vpc, "hub", vs.hub)
		}
	}
	for vpc := range d.vpcOpenFailed {
		if _, ok := want[vpc]; !ok {
			delete(d.vpcOpenFailed, vpc) // a VPC left is tried afresh
		}
	}
	m, _ := sbdb.FullDatabaseModel()
	for vpc, hub := range want {
		if _, ok := d.vpcs[vpc]; ok {
			continue
		}
		tracker := newVPCTracker(d.notify)
		s, err := ops.Open(ctx, m, d.vpcOptions(vpc, hub, tracker))
		if err != nil {
			d.vpcOpenFailed[vpc]++
			d.log.Warn("open VPC session", "vpc", vpc, "err", err, "failures", d.vpcOpenFailed[vpc])
			d.status["vpc-"+fmt.Sprint(vpc)] = "cannot monitor: " + err.Error()
			continue
		}
		delete(d.vpcOpenFailed, vpc)
		vs := &vpcSession{vpc: vpc, hub: hub, s: s, tracker: tracker, dead: make(chan struct{})}
		go func() {
			<-s.Done()
			close(vs.dead)
			d.kick()
		}()
		d.vpcs[vpc] = vs
		delete(d.status, "vpc-"+fmt.Sprint(vpc))
		d.log.Info("joined VPC", "vpc", vpc, "hub", hub)
	}
}

// newVPCTracker is a VPC session's tracker. It keeps a row inserted and
// deleted within one batch, as a delete (ops.Changes.KeepBrief): the
// caches its changes feed (flowParts, the EIPs, the hub table) start
// from the session's rows, which libovsdb's cache holds before it
// delivers their events, so a row they read may have its insert still to
// come, and its delete with it; dropped together, both would leave the
// row in the caches for good. TestIncrementalEqualsFull saw it: a host
// that joined a VPC as a vxnet went kept the vxnet's flows and route.
func newVPCTracker(notify chan struct{}) *ops.Tracker {
	t := ops.NewTrackerNotifying(notify)
	t.KeepBrief = true
	return t
}

func (d *Daemon) closeVPCs() {
	for vpc, vs := range d.vpcs {
		vs.s.Close()
		delete(d.vpcs, vpc)
	}
}

// sbEcho is how often hostd probes a silent southbound server; it gives
// the server jsonrpc.ProbeSilence times as long to answer, as the central
// daemons do. A server sending a hub's initial rows (256,000 bindings)
// to another client answers nobody for seconds: with an answer due
// within one interval, every host dropped and reopened its sessions, each
// reopening asked for its rows again, and at load 6 the server never
// caught up (hostscale at 256,000 ports). Waiting costs a host nothing:
// its data plane forwards meanwhile.
const sbEcho = 5 * time.Second

// sbOptions are the options of a southbound session monitoring mon.
func (d *Daemon) sbOptions(mon []client.MonitorOption, t *ops.Tracker) ops.SessionOptions {
	return ops.SessionOptions{Remotes: d.cfg.SB, Monitor: mon, Tracker: t, EchoInterval: sbEcho,
		EchoTimeout: jsonrpc.ProbeSilence * sbEcho, Logger: d.log, TLS: d.tls}
}

// vpcOptions are the options of a VPC's session: its monitor (vpcMonitor),
// and connecting with its initial rows bounded by vpcOpenTimeout.
func (d *Daemon) vpcOptions(vpc int, hub bool, t *ops.Tracker) ops.SessionOptions {
	o := d.sbOptions(vpcMonitor(vpc, hub), t)
	o.ConnectTimeout = vpcOpenTimeout(d.vpcOpenFailed[vpc])
	return o
}

// vpcOpenTimeout bounds opening a VPC's session (its initial rows
// included) after failures in a row: 30 s, doubled with each, up to 8
// minutes. A hub's rows of a big VPC from a busy server can take longer
// than any fixed bound, and a bound that always cuts them short is tried
// forever, each try costing the server the whole reply again.
func vpcOpenTimeout(failures int) time.Duration {
	return 30 * time.Second << min(failures, 4)
}
