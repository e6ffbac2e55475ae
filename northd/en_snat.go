package northd

// The snat node compiles every VPC's SNAT configuration (snat.go). It
// recomputes, all of it, when a SNAT row or a VPC's snat changes, when
// networks or EIPs do (their addresses and acceptance decide), or when
// the topology does (a VPC's key); it reports the VPC keys whose
// southbound SNAT row must change.

// runSNAT compiles every configuration. It runs at most once per engine
// run: by then every input is current, and a second compile would take
// the first one's result as the previous state and lose what changed.
func (n *compiler) runSNAT() {
	n.snat = compileSNAT(n.nb, n.topo, n.eips, n.snat)
	n.snatRan = true
	n.snatNode.SetUpdated()
}

func (n *compiler) clearSNAT() {
	n.snat.clearTracked()
	n.snatRan = false
}

// snatHandleNB: a SNAT row, a VPC's snat, a network or an EIP changed.
func (n *compiler) snatHandleNB() bool {
	if (n.nbDelta.snat || n.nbDelta.eips) && !n.snatRan {
		n.runSNAT()
	}
	return true
}

// snatHandleTopology: a VPC added, deleted or renumbered.
func (n *compiler) snatHandleTopology() bool {
	if len(n.topo.changedVPCs) > 0 && !n.snatRan {
		n.runSNAT()
	}
	return true
}

// snatHandleEIPs: networks were compiled again; whether one is refused
// decides. (A change that ran the eips node ran this one from nb or
// topology already: this input orders the two.)
func (n *compiler) snatHandleEIPs() bool {
	if n.eipsRan && !n.snatRan {
		n.runSNAT()
	}
	return true
}

// outputHandleSNAT: the southbound rows of changed VPC keys, and the
// statuses of every SNAT row (few) when they were compiled.
func (n *compiler) outputHandleSNAT() bool {
	for k := range n.snat.changedKeys {
		n.out.snats[k] = true
	}
	if n.snatRan {
		for u := range n.snat.rows {
			n.out.nbSNAT[u] = true
		}
	}
	return true
}
