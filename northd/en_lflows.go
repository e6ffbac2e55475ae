package northd

// The lflows node builds the logical flows of every datapath. Flows do
// not depend on ports, so only a topology change reaches it, and it
// rebuilds the flows of the VPCs and vxnets that changed.

// runLflows builds every datapath's flows.
func (n *compiler) runLflows() { n.flows = compileFlows(n.topo) }

func (n *compiler) clearLflows() { n.flows.clearTracked() }

// lflowsHandleTopology rebuilds the flows of changed VPCs and vxnets.
func (n *compiler) lflowsHandleTopology() bool {
	n.flows.update(n.prevT, n.topo)
	if len(n.flows.changed) > 0 {
		n.flowNode.SetUpdated()
	}
	return true
}
