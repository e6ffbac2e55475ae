package southd

import (
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/ops/sbops"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// A live migration's destination marks the binding migration_prepared
// once it holds the port (hostd/activation.go), and clears the mark when
// it activates the port. A migration that ends without an activation
// (aborted) or is sent to another host leaves a mark that names a host
// which is no longer the destination; the host cannot clear it (it no
// longer sees the binding), and an orchestrator that migrates to that
// host again would read it as ready before it is. southd clears it.

// stalePrepared are the bindings whose readiness mark names a host that
// is not their migration's destination.
func stalePrepared(pbs []*sbdb.PortBinding) []*sbdb.PortBinding {
	var out []*sbdb.PortBinding
	for _, pb := range pbs {
		if pb.MigrationPrepared == nil {
			continue
		}
		if pb.MigrationDestination == nil || *pb.MigrationDestination != *pb.MigrationPrepared {
			out = append(out, pb)
		}
	}
	return out
}

// clearStalePrepared returns the operations that clear stale marks, each
// guarded by the binding as read.
func (d *Daemon) clearStalePrepared(pbs []*sbdb.PortBinding) []ovsdb.Operation {
	var txn []ovsdb.Operation
	for _, pb := range stalePrepared(pbs) {
		txn = append(txn, sbops.ClearPortBindingPrepared(pb))
		d.log.Info("cleared a migration's stale readiness mark", "port", pb.LogicalPort, "prepared", *pb.MigrationPrepared)
	}
	return txn
}
