package northd

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"sort"
	"strconv"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/ops/jsonrpc"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// Writing the southbound: for every key a run marked dirty, compare what
// northd wants with what the southbound has and emit the difference. Small
// change sets commit as one transaction. Big ones (a bulk load) are split:
// datapaths first, so that later transactions can reference them by UUID,
// then deletes, then updates and inserts in chunks, then datapath deletes.
// Every committed transaction is written through to sbView at once.

// dirtySet is what the output node says must be compared.
type dirtySet struct {
	full    bool
	dps     map[string]bool // datapath names
	ports   map[string]bool // logical ports
	flowDPs map[string]bool // datapath names
	// NB rows whose status may need writing, by table
	nbVPC, nbVxnet, nbRoute, nbPort map[string]bool
}

func newDirtySet() *dirtySet {
	return &dirtySet{dps: map[string]bool{}, ports: map[string]bool{}, flowDPs: map[string]bool{},
		nbVPC: map[string]bool{}, nbVxnet: map[string]bool{}, nbRoute: map[string]bool{}, nbPort: map[string]bool{}}
}

func (d *dirtySet) empty() bool {
	return !d.full && len(d.dps)+len(d.ports)+len(d.flowDPs)+len(d.nbVPC)+len(d.nbVxnet)+len(d.nbRoute)+len(d.nbPort) == 0
}

// batch is one transaction being built, with what to write through to the
// view when it commits.
type batch struct {
	ops   []ovsdb.Operation
	after []func(res []ovsdb.OperationResult)
}

// built is an operation list from libovsdb's API, or its error.
type built struct {
	ops []ovsdb.Operation
	err error
}

func op(o []ovsdb.Operation, err error) built { return built{o, err} }

func (b *batch) add(o built, after func(res []ovsdb.OperationResult, i int)) error {
	if o.err != nil {
		return o.err
	}
	i := len(b.ops)
	b.ops = append(b.ops, o.ops...)
	if after != nil {
		b.after = append(b.after, func(res []ovsdb.OperationResult) { after(res, i) })
	}
	return nil
}

// sbWriter commits batches through the lock session. A big write is sent
// in chunks, and northd builds the next chunk while ovsdb-server commits
// the one before: at most one transaction is in flight, so they commit in
// order and a failure stops every one after it. What a transaction wrote
// goes into the view once it is answered, on the writer's goroutine.
type sbWriter struct {
	c      client.Client // builds operations
	txn    ops.Transactor
	view   *sbView
	maxOps int
	// limit is the size of the next chunk: it starts small so that
	// ovsdb-server gets its first chunk early, and doubles up to maxOps.
	limit    int
	cur      batch
	named    map[string]string // datapath name -> named UUID in cur
	nextID   int
	txns     int
	inFlight *sentBatch
}

// sentBatch is a transaction sent and not yet answered.
type sentBatch struct {
	done  chan struct{}
	res   []ovsdb.OperationResult
	err   error
	after []func(res []ovsdb.OperationResult)
}

// send hands the current batch to a goroutine that commits it, once the
// one before it is answered. The batch is encoded first, while the one
// before is still with the server, and what that one wrote goes into the
// view after, while the server works on this one.
func (w *sbWriter) send(ctx context.Context) error {
	if len(w.cur.ops) == 0 {
		return nil
	}
	txnOps := w.cur.ops
	commit := func() ([]ovsdb.OperationResult, error) { return ops.Transact(ctx, w.txn, txnOps...) }
	if p, ok := w.txn.(jsonrpc.Preparer); ok {
		prep, err := p.Prepare(txnOps...)
		if err != nil {
			return err
		}
		commit = func() ([]ovsdb.OperationResult, error) { return jsonrpc.Commit(ctx, p, prep) }
	}
	prev, err := w.await()
	if err != nil {
		return err
	}
	b := &sentBatch{done: make(chan struct{}), after: w.cur.after}
	go func() {
		defer close(b.done)
		b.res, b.err = commit()
	}()
	w.inFlight = b
	w.cur = batch{}
	w.named = map[string]string{}
	w.apply(prev)
	return nil
}

// await waits for the transaction in flight, if any, and returns it.
func (w *sbWriter) await() (*sentBatch, error) {
	b := w.inFlight
	if b == nil {
		return nil, nil
	}
	w.inFlight = nil
	<-b.done
	if b.err != nil {
		return nil, b.err
	}
	return b, nil
}

