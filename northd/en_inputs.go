package northd

import "github.com/courier-sdn/courier/ops"

// The engine's input nodes, nb and sb: each run folds the changes the
// monitors delivered into its view and says whether anything changed.
// They have no handlers: input nodes always run.

// runNB applies the pending northbound changes.
func (n *compiler) runNB() {
	n.nbDelta = n.nb.apply(n.pendingNB)
	n.pendingNB = ops.Changes{}
	n.portsDone = map[string]bool{}
	if !n.nbDelta.empty() {
		n.nbNode.SetUpdated()
	}
}

// runSB applies the pending southbound changes.
func (n *compiler) runSB() {
	n.sbDirty = n.sb.apply(n.pendingSB)
	n.pendingSB = ops.Changes{}
	if len(n.sbDirty.dps)+len(n.sbDirty.ports)+len(n.sbDirty.flowDPs)+len(n.sbDirty.snats)+len(n.sbDirty.extnets) > 0 {
		n.sbNode.SetUpdated()
	}
}
