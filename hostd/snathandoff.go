package hostd

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/dataplane"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/ops/sbops"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// A live-migrated port's SNAT connections follow it (#15). They live in
// the maps of the host that translated them; the port's blocks follow the
// port (southd keeps SNAT_Block.chassis equal to the binding's), but
// without its connections the new host would map the port's next
// segment anew, from another port, and the server would reset it.
//
//   - The old host, when a port leaves its SNAT ports, exports the
//     port's connections from its maps (before the apply that removes the
//     port, so before any sweep forgets them) and keeps them for
//     handoffGrace, in memory and in a pinned map (SNATKeepDeparted),
//     from which a hostd restarted meanwhile reads them back; a port
//     that left while hostd was down is exported by the restarted
//     hostd's first apply (nameBefore). As soon as it sees the binding
//     bound to another chassis (the port is still requested here, as
//     during a live migration: namespace moves keep requested_chassis,
//     vm-migrate until it ends the migration), it inserts SNAT_Handoff
//     rows for that chassis, handoffChunk connections a row, in one
//     transaction.
//   - The new host monitors the rows naming it. Once the port is bound
//     here and translated (its blocks applied), it installs them under
//     its own ifindex (dataplane.SNATImport: only connections within
//     the port's blocks, never replacing what it maps) and deletes the
//     rows. Until then a segment of those connections is dropped
//     (snat_untracked: only a SYN opens a mapping) and sent again.
//     A port nobody requested is no longer in the old host's monitor once
//     bound elsewhere: the old host reads its binding's chassis (one
//     select a reconcile while it keeps connections for it).
//   - Trust: RBAC lets a chassis insert rows naming itself as source or
//     destination. The destination installs a row only for a port bound
//     here whose requested chassis is the row's source (the host the
//     orchestrator placed it on), or that it saw bound there while the
//     port migrated here (migration_destination), or requested there
//     while bound here, within handoffGrace (kept in its Chassis_Private
//     external_ids, for a restarted hostd); it refuses (deletes, counts)
//     others.
//   - Either end deletes a row it has seen for handoffGrace: the port
//     went elsewhere again, was deleted, or its new host is gone.

const (
	handoffGrace = 2 * time.Minute
	handoffChunk = 4096 // connections per row: a row stays under ~250 KB
)

// SNATHandoffUser is what hostd needs of the data plane to hand a port's
// SNAT connections over: Dataplane's implementation has it.
type SNATHandoffUser interface {
	SNATExport(ifindex int) ([]dataplane.SNATHandoffConn, error)
	SNATImport(ifindex int, conns []dataplane.SNATHandoffConn) (int, int, error)
	// Departed ports' connections, kept where a restarted hostd finds
	// them (a pinned map)
	SNATKeepDeparted(port string, at time.Time, conns []dataplane.SNATHandoffConn) error
	SNATDeparted() (map[string]dataplane.SNATDeparture, error)
	SNATForgetDeparted(port string) error
	// the ports it translates, as the last apply (maybe the previous
	// hostd's) left them
	SNATTranslated() (map[int]dataplane.SNATPortID, error)
}

// departedSNAT is a port that stopped being translated here, with its
// connections as they were.
type departedSNAT struct {
	conns []dataplane.SNATHandoffConn
	at    time.Time
}

// snatHandoff is the handoff state of a hostd.
type snatHandoff struct {
	departed map[string]departedSNAT // by logical port
	seen     map[string]time.Time    // SNAT_Handoff rows by UUID: when first seen
	// origin: ports moved here, by name, with the chassis they came
	// from and when this host learned it; kept in this chassis's
	// Chassis_Private external_ids too, so that a restarted hostd still
	// knows (originKey)
	origin map[string]portOrigin
	loaded bool // origin read back from external_ids
	// before: the ports the data plane translated when this hostd
	// started, until its first apply: one whose interface left while
	// hostd was down is exported then
	before map[int]dataplane.SNATPortID
}

type portOrigin struct {
	from string
	at   time.Time
}

// originKey is the external_ids key of a port's origin; its value is
// "CHASSIS@UNIX_MS".
const originKey = "snat-handoff-from:"

