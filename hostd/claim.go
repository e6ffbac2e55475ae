package hostd

import (
	"context"
	"slices"
	"time"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/ops/sbops"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// Who binds a port (DEVELOPERS.md, "Who may bind a port"). The
// southbound lets a chassis write a binding's chassis and up only where
// the row names it: as requested_chassis (the orchestrator put the VM
// here) or as chassis (the control plane bound it here). A port nobody
// requested is therefore not taken by a host but granted: every host
// lists the ports whose VM interfaces it has in its Chassis_Private
// claims, and southd binds such a port to a live chassis that claims it
// when no live claimer holds it. A host binds by itself only what is
// requested for it, and releases what it holds when the VM has gone or
// is requested elsewhere.

// claim binds the ports requested here whose VMs are here, publishes its
// claims, and releases the ports it holds whose VMs left or which are
// requested elsewhere.
func (d *Daemon) claim(ctx context.Context, pbs []*sbdb.PortBinding) {
	me := d.cfg.Chassis
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for _, pb := range pbs {
		if d.ifaces[pb.LogicalPort] == 0 || isMe(pb.Chassis, me) || !isMe(pb.RequestedChassis, me) || migratedAway(pb, me) {
			continue
		}
		ok, err := d.guarded(cctx, sbops.BindPortBinding(pb, me))
		if err != nil {
			d.dirty = true
			d.log.Warn("claim", "port", pb.LogicalPort, "err", err)
		} else if ok {
			d.log.Info("claimed port", "port", pb.LogicalPort, "ifindex", d.ifaces[pb.LogicalPort])
		}
	}
	// Stop claiming what left before releasing it: a port released while
	// this host still claimed it was granted straight back to it by
	// southd (the first claimer by name), and reached its VM's new host
	// only at southd's pass after the stale claim went (#19).
	if err := d.writeClaims(cctx); err != nil {
		d.dirty = true
		d.log.Warn("publish claims", "err", err)
	}
	for _, pb := range pbs {
		if !isMe(pb.Chassis, me) {
			continue
		}
		gone := d.ifaces[pb.LogicalPort] == 0
		// A port activated here by its migration is ours until the
		// orchestrator requests it here or ends the migration.
		moved := pb.RequestedChassis != nil && *pb.RequestedChassis != me && !isMe(pb.MigrationDestination, me)
		if !gone && !moved {
			continue
		}
		ok, err := d.guarded(cctx, sbops.UnbindPortBinding(pb))
		if err != nil {
			d.dirty = true
			d.log.Warn("release", "port", pb.LogicalPort, "err", err)
		} else if ok {
			d.log.Info("released port", "port", pb.LogicalPort, "interface_gone", gone, "requested_elsewhere", moved)
		}
	}
}

// migratedAway: a port requested here that its live migration bound to
// its destination; taking it back would undo the migration while the
// source's interface lingers.
func migratedAway(pb *sbdb.PortBinding, me string) bool {
	return pb.MigrationDestination != nil && *pb.MigrationDestination != me && isMe(pb.Chassis, *pb.MigrationDestination)
}

// claims are the ports whose VM interfaces are here, sorted; a name the
// schema cannot hold (more than 64 characters) is no port's.
func (d *Daemon) claims() []string {
	var out []string
	for port := range d.ifaces {
		if len(port) <= 64 {
			out = append(out, port)
		}
	}
	slices.Sort(out)
	return out
}

// writeClaims sets this chassis's claims when they changed.
func (d *Daemon) writeClaims(ctx context.Context) error {
	want := d.claims()
	for _, p := range ops.Rows[sbdb.ChassisPrivate](d.base) {
		have := slices.Clone(p.Claims)
		slices.Sort(have)
		if slices.Equal(have, want) {
			return nil
		}
	}
	_, err := d.transact(ctx, sbops.SetChassisPrivateClaims(d.cfg.Chassis, want))
	return err
}

// guarded commits one of sbops' guarded binding updates, which change a
// binding only if its chassis is still what we read: hostd never
// overwrites another host's claim. It reports whether the row matched.
func (d *Daemon) guarded(ctx context.Context, op ovsdb.Operation) (bool, error) {
	res, err := d.transact(ctx, op)
	if err != nil {
		return false, err
	}
	return res[0].Count == 1, nil
}

// transact commits ops on the base session. A write the southbound's
// access control refuses is counted by table and logged: hostd's own
// writes are refused only when its certificate is not its chassis's, or
// its database grants the chassis role less than hostd needs.
func (d *Daemon) transact(ctx context.Context, txn ...ovsdb.Operation) ([]ovsdb.OperationResult, error) {
	res, err := ops.Transact(ctx, d.base, txn...)
	if table, ok := ops.PermissionDenied(err); ok {
		d.m.refused.WithLabelValues(table).Inc()
		if d.logLimit.allow("refused/" + table) {
			d.log.Error("the southbound refused a write to a row this chassis may not write", "table", table, "err", err)
		}
	}
	return res, err
}
