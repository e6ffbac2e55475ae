package northd

// The identities node numbers each VPC's sets of security groups
// (identities.go). It recomputes when a port's groups change, a port
// comes or goes, or the topology (groups, VPCs) changes, and reports the
// ports whose identity and the VPCs whose table changed.

// runIdentities allocates every identity.
func (n *compiler) runIdentities() {
	n.idents = compileIdentities(n.nb, n.topo, n.idents)
	if len(n.idents.changedPorts)+len(n.idents.changedVPCs) > 0 {
		n.identNode.SetUpdated()
	}
}

func (n *compiler) clearIdentities() { n.idents.clearTracked() }

// identitiesHandleNB: only a change of a port's groups, or a port added
// or removed, can change identities (groups come through topology).
func (n *compiler) identitiesHandleNB() bool {
	for u := range n.nbDelta.ports {
		old, now := n.nbDelta.oldPorts[u], n.nb.ports[u]
		if old == nil || now == nil || !sameSet(old.SecurityGroups, now.SecurityGroups) || n.unnumbered(u) {
			n.runIdentities()
			return true
		}
	}
	return true
}

// identitiesHandleTopology: groups or VPCs changed.
func (n *compiler) identitiesHandleTopology() bool {
	n.runIdentities()
	return true
}

// unnumbered: a port of a VPC with groups enforced that has no identity
// yet (a port moved into a vxnet).
func (n *compiler) unnumbered(u string) bool {
	c := n.topo.vpcs[n.nb.vxnetVPC[n.nb.portVxnet[u]]]
	return c != nil && !c.open && n.idents.port[u] == 0
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]bool{}
	for _, x := range a {
		m[x] = true
	}
	for _, x := range b {
		if !m[x] {
			return false
		}
	}
	return true
}
