package northd

// The topology node compiles VPCs, vxnets and routes. They are few, so it
// always recompiles them all and reports precisely what changed
// (changedVPCs, changedVxnets, changedRoutes), keeping the previous
// topology in prevT for the nodes that must compare.

// runTopology recompiles the topology.
func (n *compiler) runTopology() {
	n.prevT = n.topo
	n.topo = compileTopology(n.nb, n.topo)
}

func (n *compiler) clearTopology() { n.topo.clearTracked() }

// topologyHandleNB recompiles only when VPCs, vxnets or routes changed:
// ports and NB_Global do not change the topology.
func (n *compiler) topologyHandleNB() bool {
	d := n.nbDelta
	if len(d.vpcs) == 0 && len(d.vxnets) == 0 && len(d.routes) == 0 && !d.groups {
		return true
	}
	n.runTopology()
	// A refused rule changes no VPC, but its status must be written.
	if len(n.topo.changedVPCs)+len(n.topo.changedVxnets)+len(n.topo.changedRoutes) > 0 || d.groups {
		n.topoNode.SetUpdated()
	}
	return true
}
