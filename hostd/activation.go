package hostd

import (
	"context"
	"time"

	"github.com/courier-sdn/courier/dataplane"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/ops/sbops"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// Live migration's handover (#19), OVN's multi-chassis binding with
// activation-strategy=rarp in Courier's terms. While the orchestrator
// migrates a VM it names the destination in Port.migration_destination;
// northd copies it into the binding, and the destination's base session
// sees the binding (its third condition). Once the VM's interface is
// there, the destination prepares the port as its own (it joins the VPC,
// programs the port's DVR, its DHCP and security groups) except for two
// things: it does not bind it, and it does not deliver the port's
// addresses to it, because the guest still runs on the source. It then
// marks the binding migration_prepared, which the orchestrator waits for
// before it lets the guest switch over.
//
// When the guest resumes on the destination, QEMU announces it with RARP
// (and the guest itself with gratuitous ARP); the DVR reports the first
// such frame out of a port flagged migrating (EventResumed), and hostd
// binds the port at once, guarded by the holder it read, then delivers
// its addresses here. The source, no longer the holder, drops the port
// from its data plane; hubs tell the peers they taught the source the new
// host (teachMoved). No aging is waited for on the way.
//
// What a guest cannot do with it: only a port hostd flagged migrating
// reports anything (the flag comes from a binding whose
// migration_destination is this chassis, which only the orchestrator
// writes), and hostd checks the binding again when the report comes; a
// RARP from any other port is dropped by the DVR as any frame of an
// unsupported protocol is. Port security still applies to the migrating
// port's frames.

// migratingHere says whether pb is migrating to this chassis and not yet
// bound here: prepared, its guest not resumed.
func migratingHere(chassis string, pb *sbdb.PortBinding) bool {
	return isMe(pb.MigrationDestination, chassis) && !isMe(pb.Chassis, chassis)
}

// holding: a port of this host's that is not merely prepared for its
// migration. What only the port's holder serves goes by it: its learned
// addresses, its EIPs (a physical EIP answered on two hosts' underlays
// would be two hosts claiming an address on the data centre's network),
// its SNAT (blocks are its holder's).
func holding(chassis string, ifaces map[string]int, pb *sbdb.PortBinding) bool {
	return ours(chassis, ifaces, pb) && !migratingHere(chassis, pb)
}

// activate binds a migrating port here when its guest announced itself
// out of its interface here (EventResumed).
func (d *Daemon) activate(ctx context.Context, e dataplane.Event) {
	me := d.cfg.Chassis
	port := d.byIndex[e.Ifindex]
	if port == "" {
		return
	}
	pb, err := ops.Lookup(ctx, d.base, &sbdb.PortBinding{LogicalPort: port})
	if err != nil || pb == nil || !migratingHere(me, pb) {
		// The data plane's flag was stale (the migration ended or was
		// aborted meanwhile): nothing to activate.
		d.m.activations.WithLabelValues("refused").Inc()
		d.log.Warn("a port announced its guest but is not migrating here", "port", port)
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ok, err := d.guarded(cctx, sbops.ActivatePortBinding(pb, me))
	switch {
	case err != nil:
		d.dirty = true
		d.m.activations.WithLabelValues("failed").Inc()
		d.log.Warn("activate migrated port", "port", port, "err", err)
		return
	case !ok:
		// Its holder changed since we read it (southd granted it here
		// already, or another host took it): the next reconcile sees it.
		d.m.activations.WithLabelValues("raced").Inc()
		return
	}
	if d.activated == nil {
		d.activated = map[string]bool{}
	}
	d.activated[port] = true
	d.m.activations.WithLabelValues("activated").Inc()
	from := "-"
	if pb.Chassis != nil {
		from = *pb.Chassis
	}
	var since time.Duration
	if !e.Read.IsZero() {
		since = time.Since(e.Read)
	}
	d.log.Info("activated migrated port: its guest announced itself here", "port", port, "from", from, "since_announced", since)
}

// withActivations is the base session's bindings as this host last wrote
// them: a port it activated reads as bound here until the monitor brings
// its own write back, so that the reconcile right after the activation
// delivers the port's addresses here rather than waiting for the echo.
func (d *Daemon) withActivations(pbs []*sbdb.PortBinding) []*sbdb.PortBinding {
	if len(d.activated) == 0 {
		return pbs
	}
	me := d.cfg.Chassis
	out := make([]*sbdb.PortBinding, 0, len(pbs))
	seen := map[string]bool{}
	for _, pb := range pbs {
		if d.activated[pb.LogicalPort] && migratingHere(me, pb) {
			c := *pb
			down := false
			c.Chassis, c.Up = &me, &down
			c.MigrationPrepared = nil
			pb = &c
			seen[pb.LogicalPort] = true
		}
		out = append(out, pb)
	}
	for port := range d.activated {
		if !seen[port] {
			delete(d.activated, port) // the echo came, or the row went
		}
	}
	return out
}

// markPrepared tells the orchestrator which of the ports migrating here
// are programmed, ready for their guests; called once the data plane
// holds st, the state computed from pbs.
func (d *Daemon) markPrepared(ctx context.Context, pbs []*sbdb.PortBinding, st *dataplane.State) {
	me := d.cfg.Chassis
	programmed := map[string]bool{}
	for _, p := range st.Ports {
		programmed[p.Name] = p.Migrating
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for _, pb := range pbs {
		if !migratingHere(me, pb) || !programmed[pb.LogicalPort] || isMe(pb.MigrationPrepared, me) {
			continue
		}
		if _, err := d.transact(cctx, sbops.SetPortBindingPrepared(pb, me)); err != nil {
			d.dirty = true
			d.log.Warn("mark port prepared for its migration", "port", pb.LogicalPort, "err", err)
			continue
		}
		d.log.Info("prepared port for its migration", "port", pb.LogicalPort)
	}
}
