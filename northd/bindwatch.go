package northd

import (
	"context"
	"crypto/tls"
	"log/slog"

	"github.com/ovn-kubernetes/libovsdb/model"

	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/ops/jsonrpc"
	"github.com/courier-sdn/courier/schema"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// Port bindings are northd's rows: only the active northd (fenced by the
// lock) creates or deletes them, and of their columns it owns all but
// what hostd and southd write, which it has no use for. So northd does
// not monitor them the usual way. It knows the rows it wrote from its own
// commits, reads them all when it becomes active and after a write
// fails, and watches, on a connection of its own, only for deletes and
// renames by anyone else. Leaving out the echo of its own inserts takes a
// fifth off a 64,000-port bulk load: sending every inserted row back is
// the biggest part of ovsdb-server's work besides the inserts themselves.
//
// What it does not hear about at once is a binding inserted behind its
// back (by hand, say): such a row is found, and deleted or rewritten,
// when it collides with one of northd's writes (the write fails, northd
// reads the bindings again and recomputes) or at the next activation.

// watchBindings reports other writers' deletes and renames of bindings to
// t, as changes with only the logical port set.
func watchBindings(ctx context.Context, remote string, tlsc *tls.Config, t *ops.Tracker, log *slog.Logger) (*jsonrpc.Watch, error) {
	spec := jsonrpc.WatchSpec{DB: schema.SBName, TLS: tlsc, Tables: []jsonrpc.WatchTable{{Name: sbdb.PortBindingTable,
		Columns: []string{"logical_port"}, Delete: true, Modify: true}}}
	dec, err := jsonrpc.NewRowDecoder(&sbdb.PortBinding{})
	if err != nil {
		return nil, err
	}
	// bindingName is a binding that carries only its UUID and logical
	// port, or nil when there is no row.
	bindingName := func(uuid string, row []byte) (model.Model, error) {
		if row == nil {
			return nil, nil
		}
		return dec.Decode(uuid, row)
	}
	return jsonrpc.StartWatch(ctx, remote, spec, func(rows []jsonrpc.WatchedRow) error {
		for _, r := range rows {
			old, err := bindingName(r.UUID, r.Old)
			if err != nil {
				return err
			}
			new, err := bindingName(r.UUID, r.New)
			if err != nil {
				return err
			}
			t.Record(sbdb.PortBindingTable, r.UUID, old, new)
		}
		return nil
	}, log)
}
