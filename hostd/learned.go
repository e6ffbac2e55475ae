package hostd

import (
	"context"
	"time"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/dataplane"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// event records what a port announced (a virtual IP taken over by
// gratuitous ARP) or used (an address of a port declared with unknown
// addresses) as a Learned_Binding row of this chassis. southd decides
// which port holds a contested address; hubs follow its decision.
func (d *Daemon) event(ctx context.Context, e dataplane.Event) {
	port := d.byIndex[e.Ifindex]
	var pb *sbdb.PortBinding
	for _, p := range ops.Rows[sbdb.PortBinding](d.base) {
		if p.LogicalPort == port && isMe(p.Chassis, d.cfg.Chassis) {
			pb = p
		}
	}
	if pb == nil {
		return
	}
	kind := "virtual_ip"
	if e.Type == dataplane.EventAddrSeen {
		kind = "unknown"
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// The announcement's sequence: one more than any holder's so far, so
	// that the newest announcement wins.
	ip := e.IP.String()
	res, err := ops.Transact(cctx, d.base, ovsdb.Operation{Op: ovsdb.OperationSelect, Table: sbdb.LearnedBindingTable,
		Where:   []ovsdb.Condition{{Column: "vpc", Function: ovsdb.ConditionEqual, Value: pb.Vpc}, {Column: "ip", Function: ovsdb.ConditionEqual, Value: ip}},
		Columns: []string{"_uuid", "logical_port", "seq"}})
	if err != nil {
		d.log.Warn("read learned bindings", "err", err)
		return
	}
	seq, mine := 0, ""
	for _, r := range res[0].Rows {
		if s, ok := r["seq"].(int); ok && s > seq {
			seq = s
		} else if f, ok := r["seq"].(float64); ok && int(f) > seq {
			seq = int(f)
		}
		if r["logical_port"] == port {
			if u, ok := r["_uuid"].(ovsdb.UUID); ok {
				mine = u.GoUUID
			}
		}
	}
	row := ovsdb.Row{"vpc": pb.Vpc, "vni": int(e.VNI), "ip": ip, "mac": e.MAC.String(), "logical_port": port,
		"chassis": d.cfg.Chassis, "kind": kind, "seq": seq + 1, "timestamp": int(time.Now().UnixMilli())}
	op := ovsdb.Operation{Op: ovsdb.OperationInsert, Table: sbdb.LearnedBindingTable, Row: row}
	if mine != "" {
		op = ovsdb.Operation{Op: ovsdb.OperationUpdate, Table: sbdb.LearnedBindingTable, Row: row,
			Where: []ovsdb.Condition{{Column: "_uuid", Function: ovsdb.ConditionEqual, Value: ovsdb.UUID{GoUUID: mine}}}}
	}
	if _, err := ops.Transact(cctx, d.base, op); err != nil {
		d.log.Warn("record learned binding", "port", port, "ip", ip, "err", err)
		return
	}
	d.m.learned.WithLabelValues(kind).Inc()
	d.log.Info("port announced an address", "port", port, "ip", ip, "kind", kind, "seq", seq+1)
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
	now := int(time.Now().UnixMilli())
	for _, lb := range ops.Rows[sbdb.LearnedBinding](d.base) {
		if bound[lb.LogicalPort] {
			txn = append(txn, ovsdb.Operation{Op: ovsdb.OperationUpdate, Table: sbdb.LearnedBindingTable,
				Where: []ovsdb.Condition{{Column: "_uuid", Function: ovsdb.ConditionEqual, Value: ovsdb.UUID{GoUUID: lb.UUID}}},
				Row:   ovsdb.Row{"timestamp": now}})
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := ops.Transact(cctx, d.base, txn...); err != nil {
		d.log.Warn("refresh learned bindings", "err", err)
	}
}
