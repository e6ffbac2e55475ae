package northd

// The eips node compiles external networks and EIPs (eips.go). It
// recomputes, all of it, when one of them changes, when a port bound to
// an EIP changes (its addresses, its refusal), or when the topology
// does; it reports the ports whose binding must carry another EIP.

// runEIPs compiles every network and EIP. It runs at most once per
// engine run: by then every input is current, and a second compile would
// take the first one's result as the previous state and lose the ports
// whose binding changed.
func (n *compiler) runEIPs() {
	n.eips = compileEIPs(n.nb, n.ports, n.eips)
	n.eipsRan = true
	n.eipNode.SetUpdated()
}

func (n *compiler) clearEIPs() {
	n.eips.clearTracked()
	n.eipsRan = false
}

// eipsHandleNB: a network or EIP changed.
func (n *compiler) eipsHandleNB() bool {
	if n.nbDelta.eips && !n.eipsRan {
		n.runEIPs()
	}
	return true
}

// eipsHandlePorts: a port whose compiled result changed, if an EIP names
// it, may have gained or lost its gateway path.
func (n *compiler) eipsHandlePorts() bool {
	for u := range n.ports.changed {
		if n.nb.portEIPs[u] > 0 && !n.eipsRan {
			n.runEIPs()
			return true
		}
	}
	return true
}

// eipsHandleTopology: a vxnet or VPC refused or accepted changes its
// ports (through the ports node); recompiling here too is cheap.
func (n *compiler) eipsHandleTopology() bool {
	if len(n.topo.changedVPCs)+len(n.topo.changedVxnets) > 0 && !n.eipsRan {
		n.runEIPs()
	}
	return true
}

// outputHandleEIPs: the bindings of ports whose EIP changed, and the
// statuses of every network and EIP (few) when they were compiled.
func (n *compiler) outputHandleEIPs() bool {
	for u := range n.eips.changedPorts {
		if p := n.ports.ports[u]; p != nil {
			n.out.ports[p.name] = true
		}
	}
	if n.eipsRan {
		for u := range n.eips.nets {
			n.out.nbExtnet[u] = true
		}
		// The southbound's networks, old and new (few).
		for name := range n.eips.sbNets {
			n.out.extnets[name] = true
		}
		for name := range n.sb.extnets.byKey {
			n.out.extnets[name] = true
		}
		for u := range n.eips.eips {
			n.out.nbEIP[u] = true
		}
	}
	return true
}
