package hostd

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/dataplane"
	"github.com/courier-sdn/courier/northd/rules"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/ops/sbops"
	"github.com/courier-sdn/courier/schema"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// Learned bindings: addresses only the data plane sees a port use. hostd
// writes what its ports announced as Learned_Binding rows naming its
// chassis, after checking what it can check alone (the address is the
// port's to claim, the port is under its limit); southd checks the rest
// against the whole VPC (no other port's fixed or virtual IP), picks the
// winner of a contested address, and marks it accepted. Only accepted
// rows are acted on, here and on hubs: the winner is decided once, by
// southd.
//
// The data plane has already dropped what a port may not use at all (an
// address outside its vxnet) and limited how many announcements a port
// makes per second (its announcement budget), so a port spraying
// addresses costs hostd a few events a second.

// Reasons a learned address is refused, as counted and logged.
const (
	refusedNotDeclared = "not_declared" // a virtual IP the port does not have
	refusedAddress     = "bad_address"  // not a free host address of the port's vxnet
	refusedLimit       = "limit"        // the port holds its learned_limit already
	refusedNoVxnet     = "no_vxnet"     // the port's vxnet is not known here (yet)
)

// event records what a port announced (a virtual IP taken over by
// gratuitous ARP) or used (an address of a port declared with unknown
// addresses).
func (d *Daemon) event(ctx context.Context, e dataplane.Event) {
	if e.Type == dataplane.EventResumed {
		d.activate(ctx, e)
		return
	}
	port := d.byIndex[e.Ifindex]
	if port == "" {
		return
	}
	pb, err := ops.Lookup(ctx, d.base, &sbdb.PortBinding{LogicalPort: port})
	if err != nil || pb == nil || !isMe(pb.Chassis, d.cfg.Chassis) {
		return
	}
	kind := "virtual_ip"
	if e.Type == dataplane.EventAddrSeen {
		kind = "unknown"
	}
	vx := d.datapath(pb.Vpc, pb.Datapath)
	if why := refuseLearned(pb, kind, e.IP, vx, ops.Rows[sbdb.LearnedBinding](d.base)); why != "" {
		d.m.learnedRefused.WithLabelValues(why).Inc()
		if d.logLimit.allow(port + "/" + why) {
			d.log.Warn("refused an address a port announced", "port", port, "ip", e.IP, "kind", kind, "why", why)
		}
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	seq, err := d.writeLearned(cctx, pb, kind, e)
	if err != nil {
		d.log.Warn("record learned binding", "port", port, "ip", e.IP, "err", err)
		return
	}
	d.m.learned.WithLabelValues(kind).Inc()
	d.log.Info("port announced an address", "port", port, "ip", e.IP, "kind", kind, "seq", seq)
}

// refuseLearned says why pb may not hold ip, or "": what hostd can
// check alone, with the port's vxnet (nil if not known here) and the
// learned bindings of this chassis.
func refuseLearned(pb *sbdb.PortBinding, kind string, ip netip.Addr, vx *sbdb.Datapath, mine []*sbdb.LearnedBinding) string {
	if kind == "virtual_ip" {
		if !slices.Contains(pb.VirtualIPs, ip.String()) {
			return refusedNotDeclared
		}
		return ""
	}
	if len(pb.IPs) > 0 {
		return refusedNotDeclared
	}
	if vx == nil || vx.Cidr == nil || vx.GatewayIP == nil {
		return refusedNoVxnet
	}
	cidr, err1 := netip.ParsePrefix(*vx.Cidr)
	gw, err2 := netip.ParseAddr(*vx.GatewayIP)
	if err1 != nil || err2 != nil || rules.CheckPortIP(vx.Name, cidr, gw, ip) != nil {
		return refusedAddress
	}
	held := 0
	for _, lb := range mine {
		if lb.LogicalPort != pb.LogicalPort || lb.Kind != "unknown" {
			continue
		}
		if lb.IP == ip.String() {
			return "" // held already: a refresh
		}
		held++
	}
	if held >= learnedLimit(pb) {
		return refusedLimit
	}
	return ""
}

// learnedLimit is how many addresses pb may learn.
func learnedLimit(pb *sbdb.PortBinding) int {
	if pb.LearnedLimit != nil {
		return *pb.LearnedLimit
	}
	return schema.DefaultLearnedLimit
}

// datapath finds a datapath of a VPC this host takes part in.
func (d *Daemon) datapath(vpc int, uuid string) *sbdb.Datapath {
	vs := d.vpcs[vpc]
	if vs == nil {
		return nil
	}
	dp, _ := ops.Lookup(context.Background(), vs.s, &sbdb.Datapath{UUID: uuid})
	return dp
}

// writeLearned inserts or updates the port's row for the address with a
// sequence one above every holder's, so that the newest announcement
// wins. The holders are read and the row written in one transaction that
// waits for the holders to be as read: two hosts announcing at once can
// never write the same sequence; the loser of the race reads again.
func (d *Daemon) writeLearned(ctx context.Context, pb *sbdb.PortBinding, kind string, e dataplane.Event) (int, error) {
	ip := e.IP.String()
	for attempt := 1; ; attempt++ {
		res, err := ops.Transact(ctx, d.base, sbops.SelectLearnedBindingHolders(pb.Vpc, ip))
		if err != nil {
			return 0, err
		}
		seq, mine := 0, ""
		read := make([]ovsdb.Row, 0, len(res[0].Rows))
		for _, r := range res[0].Rows {
			s, _ := r["seq"].(int)
			if f, ok := r["seq"].(float64); ok {
				s = int(f)
			}
			seq = max(seq, s)
			u, _ := r["_uuid"].(ovsdb.UUID)
			if r["logical_port"] == pb.LogicalPort {
				mine = u.GoUUID
			}
			read = append(read, ovsdb.Row{"_uuid": u, "seq": s})
		}
		lb := &sbdb.LearnedBinding{Vpc: pb.Vpc, IP: ip, LogicalPort: pb.LogicalPort, Chassis: d.cfg.Chassis,
			Vni: int(e.VNI), MAC: e.MAC.String(), Kind: kind, Seq: seq + 1, Timestamp: int(time.Now().UnixMilli())}
		_, err = d.transact(ctx, sbops.LearnedBindingHoldersAre(pb.Vpc, ip, read), sbops.UpsertLearnedBinding(mine, lb))
		var te *ops.TxnError
		if err != nil && errors.As(err, &te) && te.Op == ovsdb.OperationWait && attempt < 10 {
			// Another writer came in between: read again, after a
			// random pause so that two racing writers fall out of step.
			d.m.learnedRetries.Inc()
			select {
			case <-ctx.Done():
				return 0, ctx.Err()
			case <-time.After(time.Duration(rand.Int64N(int64(attempt) * int64(5*time.Millisecond)))):
			}
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("after %d attempts: %w", attempt, err)
		}
		return seq + 1, nil
	}
}

// learnedRefresh is how often hostd re-stamps the learned bindings its
// ports still hold, well within southd's aging threshold (10 minutes by
// default), so that only the bindings of ports gone or moved age out.
const learnedRefresh = 2 * time.Minute

func (d *Daemon) refreshLearned(ctx context.Context) {
	if time.Since(d.refreshed) < learnedRefresh {
		return
	}
	d.refreshed = time.Now()
	bound := map[string]bool{}
	for _, pb := range ops.Rows[sbdb.PortBinding](d.base) {
		if isMe(pb.Chassis, d.cfg.Chassis) && d.ifaces[pb.LogicalPort] != 0 {
			bound[pb.LogicalPort] = true
		}
	}
	var txn []ovsdb.Operation
	now := time.Now()
	for _, lb := range ops.Rows[sbdb.LearnedBinding](d.base) {
		if bound[lb.LogicalPort] {
			txn = append(txn, sbops.TouchLearnedBinding(lb.UUID, now))
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := d.transact(cctx, txn...); err != nil {
		d.log.Warn("refresh learned bindings", "err", err)
	}
}

// logLimiter lets a message with a given key through at most once per
// interval: a hostile port must not flood the log either.
type logLimiter struct {
	every time.Duration
	last  map[string]time.Time
}

// newLogLimiter lets each message through once in 10 s.
func newLogLimiter() *logLimiter {
	return &logLimiter{every: 10 * time.Second, last: map[string]time.Time{}}
}

func (l *logLimiter) allow(key string) bool {
	now := time.Now()
	if t, ok := l.last[key]; ok && now.Sub(t) < l.every {
		return false
	}
	if len(l.last) > 4096 {
		clear(l.last)
	}
	l.last[key] = now
	return true
}