// apply writes what a committed transaction wrote through to the view.
func (w *sbWriter) apply(b *sentBatch) {
	if b == nil {
		return
	}
	w.txns++
	for _, f := range b.after {
		f(b.res)
	}
}

// wait waits for the transaction in flight and applies it.
func (w *sbWriter) wait() error {
	b, err := w.await()
	if err == nil {
		w.apply(b)
	}
	return err
}

// flush commits the current batch and everything before it.
func (w *sbWriter) flush(ctx context.Context) error {
	if err := w.send(ctx); err != nil {
		return err
	}
	return w.wait()
}

func (w *sbWriter) maybeFlush(ctx context.Context) error {
	if len(w.cur.ops) >= w.limit {
		w.limit = min(2*w.limit, w.maxOps)
		return w.send(ctx)
	}
	return nil
}

// dpRef is the UUID by which this batch refers to a datapath: its name in
// this batch, or its UUID once a transaction that created it is answered.
func (w *sbWriter) dpRef(name string) (string, error) {
	if u := w.named[name]; u != "" {
		return u, nil
	}
	if u := w.view.dps[name]; u != "" || w.inFlight == nil {
		return u, nil
	}
	if err := w.wait(); err != nil {
		return "", err
	}
	return w.view.dps[name], nil
}

// desiredDP is the southbound datapath for a name, or nil.
func (n *compiler) desiredDP(name string) *sbdb.Datapath {
	if u, ok := n.topo.vpcByDP[name]; ok {
		vpc := n.topo.vpcs[u]
		return &sbdb.Datapath{Name: name, Type: "vpc", TunnelKey: vpc.key, Vpc: vpc.key,
			GatewayMAC: vpc.gwMAC, ExternalIDs: map[string]string{"nb-uuid": u, "nb-name": vpc.name}}
	}
	if u, ok := n.topo.vxByDP[name]; ok {
		vx := n.topo.vxnets[u]
		vpc := n.topo.vpcs[vx.vpc]
		cidr, gw := vx.cidr.String(), vx.gw.String()
		return &sbdb.Datapath{Name: name, Type: "vxnet", TunnelKey: vx.vni, Vpc: vpc.key,
			Cidr: &cidr, GatewayIP: &gw, GatewayMAC: vpc.gwMAC,
			ExternalIDs: map[string]string{"nb-uuid": u, "nb-name": vx.name}}
	}
	return nil
}

// desiredPB is the southbound binding of a port, or nil; its Datapath
// holds the datapath's name, resolved when written.
func (n *compiler) desiredPB(name string) *sbdb.PortBinding {
	u := n.ports.names[name]
	p := n.ports.ports[u]
	if p == nil || !p.valid() {
		return nil
	}
	vx := n.topo.vxnets[p.vxnet]
	vpc := n.topo.vpcs[vx.vpc]
	pb := &sbdb.PortBinding{LogicalPort: name, Datapath: vxnetDP(vx.name), Vpc: vpc.key,
		TunnelKey: p.key, MAC: p.mac, IPs: p.ips, VirtualIPs: p.vips, PortSecurity: p.security, LearnedLimit: p.learnedLimit}
	if p.chassis != "" {
		c := p.chassis
		pb.RequestedChassis = &c
	}
	return pb
}

func sameStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	as, bs := append([]string{}, a...), append([]string{}, b...)
	sort.Strings(as)
	sort.Strings(bs)
	for i := range as {
		if as[i] != bs[i] {
			return false
		}
	}
	return true
}

func sameStr(a, b *string) bool {
	return (a == nil && b == nil) || (a != nil && b != nil && *a == *b)
}

func sameInt(a, b *int) bool {
	return (a == nil && b == nil) || (a != nil && b != nil && *a == *b)
}

// pbFields lists the northd-owned columns of have that differ from want.
func pbFields(have, want *sbdb.PortBinding) []any {
	var f []any
	if have.Datapath != want.Datapath {
		f = append(f, &want.Datapath)
	}
	if have.Vpc != want.Vpc {
		f = append(f, &want.Vpc)
	}
	if have.TunnelKey != want.TunnelKey {
		f = append(f, &want.TunnelKey)
	}
	if have.MAC != want.MAC {
		f = append(f, &want.MAC)
	}
	if !sameStrings(have.IPs, want.IPs) {
		f = append(f, &want.IPs)
	}
	if !sameStrings(have.VirtualIPs, want.VirtualIPs) {
		f = append(f, &want.VirtualIPs)
	}
	if have.PortSecurity != want.PortSecurity {
		f = append(f, &want.PortSecurity)
	}
	if !sameStr(have.RequestedChassis, want.RequestedChassis) {
		f = append(f, &want.RequestedChassis)
	}
	if !sameInt(have.LearnedLimit, want.LearnedLimit) {
		f = append(f, &want.LearnedLimit)
	}
	return f
}

