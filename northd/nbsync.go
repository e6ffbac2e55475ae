package northd

import (
	"context"
	"maps"
	"reflect"
	"strconv"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema/nbdb"
)

// writeNB writes back what northd tells the orchestrator: each dirty row's
// status (ok, with its allocated key or VNI, or the sentence that explains
// its refusal) and, last, NB_Global.sb_cfg once the southbound reflects
// nb_cfg. Statuses are written through to the view.
func (n *compiler) writeNB(ctx context.Context, c client.Client, d *dirtySet, ackCfg int, maxOps int, refused *refusals) error {
	if d.full {
		d.markNB(n.nb)
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
	if err := n.writeTopologyStatuses(c, d, add, refused); err != nil {
		return err
	}
	if err := n.writeGroupStatuses(c, d, add, refused); err != nil {
		return err
	}
	if err := n.writeEIPStatuses(c, d, add, refused); err != nil {
		return err
	}
	if err := n.writeSNATStatuses(c, d, add, refused); err != nil {
		return err
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

// markNB marks every row of the northbound view dirty (a full run).
func (d *dirtySet) markNB(nb *nbView) {
	markAll(d.nbVPC, nb.vpcs)
	markAll(d.nbVxnet, nb.vxnets)
	markAll(d.nbRoute, nb.routes)
	markAll(d.nbPort, nb.ports)
	markAll(d.nbSG, nb.sgs)
	markAll(d.nbSGRule, nb.rules)
	markAll(d.nbExtnet, nb.extnets)
	markAll(d.nbEIP, nb.eips)
	markAll(d.nbSNAT, nb.snats)
}

func markAll[T any](dirty map[string]bool, rows map[string]T) {
	for u := range rows {
		dirty[u] = true
	}
}

// writeTopologyStatuses writes the statuses of the dirty VPCs, vxnets,
// routes and ports that differ from what they should say.
func (n *compiler) writeTopologyStatuses(c client.Client, d *dirtySet, add func(built, func()) error, refused *refusals) error {
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
		if cp, fields := n.portWrite(u, refused); len(fields) > 0 {
			if err := add(op(ops.ByUUID(c, cp).Update(cp, fields...)), func() { n.nb.ports[u] = cp }); err != nil {
				return err
			}
		}
	}
	return nil
}

// okStatus and errStatus are the statuses a compiled row can have in
// the NB.
func okStatus(extra ...string) map[string]string {
	s := map[string]string{"state": "ok"}
	for i := 0; i+1 < len(extra); i += 2 {
		s[extra[i]] = extra[i+1]
	}
	return s
}

func errStatus(msg string) map[string]string {
	return map[string]string{"state": "error", "error": msg}
}

func (n *compiler) vpcStatus(u string) map[string]string {
	if c := n.topo.vpcs[u]; c != nil {
		if rec := n.idents.identityRecord(u); rec != "" {
			return okStatus("tunnel_key", strconv.Itoa(c.key), "security_identities", rec)
		}
		return okStatus("tunnel_key", strconv.Itoa(c.key))
	}
	return nil
}

func (n *compiler) vxnetStatus(u string) map[string]string {
	cv := n.topo.vxnets[u]
	switch {
	case cv == nil:
		return nil
	case cv.err != "":
		return errStatus(cv.err)
	}
	st := okStatus("vni", strconv.Itoa(cv.vni))
	if cv.dhcpErr != "" {
		st["dhcp_error"] = cv.dhcpErr
	}
	if cv.excludeErr != "" {
		st["exclude_ips_error"] = cv.excludeErr
	}
	return st
}

func (n *compiler) routeStatus(u string) map[string]string {
	r := n.topo.routes[u]
	switch {
	case r == nil:
		return nil
	case r.err != "":
		return errStatus(r.err)
	default:
		return okStatus()
	}
}

// portWrite is the port row as it should be written back and the
// columns to write (none: nothing to write).
func (n *compiler) portWrite(u string, refused *refusals) (*nbdb.Port, []any) {
	row := n.nb.ports[u]
	if row == nil {
		return nil, nil
	}
	cp := *row
	var fields []any
	if want, write := n.portStatus(u, row.Status); write {
		refused.note("Port", row.Name, row.Status, want)
		cp.Status = want
		fields = append(fields, &cp.Status)
	}
	if want, write := n.portDynamic(u, row.DynamicAddresses); write {
		cp.DynamicAddresses = want
		fields = append(fields, &cp.DynamicAddresses)
	}
	return &cp, fields
}

// portDynamic is what a port's dynamic_addresses should hold given what
// it holds, and whether to write it (ipam.go).
func (n *compiler) portDynamic(u string, current *string) (*string, bool) {
	p := n.ports.ports[u]
	if p == nil {
		return nil, false
	}
	if p.err != "" && (p.dynMAC || p.dynIP) {
		// A refused port keeps what it held, so that a passing mistake
		// (a bad exclude_ips or mac_prefix, its vxnet refused) does not
		// shuffle running VMs' addresses when it is repaired.
		return current, false
	}
	want := p.dynamicAddresses()
	return want, !sameStr(want, current)
}

// portStatus is the status a port should have given its current one: a
// refusal is written, and cleared once it no longer holds; an accepted
// port's status is otherwise left alone (see ports.go).
func (n *compiler) portStatus(u string, current map[string]string) (map[string]string, bool) {
	p := n.ports.ports[u]
	switch {
	case p == nil:
		return nil, false
	case p.err != "":
		want := errStatus(p.err)
		return want, !maps.Equal(current, want)
	case current["state"] == "error":
		return map[string]string{}, true
	default:
		return nil, false
	}
}
