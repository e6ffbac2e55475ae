package northd

import (
	"context"
	"reflect"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/ops"
)

// writeNB writes back what northd tells the orchestrator: each dirty row's
// status (ok, with its allocated key or VNI, or the sentence that explains
// its refusal) and, last, NB_Global.sb_cfg once the southbound reflects
// nb_cfg. Statuses are written through to the view.
func (n *compiler) writeNB(ctx context.Context, c client.Client, d *dirtySet, ackCfg int, maxOps int, refused *refusals) error {
	if d.full {
		for u := range n.nb.vpcs {
			d.nbVPC[u] = true
		}
		for u := range n.nb.vxnets {
			d.nbVxnet[u] = true
		}
		for u := range n.nb.routes {
			d.nbRoute[u] = true
		}
		for u := range n.nb.ports {
			d.nbPort[u] = true
		}
	}
	var b batch
	flush := func() error {
		if len(b.ops) == 0 {
			return nil
		}
		res, err := ops.Transact(ctx, c, b.ops...)
		if err != nil {
			return err
		}
		for _, f := range b.after {
			f(res)
		}
		b = batch{}
		return nil
	}
	add := func(o built, after func()) error {
		if err := b.add(o, func([]ovsdb.OperationResult, int) { after() }); err != nil {
			return err
		}
		if len(b.ops) >= maxOps {
			return flush()
		}
		return nil
	}
	for _, u := range sortedSet(d.nbVPC) {
		if row, want := n.nb.vpcs[u], n.vpcStatus(u); row != nil && want != nil && !reflect.DeepEqual(row.Status, want) {
			refused.note("VPC", row.Name, row.Status, want)
			cp := *row
			cp.Status = want
			if err := add(op(ops.ByUUID(c, &cp).Update(&cp, &cp.Status)), func() { n.nb.vpcs[u] = &cp }); err != nil {
				return err
			}
		}
	}
	for _, u := range sortedSet(d.nbVxnet) {
		if row, want := n.nb.vxnets[u], n.vxnetStatus(u); row != nil && want != nil && !reflect.DeepEqual(row.Status, want) {
			refused.note("Vxnet", row.Name, row.Status, want)
			cp := *row
			cp.Status = want
			if err := add(op(ops.ByUUID(c, &cp).Update(&cp, &cp.Status)), func() { n.nb.vxnets[u] = &cp }); err != nil {
				return err
			}
		}
	}
	for _, u := range sortedSet(d.nbRoute) {
		if row, want := n.nb.routes[u], n.routeStatus(u); row != nil && want != nil && !reflect.DeepEqual(row.Status, want) {
			refused.note("Route", row.Prefix+" via "+row.Nexthop, row.Status, want)
			cp := *row
			cp.Status = want
			if err := add(op(ops.ByUUID(c, &cp).Update(&cp, &cp.Status)), func() { n.nb.routes[u] = &cp }); err != nil {
				return err
			}
		}
	}
	for _, u := range sortedSet(d.nbPort) {
		row := n.nb.ports[u]
		if row == nil {
			continue
		}
		if want, write := n.portStatus(u, row.Status); write {
			refused.note("Port", row.Name, row.Status, want)
			cp := *row
			cp.Status = want
			if err := add(op(ops.ByUUID(c, &cp).Update(&cp, &cp.Status)), func() { n.nb.ports[u] = &cp }); err != nil {
				return err
			}
		}
	}
	if g := n.nb.global; g != nil && g.SbCfg != ackCfg {
		cp := *g
		cp.SbCfg = ackCfg
		cp.SbCfgTimestamp = int(time.Now().UnixMilli())
		if err := add(op(ops.ByUUID(c, &cp).Update(&cp, &cp.SbCfg, &cp.SbCfgTimestamp)), func() { n.nb.global = &cp }); err != nil {
			return err
		}
	}
	return flush()
}
