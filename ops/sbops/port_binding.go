package sbops

import (
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// PortBindings is the Port_Binding table. northd syncs the columns it
// owns with ops.Diff and the table's Insert, Update and Delete; hosts
// and southd change where a port is bound only through the guarded
// verbs below.
func PortBindings() *ops.Table[sbdb.PortBinding, *sbdb.PortBinding] { return portBindingT }

// A binding's location is written only while its chassis is still the
// one the writer read: a host or southd never overwrites a claim it has
// not seen. The update matches no row (its count is 0) when the binding
// moved meanwhile, and the writer reads again.
func ifHeld(read *sbdb.PortBinding) []ovsdb.Condition {
	return []ovsdb.Condition{ops.WhereUUID(read.UUID)[0], portBindingT.Cond("chassis", ovsdb.ConditionEqual, read.Chassis)}
}

// BindPortBinding binds the port read to chassis, not yet up, if it is
// still bound where it was read.
func BindPortBinding(read *sbdb.PortBinding, chassis string) ovsdb.Operation {
	down := false
	return portBindingT.Update(&sbdb.PortBinding{Chassis: &chassis, Up: &down}, ifHeld(read), "chassis", "up")
}

// ActivatePortBinding binds the port read to chassis, its live
// migration's destination, not yet up, if it is still bound where it was
// read; the migration's readiness mark goes with it, so that a later
// migration back to chassis waits for that host to prepare anew.
func ActivatePortBinding(read *sbdb.PortBinding, chassis string) ovsdb.Operation {
	down := false
	return portBindingT.Update(&sbdb.PortBinding{Chassis: &chassis, Up: &down}, ifHeld(read), "chassis", "up", "migration_prepared")
}

// SetPortBindingPrepared says that chassis, the destination of the port's
// live migration, holds the port ready for its guest, if the port is
// still migrating there.
func SetPortBindingPrepared(read *sbdb.PortBinding, chassis string) ovsdb.Operation {
	return portBindingT.Update(&sbdb.PortBinding{MigrationPrepared: &chassis},
		[]ovsdb.Condition{ops.WhereUUID(read.UUID)[0], portBindingT.Cond("migration_destination", ovsdb.ConditionEqual, &chassis)},
		"migration_prepared")
}

// ClearPortBindingPrepared removes a migration's readiness mark that no
// longer names the port's migration destination, if the binding still
// reads as it was read (southd's write: the mark of a migration that
// ended without its activation, or was sent elsewhere).
func ClearPortBindingPrepared(read *sbdb.PortBinding) ovsdb.Operation {
	return portBindingT.Update(&sbdb.PortBinding{}, []ovsdb.Condition{ops.WhereUUID(read.UUID)[0],
		portBindingT.Cond("migration_prepared", ovsdb.ConditionEqual, read.MigrationPrepared),
		portBindingT.Cond("migration_destination", ovsdb.ConditionEqual, read.MigrationDestination)}, "migration_prepared")
}

// UnbindPortBinding releases the port read, if it is still bound where
// it was read.
func UnbindPortBinding(read *sbdb.PortBinding) ovsdb.Operation {
	down := false
	return portBindingT.Update(&sbdb.PortBinding{Up: &down}, ifHeld(read), "chassis", "up")
}

// SetPortBindingUp says whether the port read is programmed (up) on the
// chassis that holds it, if it is still bound where it was read.
func SetPortBindingUp(read *sbdb.PortBinding, up bool) ovsdb.Operation {
	return portBindingT.Update(&sbdb.PortBinding{Up: &up}, ifHeld(read), "up")
}

// SetSNATDemand asks for n SNAT port blocks for the port read, if it is
// still bound where it was read (its host's write; southd allocates).
func SetSNATDemand(read *sbdb.PortBinding, n int) ovsdb.Operation {
	return portBindingT.Update(&sbdb.PortBinding{SNATDemand: &n}, ifHeld(read), "snat_demand")
}

// SelectPortBindingChassis reads where port is bound (its chassis
// column): for a host that no longer monitors the binding.
func SelectPortBindingChassis(port string) ovsdb.Operation {
	return portBindingT.Select([]ovsdb.Condition{portBindingT.Cond("logical_port", ovsdb.ConditionEqual, port)}, "chassis")
}

// SelectPortBindingByAddress reads the name and addresses of the
// bindings of VPC vpc that hold addr: for a host naming a port it
// translated before a restart and no longer monitors.
func SelectPortBindingByAddress(vpc int, addr string) ovsdb.Operation {
	return portBindingT.Select([]ovsdb.Condition{portBindingT.Cond("vpc", ovsdb.ConditionEqual, vpc),
		portBindingT.Cond("ips", ovsdb.ConditionIncludes, []string{addr})}, "logical_port", "ips")
}
