package southd

import (
	"context"
	"fmt"
	"time"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema/nbdb"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// A port's runtime state, for orchestrators: the northbound Port's up
// and chassis columns, copied from its southbound binding. southd writes
// them because it is the side that arbitrates runtime facts; northd
// compiles intent and never reads them (DESIGN.md §1). up is:
//
//   - empty while the port has no binding (northd has not compiled it,
//     or refused it: its status says why);
//   - false while the binding is not up: bound to no chassis yet, or the
//     chassis has not programmed it, or the chassis died (southd marks
//     its bindings down, markLiveness);
//   - true once its chassis has programmed it; chassis names where.

// portState is what a northbound port should show.
type portState struct {
	port    *nbdb.Port
	up      *bool
	chassis *string
}

// portStates lists the northbound ports whose up or chassis differ from
// their bindings.
func portStates(ports []*nbdb.Port, pbs []*sbdb.PortBinding) []portState {
	byName := make(map[string]*sbdb.PortBinding, len(pbs))
	for _, pb := range pbs {
		byName[pb.LogicalPort] = pb
	}
	var out []portState
	for _, p := range ports {
		var s portState
		s.port = p
		if pb := byName[p.Name]; pb != nil {
			up := pb.Chassis != nil && pb.Up != nil && *pb.Up
			s.up, s.chassis = &up, pb.Chassis
		}
		if !sameBool(p.Up, s.up) || !sameString(p.Chassis, s.chassis) {
			out = append(out, s)
		}
	}
	return out
}

func sameBool(a, b *bool) bool     { return (a == nil) == (b == nil) && (a == nil || *a == *b) }
func sameString(a, b *string) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }
func optional[T any](v *T) ovsdb.OvsSet {
	if v == nil {
		return ovsdb.OvsSet{GoSet: []any{}}
	}
	return ovsdb.OvsSet{GoSet: []any{*v}}
}

// portStateBatch bounds one northbound transaction of state updates.
const portStateBatch = 5000

// reportPorts writes the ports' runtime state into the northbound.
// ports and pbs: every port and binding, or those of the ports that
// changed (each port's binding must be in pbs if it has one).
func (d *Daemon) reportPorts(ctx context.Context, nb *ops.Session, ports []*nbdb.Port, pbs []*sbdb.PortBinding) error {
	changes := portStates(ports, pbs)
	if len(changes) == 0 {
		return nil
	}
	start := time.Now()
	var txn []ovsdb.Operation
	for i, s := range changes {
		txn = append(txn, ovsdb.Operation{Op: ovsdb.OperationUpdate, Table: nbdb.PortTable,
			Where: []ovsdb.Condition{{Column: "_uuid", Function: ovsdb.ConditionEqual, Value: ovsdb.UUID{GoUUID: s.port.UUID}}},
			Row:   ovsdb.Row{"up": optional(s.up), "chassis": optional(s.chassis)}})
		if len(txn) == portStateBatch || i == len(changes)-1 {
			if _, err := ops.Transact(ctx, nb, txn...); err != nil {
				return fmt.Errorf("write ports' state: %w", err)
			}
			txn = txn[:0]
		}
	}
	d.m.portStates.Add(float64(len(changes)))
	d.m.phase.WithLabelValues("write_port_state").Observe(time.Since(start).Seconds())
	port := func(uuid string) *nbdb.Port { return ops.RowByUUID[nbdb.Port](nb, uuid) }
	d.await(ctx, "port states", func() bool { return shown(port, changes) })
	return nil
}

// shown: the northbound ports show the states written. It compares with
// what was written, not with the bindings as they are now: a binding
// that changed meanwhile (a VM leaving a host is two or three quick
// changes: released, granted, up) made the await wait out its whole
// timeout, 2 s in which southd granted nothing, and a migrating VM's
// peers lost it for that long (#19). It looks up the written ports one
// by one (port), as the wait asks every 5 ms: a copy of 64,000 ports
// each time made the wait itself the cost.
func shown(port func(uuid string) *nbdb.Port, written []portState) bool {
	for _, s := range written {
		p := port(s.port.UUID)
		if p != nil && (!sameBool(p.Up, s.up) || !sameString(p.Chassis, s.chassis)) {
			return false
		}
	}
	return true
}
