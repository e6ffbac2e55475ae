package northd

import (
	"reflect"

	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema/nbdb"
)

// The ports node compiles ports, per claim: a changed port is settled
// again with the ports it shares claims with (ports.go).

// runPorts compiles every port from scratch.
func (n *compiler) runPorts() { n.ports = compilePorts(n.nb, n.topo, n.ports) }

func (n *compiler) clearPorts() { n.ports.clearTracked() }

// bulkPorts: a batch that touches most ports (a bulk load) is compiled
// from scratch, which is cheaper than settling the ports one by one.
func (n *compiler) bulkPorts(changed int) bool {
	return changed > 1000 && changed > len(n.ports.ports)/2
}

// portsHandleNB settles the ports whose compiled result may have changed.
func (n *compiler) portsHandleNB() bool {
	if n.nbDelta.global && prefixKey(n.nb) != n.ports.prefix {
		return false // every dynamic MAC may change
	}
	changed := n.nbDelta.compileRelevantPorts()
	// A port whose status starts or stops saying it was refused changes
	// whether it is an incumbent for a northd that does not know it: the
	// ports it shares claims with are settled again, as a fresh compile
	// would.
	for u := range n.nbDelta.statusOnly {
		old, now := n.nbDelta.oldPorts[u], n.nb.ports[u]
		if (old.Status["state"] == "error") != (now.Status["state"] == "error") {
			changed[u] = true
		}
	}
	if !n.settlePorts(changed) {
		return false
	}
	for u := range changed {
		n.portsDone[u] = true
	}
	return true
}

// portsHandleTopology settles the ports of changed vxnets, except those
// portsHandleNB just settled (against the new topology already).
func (n *compiler) portsHandleTopology() bool {
	changed := map[string]bool{}
	for vx := range n.topo.changedVxnets {
		for u := range n.nb.vxPorts[vx] {
			if !n.portsDone[u] {
				changed[u] = true
			}
		}
		for u := range n.ports.byVxnet[vx] {
			if !n.portsDone[u] {
				changed[u] = true
			}
		}
	}
	return n.settlePorts(changed)
}

// settlePorts compiles the changed ports again, or says false (recompute)
// when they are most of the ports.
func (n *compiler) settlePorts(changed map[string]bool) bool {
	if n.bulkPorts(len(changed)) {
		return false
	}
	if len(changed) > 0 {
		n.ports.update(n.nb, n.topo, changed)
		n.portNode.SetUpdated()
	}
	return true
}

// compileRelevantPorts are the changed ports whose compiled result can
// differ: a change to status, external_ids or options alone cannot.
func (d *nbDelta) compileRelevantPorts() map[string]bool {
	out := map[string]bool{}
	for u := range d.ports {
		if d.statusOnly[u] {
			continue
		}
		out[u] = true
	}
	return out
}

// portCompileEqual reports whether two versions of a port compile alike.
func portCompileEqual(a, b *nbdb.Port) bool {
	return a.Name == b.Name && a.MAC == b.MAC && ops.EqualSets(a.IPs, b.IPs) &&
		ops.EqualSets(a.VirtualIPs, b.VirtualIPs) && sameStr(a.RequestedChassis, b.RequestedChassis) && sameStr(a.MigrationDestination, b.MigrationDestination) &&
		reflect.DeepEqual(a.PortSecurity, b.PortSecurity) && sameInt(a.LearnedLimit, b.LearnedLimit) &&
		sameStr(a.DynamicAddresses, b.DynamicAddresses) && ops.EqualSets(a.SecurityGroups, b.SecurityGroups)
}

func sameStr(a, b *string) bool {
	return (a == nil && b == nil) || (a != nil && b != nil && *a == *b)
}

func sameInt(a, b *int) bool {
	return (a == nil && b == nil) || (a != nil && b != nil && *a == *b)
}
