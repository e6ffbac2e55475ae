package northd

import (
	"reflect"

	"github.com/courier-sdn/courier/northd/engine"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema/nbdb"
)

// compiler is northd's incremental compiler: the NB and SB views, the
// compiled state, and the engine graph that keeps them in step.
//
//	nb ──► topology ──► ports ──► output
//	 │        │  └────► lflows ──►  ▲
//	 │        └──────────────────►  │
//	 └───────────────(statuses)──►  │
//	sb ─────────────────────────────┘
//
// nb and sb are inputs: they fold the monitors' changes into the views.
// topology compiles VPCs, vxnets and routes (small: it recompiles them all
// and reports precisely what changed). ports compiles ports per claim.
// lflows regenerates the flows of changed VPCs and vxnets. output collects
// the keys a run must compare with the southbound.
type compiler struct {
	nb    *nbView
	sb    *sbView
	topo  *topology
	prevT *topology
	ports *portTable
	flows *flowTable
	out   *dirtySet

	pendingNB, pendingSB ops.Changes
	nbDelta              *nbDelta
	sbDirty              sbDirty
	// ports the ports node already recompiled in this run
	portsDone map[string]bool

	eng                                          *engine.Engine
	nbNode, sbNode, topoNode, portNode, flowNode *engine.Node
	outNode                                      *engine.Node
}

func newCompiler() *compiler {
	n := &compiler{nb: newNBView(), sb: newSBView(), topo: newTopology(), ports: newPortTable(0),
		flows: newFlowTable(), out: newDirtySet(), nbDelta: newDelta()}
	n.prevT = n.topo

	n.nbNode = engine.NewNode("nb", func() {
		n.nbDelta = n.nb.apply(n.pendingNB)
		n.pendingNB = ops.Changes{}
		n.portsDone = map[string]bool{}
		if !n.nbDelta.empty() {
			n.nbNode.SetUpdated()
		}
	}, nil)
	n.sbNode = engine.NewNode("sb", func() {
		n.sbDirty = n.sb.apply(n.pendingSB)
		n.pendingSB = ops.Changes{}
		if len(n.sbDirty.dps)+len(n.sbDirty.ports)+len(n.sbDirty.flowDPs) > 0 {
			n.sbNode.SetUpdated()
		}
	}, nil)

	n.topoNode = engine.NewNode("topology", func() {
		n.prevT = n.topo
		n.topo = compileTopology(n.nb, n.topo)
	}, func() { n.topo.clearTracked() })
	n.topoNode.AddInput(n.nbNode, func() bool {
		d := n.nbDelta
		if len(d.vpcs) == 0 && len(d.vxnets) == 0 && len(d.routes) == 0 {
			return true // ports and NB_Global do not change the topology
		}
		n.prevT = n.topo
		n.topo = compileTopology(n.nb, n.topo)
		if len(n.topo.changedVPCs)+len(n.topo.changedVxnets)+len(n.topo.changedRoutes) > 0 {
			n.topoNode.SetUpdated()
		}
		return true
	})

	n.portNode = engine.NewNode("ports", func() {
		n.ports = compilePorts(n.nb, n.topo, n.ports)
	}, func() { n.ports.clearTracked() })
	// A batch that touches most ports (a bulk load) is compiled from
	// scratch: cheaper than settling the ports one by one.
	bulk := func(changed int) bool { return changed > 1000 && changed > len(n.ports.ports)/2 }
	n.portNode.AddInput(n.nbNode, func() bool {
		changed := n.nbDelta.compileRelevantPorts()
		// A port whose status starts or stops saying it was refused
		// changes whether it is an incumbent for a northd that does not
		// know it: the ports it shares claims with are settled again, as
		// a fresh compile would.
		for u := range n.nbDelta.statusOnly {
			old, now := n.nbDelta.oldPorts[u], n.nb.ports[u]
			if (old.Status["state"] == "error") != (now.Status["state"] == "error") {
				changed[u] = true
			}
		}
		if bulk(len(changed)) {
			return false
		}
		if len(changed) > 0 {
			n.ports.update(n.nb, n.topo, changed)
			n.portNode.SetUpdated()
			for u := range changed {
				n.portsDone[u] = true
			}
		}
		return true
	})
	n.portNode.AddInput(n.topoNode, func() bool {
		// Ports of changed vxnets, except those just recompiled above
		// (against the new topology already).
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
		if bulk(len(changed)) {
			return false
		}
		if len(changed) > 0 {
			n.ports.update(n.nb, n.topo, changed)
			n.portNode.SetUpdated()
		}
		return true
	})

	n.flowNode = engine.NewNode("lflows", func() {
		n.flows = compileFlows(n.topo)
	}, func() { n.flows.clearTracked() })
	n.flowNode.AddInput(n.topoNode, func() bool {
		n.flows.update(n.prevT, n.topo)
		if len(n.flows.changed) > 0 {
			n.flowNode.SetUpdated()
		}
		return true
	})

	n.outNode = engine.NewNode("output", func() {
		n.out.full = true
	}, nil)
	n.outNode.AddInput(n.nbNode, func() bool {
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
		return true
	})
	n.outNode.AddInput(n.sbNode, func() bool {
		for k := range n.sbDirty.dps {
			n.out.dps[k] = true
		}
		for k := range n.sbDirty.ports {
			n.out.ports[k] = true
		}
		for k := range n.sbDirty.flowDPs {
			n.out.flowDPs[k] = true
		}
		return true
	})
	n.outNode.AddInput(n.topoNode, func() bool {
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
		return true
	})
	n.outNode.AddInput(n.portNode, func() bool {
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
	})
	n.outNode.AddInput(n.flowNode, func() bool {
		for k := range n.flows.changed {
			n.out.flowDPs[k] = true
		}
		return true
	})

	var err error
	n.eng, err = engine.New(n.nbNode, n.sbNode, n.topoNode, n.portNode, n.flowNode, n.outNode)
	if err != nil {
		panic(err) // the graph above is static
	}
	return n
}

// run computes; force recomputes every node.
func (n *compiler) run(force bool) { n.eng.Run(force) }

// consumed drops tracked changes once the output has been written.
func (n *compiler) consumed() {
	n.eng.Clear()
	n.out = newDirtySet()
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
	return a.Name == b.Name && a.MAC == b.MAC && sameStrings(a.IPs, b.IPs) &&
		sameStrings(a.VirtualIPs, b.VirtualIPs) && sameStr(a.RequestedChassis, b.RequestedChassis) &&
		reflect.DeepEqual(a.PortSecurity, b.PortSecurity) && sameInt(a.LearnedLimit, b.LearnedLimit)
}
