package northd

import (
	"context"
	"fmt"
	"maps"
	"sort"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/ops/sbops"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// Writing the southbound: for every key a run marked dirty, compare what
// northd wants with what the southbound has and emit the difference, one
// generic table sync (ops.Diff) per table. Small change sets commit as
// one transaction. Big ones (a bulk load) are split (sbwriter.go):
// datapaths first, so that later transactions can reference them by
// UUID, then deletes, then updates and inserts in chunks, then datapath
// deletes. Every committed transaction is written through to sbView at
// once.

// The columns northd owns in each table it writes: the ones it compares
// and writes. A binding's chassis and up are southd's and the hosts';
// a row's key (a datapath's name, a binding's logical_port, a flow's
// datapath, stage, priority and match) is how it is found, not compared.
var (
	dpOwned = []string{"type", "tunnel_key", "vpc", "cidr", "gateway_ip", "gateway_mac", "security_identities", "external_ids"}
	lfOwned = []string{"actions", "external_ids"}
	pbOwned = []string{"datapath", "vpc", "tunnel_key", "mac", "ips", "virtual_ips", "port_security",
		"requested_chassis", "migration_destination", "learned_limit", "sg_identity", "eip", "eip_network", "eip_kind", "eip_vpc"}
)

// dirtySet is what the output node says must be compared.
type dirtySet struct {
	full    bool
	dps     map[string]bool // datapath names
	ports   map[string]bool // logical ports
	flowDPs map[string]bool // datapath names
	// datapath names of which only these stages' flows are compared
	// (a datapath in flowDPs is compared whole)
	flowStages map[string]map[string]bool
	// NB rows whose status may need writing, by table
	nbVPC, nbVxnet, nbRoute, nbPort map[string]bool
	nbSG, nbSGRule                  map[string]bool
	nbExtnet, nbEIP, nbSNAT         map[string]bool
	snats                           map[int]bool    // SB SNAT rows, by VPC key
	extnets                         map[string]bool // SB External_Network rows, by name
}

func newDirtySet() *dirtySet {
	return &dirtySet{dps: map[string]bool{}, ports: map[string]bool{}, flowDPs: map[string]bool{}, flowStages: map[string]map[string]bool{},
		nbVPC: map[string]bool{}, nbVxnet: map[string]bool{}, nbRoute: map[string]bool{}, nbPort: map[string]bool{},
		nbSG: map[string]bool{}, nbSGRule: map[string]bool{}, nbExtnet: map[string]bool{}, nbEIP: map[string]bool{},
		nbSNAT: map[string]bool{}, snats: map[int]bool{}, extnets: map[string]bool{}}
}

func (d *dirtySet) empty() bool {
	return !d.full && len(d.dps)+len(d.ports)+len(d.flowDPs)+len(d.flowStages)+len(d.nbVPC)+len(d.nbVxnet)+len(d.nbRoute)+len(d.nbPort)+
		len(d.nbSG)+len(d.nbSGRule)+len(d.nbExtnet)+len(d.nbEIP)+len(d.nbSNAT)+len(d.snats)+len(d.extnets) == 0
}

// desiredDP is the southbound datapath for a name, or nil.
func (n *compiler) desiredDP(name string) *sbdb.Datapath {
	if u, ok := n.topo.vpcByDP[name]; ok {
		vpc := n.topo.vpcs[u]
		return &sbdb.Datapath{Name: name, Type: "vpc", TunnelKey: vpc.key, Vpc: vpc.key,
			GatewayMAC: vpc.gwMAC, SecurityIdentities: n.idents.identityTable(u),
			ExternalIDs: map[string]string{"nb-uuid": u, "nb-name": vpc.name}}
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
	if p.migratingTo != "" {
		m := p.migratingTo
		pb.MigrationDestination = &m
	}
	if id := n.idents.port[u]; id != 0 {
		pb.SgIdentity = &id
	}
	if b, ok := n.eips.byPort[u]; ok {
		pb.Eip, pb.EipNetwork = &b.addr, &b.net
		vpcKey := vpc.key
		pb.EipVpc = &vpcKey
		if b.kind != "" {
			kind := b.kind
			pb.EipKind = &kind
		}
	}
	return pb
}

// writeSB brings the southbound in line with the compiled state for every
// dirty key. It returns the number of transactions committed.
func (n *compiler) writeSB(ctx context.Context, txn ops.Transactor, d *dirtySet, nbCfg int, maxOps int) (int, error) {
	if d.full {
		n.markAllSB(d)
	}
	w := &sbWriter{txn: txn, view: n.sb, maxOps: maxOps, limit: max(maxOps/8, 1), named: map[string]string{}}
	defer func() {
		// After a failure, nothing may still be on its way to the
		// database when the caller reads it again and retries.
		if b := w.inFlight; b != nil {
			<-b.done
		}
	}()
	dpDeletes, dpInserts := n.syncDatapaths(w, d)
	// A bulk change commits its datapaths first so that the chunks after
	// it can name them by UUID.
	if dpInserts > 0 && len(w.cur.ops)+n.estimate(d) > maxOps {
		if err := w.flush(ctx); err != nil {
			return w.txns, err
		}
	}
	// The flows go first: they are ready at once, and the server commits
	// them while the bindings are computed.
	if err := n.syncFlows(ctx, w, d); err != nil {
		return w.txns, err
	}
	if err := n.syncBindings(ctx, w, d); err != nil {
		return w.txns, err
	}
	n.syncSNATs(w, d)
	n.syncExtnets(w, d)
	v := n.sb
	for _, dp := range dpDeletes {
		row := dp
		w.cur.put(sbops.Datapaths().DeleteByUUID(row.UUID), func([]ovsdb.OperationResult, int) { v.delDP(row.UUID) })
	}
	if err := w.flush(ctx); err != nil {
		return w.txns, err
	}
	// The acknowledgement goes in a transaction of its own, after every
	// change: a host that sees it in its monitor has seen all of them.
	if v.global != nil && v.global.NbCfg != nbCfg {
		g := *v.global
		g.NbCfg = nbCfg
		w.cur.put(sbops.SetSBGlobalNbCfg(v.global, nbCfg), func([]ovsdb.OperationResult, int) { v.global = &g })
		if err := w.flush(ctx); err != nil {
			return w.txns, err
		}
	}
	return w.txns, nil
}

// markAllSB makes every key northd or the southbound knows dirty.
func (n *compiler) markAllSB(d *dirtySet) {
	v := n.sb
	for _, names := range []map[string]string{v.dps, n.topo.vpcByDP, n.topo.vxByDP} {
		for name := range names {
			d.dps[name] = true
			d.flowDPs[name] = true
		}
	}
	for name := range v.pbs {
		d.ports[name] = true
	}
	for name := range n.ports.names {
		d.ports[name] = true
	}
	for k := range v.snats.byKey {
		d.snats[k] = true
	}
	for k := range v.extnets.byKey {
		d.extnets[k] = true
	}
	for k := range n.eips.sbNets {
		d.extnets[k] = true
	}
	for k := range n.snat.byKey {
		d.snats[k] = true
	}
}

// syncDatapaths adds the datapaths to create or change to the batch, and
// returns those to delete, which take their bindings and flows with them
// (strong references) and so go last, and how many it inserts.
func (n *compiler) syncDatapaths(w *sbWriter, d *dirtySet) ([]*sbdb.Datapath, int) {
	v, t := n.sb, sbops.Datapaths()
	deletes, upserts := ops.Diff(t, dpOwned, sortedSet(d.dps), n.desiredDP, v.dp)
	inserts := 0
	for _, e := range upserts {
		if e.Have == nil {
			inserts++
			w.nextID++
			e.Want.UUID = fmt.Sprintf("dp%d", w.nextID)
			w.named[e.Key] = e.Want.UUID
			row := *e.Want
			w.cur.put(t.Insert(e.Want), func(res []ovsdb.OperationResult, i int) {
				row.UUID = res[i].UUID.GoUUID
				v.putDP(&row)
			})
			continue
		}
		row := t.With(e.Have, e.Want, e.Columns...)
		w.cur.put(t.UpdateByUUID(row, e.Columns...), func([]ovsdb.OperationResult, int) { v.putDP(row) })
	}
	var gone []*sbdb.Datapath
	for _, e := range deletes {
		gone = append(gone, e.Have)
		d.flowDPs[e.Key] = true
		for pname, pu := range v.pbs {
			if v.pbByUUID[pu].Datapath == e.Have.UUID {
				d.ports[pname] = true
			}
		}
	}
	return gone, inserts
}

// lfRef is a flow's key across datapaths: the datapath's name, then the
// key within it.
type lfRef struct {
	dp  string
	key flowKey
}

// syncFlows writes the flows of every dirty datapath. Within a table,
// deletes go first: a flow's key may be taken over by a new row.
func (n *compiler) syncFlows(ctx context.Context, w *sbWriter, d *dirtySet) error {
	v, t := n.sb, sbops.LogicalFlows()
	var keys []lfRef
	want := map[lfRef]*flow{}
	for _, name := range d.flowNames() {
		fs := n.flows.byDP[name]
		if n.desiredDP(name) == nil {
			fs = nil
		}
		only := d.flowStages[name]
		if d.flowDPs[name] {
			only = nil
		}
		for i := range fs {
			if only == nil || only[fs[i].stage] {
				// Flows alike (two rules of a group alike) are one row:
				// the view indexes a datapath's flows by key, and a
				// second row would be one it never deletes.
				k := lfRef{name, fs[i].key()}
				if want[k] == nil {
					keys = append(keys, k)
					want[k] = &fs[i]
				}
			}
		}
		for k := range v.flows[v.dps[name]] {
			if (only == nil || only[k.stage]) && want[lfRef{name, k}] == nil {
				keys = append(keys, lfRef{name, k})
			}
		}
	}
	desired := func(k lfRef) *sbdb.LogicalFlow {
		f := want[k]
		if f == nil {
			return nil
		}
		return &sbdb.LogicalFlow{Stage: f.stage, Priority: f.priority, Match: f.match, Actions: f.actions,
			ExternalIDs: map[string]string{"source": f.source}}
	}
	current := func(k lfRef) *sbdb.LogicalFlow {
		if u, ok := v.flows[v.dps[k.dp]][k.key]; ok {
			return v.lfByUUID[u]
		}
		return nil
	}
	deletes, upserts := ops.Diff(t, lfOwned, keys, desired, current)
	for _, u := range sortedSet(v.twins) {
		if row := v.lfByUUID[u]; row != nil {
			deletes = append(deletes, ops.Edit[lfRef, *sbdb.LogicalFlow]{Have: row})
		}
	}
	for _, e := range deletes {
		row := e.Have
		w.cur.put(t.DeleteByUUID(row.UUID), func([]ovsdb.OperationResult, int) { v.delLF(row.UUID) })
		if err := w.maybeFlush(ctx); err != nil {
			return err
		}
	}
	for _, e := range upserts {
		if err := n.upsertFlow(w, e); err != nil {
			return err
		}
		if err := w.maybeFlush(ctx); err != nil {
			return err
		}
	}
	return nil
}

// upsertFlow adds one flow's insert or update to the batch.
func (n *compiler) upsertFlow(w *sbWriter, e ops.Edit[lfRef, *sbdb.LogicalFlow]) error {
	v, t := n.sb, sbops.LogicalFlows()
	if e.Have != nil {
		row := t.With(e.Have, e.Want, e.Columns...)
		w.cur.put(t.UpdateByUUID(row, e.Columns...), func([]ovsdb.OperationResult, int) { v.putLF(row) })
		return nil
	}
	dpU, err := w.dpRef(e.Key.dp)
	if err != nil {
		return err
	}
	row := e.Want
	row.Datapath, row.Vpc = dpU, n.dpVPC(e.Key.dp)
	name := e.Key.dp
	w.cur.put(t.Insert(row), func(res []ovsdb.OperationResult, i int) {
		r := *row
		r.UUID = res[i].UUID.GoUUID
		r.Datapath = v.dps[name]
		v.putLF(&r)
	})
	return nil
}

// syncBindings writes the bindings of every dirty port. A desired
// binding refers to its datapath by UUID when the view knows it, so that
// the comparison is exact, and otherwise by name: a datapath created in
// this write is named or numbered only when the binding is sent.
func (n *compiler) syncBindings(ctx context.Context, w *sbWriter, d *dirtySet) error {
	v, t := n.sb, sbops.PortBindings()
	desired := func(port string) *sbdb.PortBinding {
		pb := n.desiredPB(port)
		if pb != nil {
			if u := v.dps[pb.Datapath]; u != "" {
				pb.Datapath = u
			}
		}
		return pb
	}
	deletes, upserts := ops.Diff(t, pbOwned, sortedSet(d.ports), desired, v.pb)
	for _, e := range deletes {
		row := e.Have
		w.cur.put(t.DeleteByUUID(row.UUID), func([]ovsdb.OperationResult, int) { v.delPB(row.UUID) })
		if err := w.maybeFlush(ctx); err != nil {
			return err
		}
	}
	for _, e := range upserts {
		if err := n.upsertBinding(w, e); err != nil {
			return err
		}
		if err := w.maybeFlush(ctx); err != nil {
			return err
		}
	}
	return nil
}

// upsertBinding adds one binding's insert or update to the batch. Its
// datapath is a UUID when the view knew it, else the name of one created
// in this write, which is resolved to what this batch may refer to now
// and to its UUID once the transaction that created it is answered.
func (n *compiler) upsertBinding(w *sbWriter, e ops.Edit[string, *sbdb.PortBinding]) error {
	v, t := n.sb, sbops.PortBindings()
	created := ""
	if v.dpByUUID[e.Want.Datapath] == nil {
		created = e.Want.Datapath
		ref, err := w.dpRef(created)
		if err != nil {
			return err
		}
		e.Want.Datapath = ref
	}
	if e.Have != nil {
		row := t.With(e.Have, e.Want, e.Columns...)
		w.cur.put(t.UpdateByUUID(row, e.Columns...), func([]ovsdb.OperationResult, int) { v.putCommittedPB(row, created) })
		return nil
	}
	row := *e.Want
	w.cur.put(t.Insert(e.Want), func(res []ovsdb.OperationResult, i int) {
		r := row
		r.UUID = res[i].UUID.GoUUID
		v.putCommittedPB(&r, created)
	})
	return nil
}

// putCommittedPB writes through a binding northd wrote; created names the
// datapath it refers to when that was created in the same write.
func (v *sbView) putCommittedPB(r *sbdb.PortBinding, created string) {
	if created != "" {
		r.Datapath = v.dps[created]
	}
	v.putPB(r)
}

// estimate bounds the operations the rest of a write may need.
func (n *compiler) estimate(d *dirtySet) int {
	e := len(d.ports)
	for _, name := range d.flowNames() {
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

// flowNames are the datapaths whose flows are compared, in order.
func (d *dirtySet) flowNames() []string {
	names := maps.Clone(d.flowDPs)
	for name := range d.flowStages {
		names[name] = true
	}
	return sortedSet(names)
}

func sortedSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