func dpFields(have, want *sbdb.Datapath) []any {
	var f []any
	if have.Type != want.Type {
		f = append(f, &want.Type)
	}
	if have.TunnelKey != want.TunnelKey {
		f = append(f, &want.TunnelKey)
	}
	if have.Vpc != want.Vpc {
		f = append(f, &want.Vpc)
	}
	if !sameStr(have.Cidr, want.Cidr) {
		f = append(f, &want.Cidr)
	}
	if !sameStr(have.GatewayIP, want.GatewayIP) {
		f = append(f, &want.GatewayIP)
	}
	if have.GatewayMAC != want.GatewayMAC {
		f = append(f, &want.GatewayMAC)
	}
	if !reflect.DeepEqual(have.ExternalIDs, want.ExternalIDs) {
		f = append(f, &want.ExternalIDs)
	}
	return f
}

// writeSB brings the southbound in line with the compiled state for every
// dirty key. It returns the number of transactions committed.
func (n *compiler) writeSB(ctx context.Context, c client.Client, txn ops.Transactor, d *dirtySet, nbCfg int, maxOps int) (int, error) {
	v := n.sb
	if d.full {
		for name := range v.dps {
			d.dps[name] = true
			d.flowDPs[name] = true
		}
		for name := range n.topo.vpcByDP {
			d.dps[name] = true
			d.flowDPs[name] = true
		}
		for name := range n.topo.vxByDP {
			d.dps[name] = true
			d.flowDPs[name] = true
		}
		for name := range v.pbs {
			d.ports[name] = true
		}
		for name := range n.ports.names {
			d.ports[name] = true
		}
	}
	w := &sbWriter{c: c, txn: txn, view: v, maxOps: maxOps, limit: max(maxOps/8, 1), named: map[string]string{}}
	defer func() {
		// After a failure, nothing may still be on its way to the
		// database when the caller reads it again and retries.
		if b := w.inFlight; b != nil {
			<-b.done
		}
	}()

	// Datapaths to create or change; those to delete take their bindings
	// and flows with them (strong references).
	var dpDeletes []*sbdb.Datapath
	dpInserts := 0
	for _, name := range sortedSet(d.dps) {
		want, have := n.desiredDP(name), v.dp(name)
		switch {
		case want != nil && have == nil:
			w.nextID++
			want.UUID = fmt.Sprintf("dp%d", w.nextID)
			w.named[name] = want.UUID
			dpInserts++
			row := *want
			if err := w.cur.add(op(c.Create(want)), func(res []ovsdb.OperationResult, i int) {
				row.UUID = res[i].UUID.GoUUID
				v.putDP(&row)
			}); err != nil {
				return 0, err
			}
		case want != nil && have != nil:
			if f := dpFields(have, want); len(f) > 0 {
				want.UUID = have.UUID
				row := *want
				if err := w.cur.add(op(ops.ByUUID(c, want).Update(want, f...)), func([]ovsdb.OperationResult, int) { v.putDP(&row) }); err != nil {
					return 0, err
				}
			}
		case want == nil && have != nil:
			dpDeletes = append(dpDeletes, have)
			d.flowDPs[name] = true
			for pname, pu := range v.pbs {
				if v.pbByUUID[pu].Datapath == have.UUID {
					d.ports[pname] = true
				}
			}
		}
	}
	// A bulk change commits its datapaths first so that the chunks after
	// it can name them by UUID.
	if dpInserts > 0 && len(w.cur.ops)+n.estimate(d) > maxOps {
		if err := w.flush(ctx); err != nil {
			return w.txns, err
		}
	}

	// Within a table, deletes go first: a flow's key, or a port's tunnel
	// key, may be taken over by a new row.
	type flowOp struct {
		dp   string
		want *flow
		have *sbdb.LogicalFlow
	}
	var flowDeletes, flowUpserts []flowOp
	for _, name := range sortedSet(d.flowDPs) {
		want := n.flows.byDP[name]
		if n.desiredDP(name) == nil {
			want = nil
		}
		haveIdx := v.flows[v.dps[name]]
		wantKeys := map[flowKey]bool{}
		for i := range want {
			f := &want[i]
			wantKeys[f.key()] = true
			var have *sbdb.LogicalFlow
			if u, ok := haveIdx[f.key()]; ok {
				have = v.lfByUUID[u]
			}
			if have == nil || have.Actions != f.actions || have.ExternalIDs["source"] != f.source {
				flowUpserts = append(flowUpserts, flowOp{name, f, have})
			}
		}
		for k, u := range haveIdx {
			if !wantKeys[k] {
				flowDeletes = append(flowDeletes, flowOp{name, nil, v.lfByUUID[u]})
			}
		}
	}
	for _, fo := range flowDeletes {
		row := fo.have
		if err := w.cur.add(op(ops.ByUUID(c, row).Delete()), func([]ovsdb.OperationResult, int) { v.delLF(row.UUID) }); err != nil {
			return w.txns, err
		}
		if err := w.maybeFlush(ctx); err != nil {
			return w.txns, err
		}
	}
	for _, fo := range flowUpserts {
		dpU, err := w.dpRef(fo.dp)
		if err != nil {
			return w.txns, err
		}
		dpKey := n.dpVPC(fo.dp)
		if fo.have != nil {
			row := *fo.have
			row.Actions = fo.want.actions
			row.ExternalIDs = map[string]string{"source": fo.want.source}
			if err := w.cur.add(op(ops.ByUUID(c, &row).Update(&row, &row.Actions, &row.ExternalIDs)),
				func([]ovsdb.OperationResult, int) { v.putLF(&row) }); err != nil {
				return w.txns, err
			}
		} else {
			row := &sbdb.LogicalFlow{Datapath: dpU, Vpc: dpKey,
				Stage: fo.want.stage, Priority: fo.want.priority, Match: fo.want.match, Actions: fo.want.actions,
				ExternalIDs: map[string]string{"source": fo.want.source}}
			name := fo.dp
			if err := w.cur.add(built{ops: []ovsdb.Operation{lfInsert(row)}}, func(res []ovsdb.OperationResult, i int) {
				r := *row
				r.UUID = res[i].UUID.GoUUID
				r.Datapath = v.dps[name]
				v.putLF(&r)
			}); err != nil {
				return w.txns, err
			}
		}
		if err := w.maybeFlush(ctx); err != nil {
			return w.txns, err
		}
	}
	// The flows go first: they are ready at once, and the server commits
	// them while the bindings are computed.
	type pbOp struct {
		want, have *sbdb.PortBinding
	}
	var pbDeletes, pbUpserts []pbOp
	for _, name := range sortedSet(d.ports) {
		want, have := n.desiredPB(name), v.pb(name)
		switch {
		case want == nil && have != nil:
			pbDeletes = append(pbDeletes, pbOp{nil, have})
		case want != nil:
			pbUpserts = append(pbUpserts, pbOp{want, have})
		}
	}
	for _, po := range pbDeletes {
		row := po.have
		if err := w.cur.add(op(ops.ByUUID(c, row).Delete()), func([]ovsdb.OperationResult, int) { v.delPB(row.UUID) }); err != nil {
			return w.txns, err
		}
		if err := w.maybeFlush(ctx); err != nil {
			return w.txns, err
		}
	}
	for _, po := range pbUpserts {
		want, have := po.want, po.have
		dpName := want.Datapath
		dpU, err := w.dpRef(dpName)
		if err != nil {
			return w.txns, err
		}
		want.Datapath = dpU
		if have != nil {
			f := pbFields(have, want)
			if len(f) == 0 {
				continue
			}
			row := *have
			row.Datapath, row.Vpc, row.TunnelKey, row.MAC = want.Datapath, want.Vpc, want.TunnelKey, want.MAC
			row.IPs, row.VirtualIPs, row.PortSecurity = want.IPs, want.VirtualIPs, want.PortSecurity
			row.RequestedChassis, row.LearnedLimit = want.RequestedChassis, want.LearnedLimit
			want.UUID = have.UUID
			if err := w.cur.add(op(ops.ByUUID(c, want).Update(want, f...)), func([]ovsdb.OperationResult, int) {
				r := row
				r.Datapath = v.dps[dpName]
				v.putPB(&r)
			}); err != nil {
				return w.txns, err
			}
		} else {
			row := *want
			if err := w.cur.add(built{ops: []ovsdb.Operation{pbInsert(want)}}, func(res []ovsdb.OperationResult, i int) {
				r := row
				r.UUID = res[i].UUID.GoUUID
				r.Datapath = v.dps[dpName]
				v.putPB(&r)
			}); err != nil {
				return w.txns, err
			}
		}
		if err := w.maybeFlush(ctx); err != nil {
			return w.txns, err
		}
	}
	for _, dp := range dpDeletes {
		row := dp
		if err := w.cur.add(op(ops.ByUUID(c, row).Delete()), func([]ovsdb.OperationResult, int) { v.delDP(row.UUID) }); err != nil {
			return w.txns, err
		}
	}
	if err := w.flush(ctx); err != nil {
		return w.txns, err
	}
	// The acknowledgement goes in a transaction of its own, after every
	// change: a host that sees it in its monitor has seen all of them.
	if v.global != nil && v.global.NbCfg != nbCfg {
		g := *v.global
		g.NbCfg = nbCfg
		if err := w.cur.add(op(ops.ByUUID(c, &g).Update(&g, &g.NbCfg)), func([]ovsdb.OperationResult, int) { v.global = &g }); err != nil {
			return w.txns, err
		}
		if err := w.flush(ctx); err != nil {
			return w.txns, err
		}
	}
	return w.txns, nil
}