// exportDeparted records the connections of the local SNAT ports that
// the next apply (st) no longer translates, among pbs. Called before the
// apply.
func (d *Daemon) exportDeparted(ctx context.Context, st *dataplane.State, pbs []*sbdb.PortBinding) {
	du, ok := d.dp.(SNATHandoffUser)
	if !ok {
		return
	}
	d.snatMu.Lock()
	prev := make(map[int]string, len(d.snatPorts))
	for ifindex, pb := range d.snatPorts {
		prev[ifindex] = pb.LogicalPort
	}
	d.snatMu.Unlock()
	for ifindex, port := range d.nameBefore(ctx, pbs) {
		if _, ok := prev[ifindex]; !ok {
			prev[ifindex] = port
		}
	}
	still := map[string]bool{}
	for _, p := range st.SNATPorts {
		still[d.byIndex[p.Ifindex]] = true
	}
	for ifindex, port := range prev {
		if still[port] {
			continue
		}
		conns, err := du.SNATExport(ifindex)
		if err != nil {
			d.log.Warn("export a departing port's SNAT connections", "port", port, "err", err)
			continue
		}
		if len(conns) > 0 {
			at := time.Now()
			d.handoff.departed[port] = departedSNAT{conns: conns, at: at}
			d.log.Info("a port translated by SNAT left; its connections wait for its new host", "port", port, "connections", len(conns))
			if err := du.SNATKeepDeparted(port, at, conns); err != nil {
				// handed over all the same, unless hostd restarts first
				d.m.snatHandoffs.WithLabelValues("unsaved").Inc()
				d.log.Warn("save a departed port's SNAT connections for a restart", "port", port, "err", err)
			}
		}
	}
}

