package northd

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// The identities node numbers each VPC's sets of security groups
// (identities.go). It recomputes when a port's groups change, a port
// comes or goes, or the topology (groups, VPCs) changes, and reports the
// ports whose identity and the VPCs whose table changed.

// runIdentities allocates every identity.
func (n *compiler) runIdentities() {
	n.identKey = identityInputs(n.nb, n.topo)
	n.idents = compileIdentities(n.nb, n.topo, n.idents)
	if len(n.idents.changedPorts)+len(n.idents.changedVPCs) > 0 {
		n.identNode.SetUpdated()
	}
}

func (n *compiler) clearIdentities() { n.idents.clearTracked() }

// identitiesHandleNB: only a change of a port's groups, or a port added
// or removed, can change identities (groups come through topology).
func (n *compiler) identitiesHandleNB() bool {
	var changed []string
	for u := range n.nbDelta.ports {
		old, now := n.nbDelta.oldPorts[u], n.nb.ports[u]
		if old == nil || now == nil || !sameSet(old.SecurityGroups, now.SecurityGroups) || n.unnumbered(u) {
			changed = append(changed, u)
		}
	}
	if len(changed) == 0 {
		return true
	}
	// A few ports: each alone (a pass over a 64,000-port VPC per change
	// was most of northd's time); a bulk change, or a VPC whose recorded
	// identities lag, the full pass.
	if len(changed) > len(n.nb.ports)/4 || !n.idents.updatePorts(n.nb, n.topo, changed) {
		n.runIdentities()
		return true
	}
	n.identsAlone++
	if len(n.idents.changedPorts)+len(n.idents.changedVPCs) > 0 {
		n.identNode.SetUpdated()
	}
	return true
}

// identitiesHandleTopology: groups or VPCs changed. Identities depend
// on which groups each VPC has, by what name, whether it is open, and
// which vxnets it holds; a rule alone changes none (and a pass over a
// big VPC's ports for each rule was most of northd's time).
func (n *compiler) identitiesHandleTopology() bool {
	if identityInputs(n.nb, n.topo) != n.identKey {
		n.runIdentities()
	}
	return true
}

// identityInputs is what of the topology identities depend on, as text.
func identityInputs(v *nbView, t *topology) string {
	var b strings.Builder
	for _, u := range slices.Sorted(maps.Keys(t.vpcs)) {
		c := t.vpcs[u]
		fmt.Fprintf(&b, "%s %t", u, c.open)
		for _, g := range c.groups {
			fmt.Fprintf(&b, " %s=%s", g.uuid, g.name)
		}
		b.WriteByte('\n')
	}
	for _, x := range slices.Sorted(maps.Keys(v.vxnetVPC)) {
		fmt.Fprintf(&b, "%s>%s\n", x, v.vxnetVPC[x])
	}
	return b.String()
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