// estimate bounds the operations the rest of a write may need.
func (n *compiler) estimate(d *dirtySet) int {
	e := len(d.ports)
	for name := range d.flowDPs {
		e += len(n.flows.byDP[name]) + len(n.sb.flows[n.sb.dps[name]])
	}
	return e
}

// dpVPC is the VPC key of a datapath by name.
func (n *compiler) dpVPC(name string) int {
	if dp := n.desiredDP(name); dp != nil {
		return dp.Vpc
	}
	return 0
}

func sortedSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// statusOf is the status a compiled row should have in the NB.
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
	default:
		return okStatus("vni", strconv.Itoa(cv.vni))
	}
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

// Bindings and flows are the bulk of a big write, so their inserts are
// built directly rather than through libovsdb's reflection-based mapper
// (a third of the write's CPU at 64,000 ports). A test checks that the
// two produce the same rows.

func set(vals []string) ovsdb.OvsSet {
	s := make([]any, len(vals))
	for i, v := range vals {
		s[i] = v
	}
	return ovsdb.OvsSet{GoSet: s}
}

func smap(m map[string]string) ovsdb.OvsMap {
	o := make(map[any]any, len(m))
	for k, v := range m {
		o[k] = v
	}
	return ovsdb.OvsMap{GoMap: o}
}