// nameBefore names the ports the previous hostd left translated (after
// a restart, once): by their VPC and address, among the bindings this
// host monitors, else (a port that left while hostd was down is no
// longer requested here once its migration ended) as the southbound
// says, one select each.
func (d *Daemon) nameBefore(ctx context.Context, pbs []*sbdb.PortBinding) map[int]string {
	if len(d.handoff.before) == 0 {
		return nil
	}
	out := map[int]string{}
	byAddr := map[dataplane.SNATPortID]string{}
	for _, pb := range pbs {
		if a, err := netip.ParseAddr(first(pb.IPs)); err == nil {
			byAddr[dataplane.SNATPortID{VPC: uint32(pb.Vpc), Addr: a}] = pb.LogicalPort
		}
	}
	for ifindex, id := range d.handoff.before {
		if port, ok := byAddr[id]; ok {
			out[ifindex] = port
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		res, err := ops.Transact(cctx, d.base, sbops.SelectPortBindingByAddress(int(id.VPC), id.Addr.String()))
		cancel()
		if err != nil || len(res) == 0 {
			d.log.Warn("name a port translated before this restart", "vpc", id.VPC, "address", id.Addr, "err", err)
			continue
		}
		for _, r := range res[0].Rows {
			if ips := ops.StringSet(r["ips"]); len(ips) > 0 && ips[0] == id.Addr.String() {
				out[ifindex], _ = r["logical_port"].(string)
			}
		}
	}
	d.handoff.before = nil
	return out
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// loadDeparted reads back what departed ports left here before a
// restart: their connections wait for the port's new host as before;
// and which ports the data plane translated, for the first apply to
// export those that left while hostd was down.
func (d *Daemon) loadDeparted() error {
	du, ok := d.dp.(SNATHandoffUser)
	if !ok {
		return nil
	}
	before, err := du.SNATTranslated()
	if err != nil {
		return fmt.Errorf("read the ports translated by SNAT: %w", err)
	}
	d.handoff.before = before
	deps, err := du.SNATDeparted()
	if err != nil {
		return fmt.Errorf("read departed ports' SNAT connections: %w", err)
	}
	for port, dep := range deps {
		if time.Since(dep.At) > handoffGrace {
			d.forgetDeparted(port) // too old to hand over (hostd was down long)
			continue
		}
		d.handoff.departed[port] = departedSNAT{conns: dep.Conns, at: dep.At}
		d.log.Info("a port translated by SNAT left before this restart; its connections wait for its new host", "port", port,
			"connections", len(dep.Conns), "left", time.Since(dep.At).Round(time.Millisecond))
	}
	return nil
}

// forgetDeparted drops what port left here: handed over, or no longer
// wanted.
func (d *Daemon) forgetDeparted(port string) {
	delete(d.handoff.departed, port)
	if du, ok := d.dp.(SNATHandoffUser); ok {
		if err := du.SNATForgetDeparted(port); err != nil {
			d.log.Warn("forget a departed port's saved SNAT connections", "port", port, "err", err)
		}
	}
}

// sendDeparted hands the connections of departed ports bound elsewhere
// now to their new host, and forgets those kept for handoffGrace.
func (d *Daemon) sendDeparted(ctx context.Context, byName map[string]*sbdb.PortBinding) {
	me := d.cfg.Chassis
	unseen := false
	for port, dep := range d.handoff.departed {
		to, exists := "", true
		if pb := byName[port]; pb != nil && pb.Chassis != nil {
			to = *pb.Chassis
		} else if pb == nil {
			to, exists = d.boundWhere(ctx, port) // no longer monitored here
			unseen = true
		}
		if !exists {
			d.forgetDeparted(port) // the port was deleted
			continue
		}
		if to == "" || to == me {
			if time.Since(dep.at) > handoffGrace {
				d.forgetDeparted(port)
			}
			continue
		}
		if err := d.writeHandoff(ctx, port, to, dep.conns); err != nil {
			d.dirty = true
			d.log.Warn("hand a port's SNAT connections to its new host", "port", port, "to", to, "err", err)
			continue
		}
		d.forgetDeparted(port)
		d.m.snatHandoffs.WithLabelValues("sent").Inc()
		d.log.Info("handed a port's SNAT connections to its new host", "port", port, "to", to, "connections", len(dep.conns))
	}
	if unseen && len(d.handoff.departed) > 0 {
		time.AfterFunc(200*time.Millisecond, d.kick) // a binding this host does not monitor moves unseen
	}
}

// boundWhere reads the chassis port is bound to ("" if none or
// unknown), and whether it exists: a port that left here without being
// requested here is no longer in this host's monitor once bound
// elsewhere.
func (d *Daemon) boundWhere(ctx context.Context, port string) (string, bool) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	res, err := ops.Transact(cctx, d.base, sbops.SelectPortBindingChassis(port))
	if err != nil || len(res) == 0 {
		return "", true
	}
	if len(res[0].Rows) == 0 {
		return "", false
	}
	if c := ops.StringSet(res[0].Rows[0]["chassis"]); len(c) == 1 {
		return c[0], true
	}
	return "", true
}

// writeHandoff inserts the rows handing conns of port to chassis to, in
// place of any this host wrote for the port before.
func (d *Daemon) writeHandoff(ctx context.Context, port, to string, conns []dataplane.SNATHandoffConn) error {
	var txn []ovsdb.Operation
	for _, h := range ops.Rows[sbdb.SNATHandoff](d.base) {
		if h.LogicalPort == port && h.FromChassis == d.cfg.Chassis {
			txn = append(txn, sbops.DeleteSNATHandoff(h.UUID))
		}
	}
	for chunk := range slices.Chunk(conns, handoffChunk) {
		row := &sbdb.SNATHandoff{LogicalPort: port, FromChassis: d.cfg.Chassis, ToChassis: to}
		for _, c := range chunk {
			row.Connections = append(row.Connections, c.String())
		}
		txn = append(txn, sbops.InsertSNATHandoff(row))
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := d.transact(cctx, txn...)
	return err
}

// handoffVerdict says what to do with a handoff row now: install it,
// wait (its port is not bound and translated here yet), or refuse it.
type handoffVerdict int

const (
	handoffWait handoffVerdict = iota
	handoffInstall
	handoffRefuse
)

// judgeHandoff decides on row h for this host me: pb is its port's
// binding as this host sees it (nil: not monitored), translated whether
// the port is a local SNAT port as applied, origin the chassis this
// host saw the port requested on while bound here ("" if none).
func judgeHandoff(me string, h *sbdb.SNATHandoff, pb *sbdb.PortBinding, translated bool, origin string) handoffVerdict {
	if h.ToChassis != me {
		return handoffWait // not ours to install; aged out by its writer
	}
	if pb == nil || !isMe(pb.Chassis, me) || !translated {
		return handoffWait
	}
	if isMe(pb.RequestedChassis, h.FromChassis) || origin == h.FromChassis {
		return handoffInstall
	}
	return handoffRefuse
}

// installHandoffs installs the handoffs naming this host whose port is
// bound and translated here (snatIfindex: port -> ifindex, as applied),
// refuses those it may not take, and deletes both, and any row seen for
// handoffGrace. Called after a successful apply.
func (d *Daemon) installHandoffs(ctx context.Context, byName map[string]*sbdb.PortBinding, snatIfindex map[string]int) {
	me := d.cfg.Chassis
	origins := d.learnOrigins(ctx, byName)
	seen := map[string]time.Time{}
	var txn []ovsdb.Operation
	for _, h := range ops.Rows[sbdb.SNATHandoff](d.base) {
		first, ok := d.handoff.seen[h.UUID]
		if !ok {
			first = time.Now()
		}
		seen[h.UUID] = first
		ifindex, translated := snatIfindex[h.LogicalPort]
		switch judgeHandoff(me, h, byName[h.LogicalPort], translated, origins[h.LogicalPort]) {
		case handoffInstall:
			d.importHandoff(ifindex, h)
			txn = append(txn, sbops.DeleteSNATHandoff(h.UUID))
		case handoffRefuse:
			d.m.snatHandoffs.WithLabelValues("refused").Inc()
			d.log.Warn("refused SNAT connections for a port not moved here from their sender", "port", h.LogicalPort, "from", h.FromChassis)
			txn = append(txn, sbops.DeleteSNATHandoff(h.UUID))
		default:
			if time.Since(first) > handoffGrace {
				d.m.snatHandoffs.WithLabelValues("expired").Inc()
				txn = append(txn, sbops.DeleteSNATHandoff(h.UUID))
			}
		}
	}
	d.handoff.seen = seen
	if len(txn) == 0 {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := d.transact(cctx, txn...); err != nil {
		d.dirty = true // deleted on a later pass; installing again skips what is there
		d.log.Warn("delete SNAT handoffs", "err", err)
	}
}

// learnOrigins notes where ports moving here come from: a port migrating
// here, from the chassis it is bound to; a port bound here, from the
// chassis it is still requested on. An origin lasts handoffGrace, or
// until its port is out of sight; the set is kept in this chassis's
// external_ids. It returns the port -> chassis to accept handoffs from.
func (d *Daemon) learnOrigins(ctx context.Context, byName map[string]*sbdb.PortBinding) map[string]string {
	me := d.cfg.Chassis
	if !d.handoff.loaded {
		d.handoff.loaded = true
		for _, p := range ops.Rows[sbdb.ChassisPrivate](d.base) {
			for k, v := range p.ExternalIDs {
				from, ms, ok := strings.Cut(v, "@")
				n, err := strconv.ParseInt(ms, 10, 64)
				if port, isOrigin := strings.CutPrefix(k, originKey); isOrigin && ok && err == nil {
					d.handoff.origin[port] = portOrigin{from, time.UnixMilli(n)}
				}
			}
		}
	}
	set, del := map[string]string{}, []string{}
	for port, pb := range byName {
		from := ""
		switch {
		case isMe(pb.Chassis, me) && pb.RequestedChassis != nil && *pb.RequestedChassis != me:
			from = *pb.RequestedChassis
		case isMe(pb.MigrationDestination, me) && pb.Chassis != nil && *pb.Chassis != me:
			from = *pb.Chassis
		}
		if o, ok := d.handoff.origin[port]; from != "" && (!ok || o.from != from) {
			o = portOrigin{from, time.Now()}
			d.handoff.origin[port] = o
			set[originKey+port] = fmt.Sprintf("%s@%d", from, o.at.UnixMilli())
		}
	}
	out := map[string]string{}
	for port, o := range d.handoff.origin {
		if byName[port] == nil || time.Since(o.at) > handoffGrace {
			delete(d.handoff.origin, port)
			del = append(del, originKey+port)
			continue
		}
		out[port] = o.from
	}
	if len(set)+len(del) > 0 {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if _, err := d.transact(cctx, sbops.SetChassisPrivateExternalIDs(me, set, del)...); err != nil {
			d.dirty = true
			d.log.Warn("record where migrated ports came from", "err", err)
		}
	}
	return out
}

// importHandoff installs one row's connections for the local port ifindex.
func (d *Daemon) importHandoff(ifindex int, h *sbdb.SNATHandoff) {
	du, ok := d.dp.(SNATHandoffUser)
	if !ok {
		return
	}
	conns := make([]dataplane.SNATHandoffConn, 0, len(h.Connections))
	bad := 0
	for _, s := range h.Connections {
		c, err := dataplane.ParseSNATHandoffConn(s)
		if err != nil {
			bad++
			continue
		}
		conns = append(conns, c)
	}
	in, skipped, err := du.SNATImport(ifindex, conns)
	if err != nil {
		d.m.snatHandoffs.WithLabelValues("failed").Inc()
		d.log.Warn("install handed-off SNAT connections", "port", h.LogicalPort, "installed", in, "err", err)
		return
	}
	d.m.snatHandoffs.WithLabelValues("installed").Inc()
	d.log.Info("installed a migrated port's SNAT connections", "port", h.LogicalPort, "from", h.FromChassis,
		"installed", in, "skipped", skipped+bad)
}

// handOffSNAT sends what departed ports left here and installs what
// arrived for the ports st translates. Called after a successful apply.
func (d *Daemon) handOffSNAT(ctx context.Context, pbs []*sbdb.PortBinding, st *dataplane.State) {
	byName := make(map[string]*sbdb.PortBinding, len(pbs))
	for _, pb := range pbs {
		byName[pb.LogicalPort] = pb
	}
	d.sendDeparted(ctx, byName)
	translated := make(map[string]int, len(st.SNATPorts))
	for _, p := range st.SNATPorts {
		if len(p.Blocks) > 0 {
			translated[d.byIndex[p.Ifindex]] = p.Ifindex
		}
	}
	d.installHandoffs(ctx, byName, translated)
}
