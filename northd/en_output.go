package northd

// The output node collects the keys a run must compare with the
// databases (a dirtySet, sync.go): southbound datapaths, bindings and
// datapaths' flows, and the northbound rows whose status may need
// writing. Its recompute compares everything.

// runOutput marks everything for comparison.
func (n *compiler) runOutput() { n.out.full = true }

// outputHandleNB: changed northbound rows may need their status written.
func (n *compiler) outputHandleNB() bool {
	d := n.nbDelta
	for u := range d.ports {
		n.out.nbPort[u] = true
	}
	for u := range d.vxnets {
		n.out.nbVxnet[u] = true
	}
	for u := range d.vpcs {
		n.out.nbVPC[u] = true
	}
	for u := range d.routes {
		n.out.nbRoute[u] = true
	}
	for u := range d.sgStatus {
		n.out.nbSG[u] = true
	}
	for u := range d.ruleStatus {
		n.out.nbSGRule[u] = true
	}
	return true
}

// outputHandleSB: a southbound row changed by somebody else is compared
// again, and rewritten if it is not what northd compiled.
func (n *compiler) outputHandleSB() bool {
	for k := range n.sbDirty.dps {
		n.out.dps[k] = true
	}
	for k := range n.sbDirty.ports {
		n.out.ports[k] = true
	}
	for k := range n.sbDirty.flowDPs {
		n.out.flowDPs[k] = true
	}
	for k := range n.sbDirty.snats {
		n.out.snats[k] = true
	}
	for k := range n.sbDirty.extnets {
		n.out.extnets[k] = true
	}
	return true
}

// outputHandleTopology: the datapaths of changed VPCs and vxnets, under
// their old and new names, and the statuses of changed topology rows.
func (n *compiler) outputHandleTopology() bool {
	for u := range n.topo.changedVPCs {
		for _, t := range []*topology{n.prevT, n.topo} {
			if c := t.vpcs[u]; c != nil {
				n.out.dps[vpcDP(c.name)] = true
			}
		}
		n.out.nbVPC[u] = true
	}
	for u := range n.topo.changedVxnets {
		for _, t := range []*topology{n.prevT, n.topo} {
			if c := t.vxnets[u]; c != nil {
				n.out.dps[vxnetDP(c.name)] = true
			}
		}
		n.out.nbVxnet[u] = true
	}
	for u := range n.topo.changedRoutes {
		n.out.nbRoute[u] = true
	}
	// Groups and rules are few: their statuses are compared whenever
	// the topology ran.
	for u := range n.topo.groups {
		n.out.nbSG[u] = true
	}
	for u := range n.topo.sgRules {
		n.out.nbSGRule[u] = true
	}
	return true
}

// outputHandlePorts: the bindings of changed and vanished ports, and the
// statuses of changed ports.
func (n *compiler) outputHandlePorts() bool {
	for u := range n.ports.changed {
		if p := n.ports.ports[u]; p != nil {
			n.out.ports[p.name] = true
		}
		n.out.nbPort[u] = true
	}
	for _, name := range n.ports.gone {
		n.out.ports[name] = true
	}
	return true
}

// outputHandleLflows: the datapaths whose flows changed (and, when only
// some stages' did, which).
func (n *compiler) outputHandleLflows() bool {
	for k := range n.flows.changed {
		stages := n.flows.changedStages[k]
		if stages == nil {
			n.out.flowDPs[k] = true
			continue
		}
		if n.out.flowStages[k] == nil {
			n.out.flowStages[k] = map[string]bool{}
		}
		for st := range stages {
			n.out.flowStages[k][st] = true
		}
	}
	return true
}

// outputHandleIdentities: the bindings of ports whose identity changed,
// and the datapaths and statuses of VPCs whose table changed.
func (n *compiler) outputHandleIdentities() bool {
	for u := range n.idents.changedPorts {
		if p := n.ports.ports[u]; p != nil {
			n.out.ports[p.name] = true
		}
	}
	for u := range n.idents.changedVPCs {
		if c := n.topo.vpcs[u]; c != nil {
			n.out.dps[vpcDP(c.name)] = true
		}
		n.out.nbVPC[u] = true
	}
	return true
}