func optional(p *string) ovsdb.OvsSet {
	if p == nil {
		return ovsdb.OvsSet{GoSet: []any{}}
	}
	return ovsdb.OvsSet{GoSet: []any{*p}}
}

// pbInsert leaves empty columns out (they take their defaults): at
// 64,000 bindings ovsdb-server spends a fifth less time on lean rows.
func pbInsert(pb *sbdb.PortBinding) ovsdb.Operation {
	row := ovsdb.Row{"logical_port": pb.LogicalPort, "datapath": ovsdb.UUID{GoUUID: pb.Datapath}, "vpc": pb.Vpc,
		"tunnel_key": pb.TunnelKey, "mac": pb.MAC, "port_security": pb.PortSecurity}
	if len(pb.IPs) > 0 {
		row["ips"] = set(pb.IPs)
	}
	if len(pb.VirtualIPs) > 0 {
		row["virtual_ips"] = set(pb.VirtualIPs)
	}
	if pb.RequestedChassis != nil {
		row["requested_chassis"] = optional(pb.RequestedChassis)
	}
	if pb.LearnedLimit != nil {
		row["learned_limit"] = ovsdb.OvsSet{GoSet: []any{*pb.LearnedLimit}}
	}
	if len(pb.ExternalIDs) > 0 {
		row["external_ids"] = smap(pb.ExternalIDs)
	}
	// No uuid-name: nothing in the transaction refers to the row, and
	// naming it costs ovsdb-server a symbol-table entry per row.
	return ovsdb.Operation{Op: ovsdb.OperationInsert, Table: sbdb.PortBindingTable, Row: row}
}

func lfInsert(f *sbdb.LogicalFlow) ovsdb.Operation {
	return ovsdb.Operation{Op: ovsdb.OperationInsert, Table: sbdb.LogicalFlowTable, Row: ovsdb.Row{
		"datapath": ovsdb.UUID{GoUUID: f.Datapath}, "vpc": f.Vpc, "stage": f.Stage, "priority": f.Priority,
		"match": f.Match, "actions": f.Actions, "external_ids": smap(f.ExternalIDs)}}
}
