package southd

import (
	"slices"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/ops/sbops"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// Granting ports nobody requested (DEVELOPERS.md, "Who may bind a
// port"). Under the southbound's access control a chassis writes a
// binding's chassis only where the row already names it, as requested
// or bound chassis; a port without a requested chassis is bound here
// instead, on the chassis's claim (Chassis_Private.claims: the ports
// whose VM interfaces it has). A live chassis that claims a port and
// holds it keeps it; otherwise the port goes to the first live claimer
// by name, so that the same view always grants the same way. A hostile
// chassis can thus take only a port that no live chassis with its VM
// holds, which first come, first served allowed it anyway; it cannot
// take one from a live holder.

// grant is one binding to move to a claimer.
type grant struct {
	pb   *sbdb.PortBinding
	from *string // the holder it was read with (nil: none)
	to   string
}

// grants decides which bindings of pbs go to which claimer; only, when
// not nil, names the ports whose claims to read (those of pbs). privs is
// read after alive was judged: a chassis in privs but not in alive
// registered in between, and neither claims nor loses a port until the
// next pass judges it.
func grants(pbs []*sbdb.PortBinding, privs []*sbdb.ChassisPrivate, alive map[string]bool, only map[string]bool) []grant {
	claimers := map[string][]string{}
	newcomers := unjudged(privs, alive)
	for _, p := range privs {
		if !alive[p.Name] {
			continue
		}
		for _, port := range p.Claims {
			if only == nil || only[port] {
				claimers[port] = append(claimers[port], p.Name)
			}
		}
	}
	var out []grant
	for _, pb := range pbs {
		cs := claimers[pb.LogicalPort]
		if pb.RequestedChassis != nil || len(cs) == 0 {
			continue
		}
		if pb.Chassis != nil && alive[*pb.Chassis] && slices.Contains(cs, *pb.Chassis) {
			continue
		}
		if pb.Chassis != nil && newcomers[*pb.Chassis] {
			continue // its holder is judged at the next pass
		}
		slices.Sort(cs)
		out = append(out, grant{pb: pb, from: pb.Chassis, to: cs[0]})
	}
	slices.SortFunc(out, func(a, b grant) int {
		if a.pb.LogicalPort < b.pb.LogicalPort {
			return -1
		}
		return 1
	})
	return out
}

// grantClaims returns the operations that bind claimed ports. Each is
// guarded by the holder it was decided from, as a host's own claim is:
// a binding that changed meanwhile is left alone.
func (d *Daemon) grantClaims(sb *ops.Session, pbs []*sbdb.PortBinding, alive map[string]bool, only map[string]bool) []ovsdb.Operation {
	var txn []ovsdb.Operation
	for _, g := range grants(pbs, ops.Rows[sbdb.ChassisPrivate](sb), alive, only) {
		txn = append(txn, sbops.BindPortBinding(g.pb, g.to))
		d.m.grants.Inc()
		from := "-"
		if g.from != nil {
			from = *g.from
		}
		d.log.Info("bound a port to the chassis that claims it", "port", g.pb.LogicalPort, "chassis", g.to, "from", from)
	}
	return txn
}
