package northd

import (
	"github.com/courier-sdn/courier/northd/engine"
	"github.com/courier-sdn/courier/ops"
)

// compiler is northd's incremental compiler: the NB and SB views, the
// compiled state, and the engine graph that keeps them in step.
//
//	nb ──► topology ──► ports ──► output
//	 │        │  ├────► lflows ──►  ▲
//	 │        │  └────► identities ►│
//	 │        ├──► eips ──► snat ─► │
//	 │        └──────────────────►  │
//	 └───────────────(statuses)──►  │
//	sb ─────────────────────────────┘
//
// nb and sb are inputs: they fold the monitors' changes into the views
// (en_inputs.go). topology compiles VPCs, vxnets and routes (small: it
// recompiles them all and reports precisely what changed; en_topology.go).
// ports compiles ports per claim (en_ports.go). identities numbers
// the VPCs' sets of security groups (en_identities.go; nb feeds it too). lflows regenerates the
// flows of changed VPCs and vxnets (en_lflows.go). output collects the
// keys a run must compare with the southbound (en_output.go). Each node's
// file holds its run function and one handler per input, as OVN's
// en-*.c do; newCompiler only wires them.
type compiler struct {
	nb     *nbView
	sb     *sbView
	topo   *topology
	prevT  *topology
	ports  *portTable
	flows  *flowTable
	idents *identities
	// identKey is what identities were last computed from of the
	// topology (identityInputs); identsAlone counts the port changes
	// handled without a pass over every port.
	identKey    string
	identsAlone int
	out         *dirtySet

	pendingNB, pendingSB ops.Changes
	nbDelta              *nbDelta
	sbDirty              sbDirty
	// ports the ports node already recompiled in this run
	portsDone map[string]bool

	eng                                          *engine.Engine
	nbNode, sbNode, topoNode, portNode, flowNode *engine.Node
	outNode, identNode, eipNode, snatNode        *engine.Node
	eips                                         *eipTable
	eipsRan                                      bool // the eips node ran in this run
	snat                                         *snatTable
	snatRan                                      bool // the snat node ran in this run
}

// newCompiler builds the views and wires the engine graph.
func newCompiler() *compiler {
	n := &compiler{nb: newNBView(), sb: newSBView(), topo: newTopology(), ports: newPortTable(0), eips: newEIPTable(), snat: newSNATTable(),
		flows: newFlowTable(), idents: newIdentities(), out: newDirtySet(), nbDelta: newDelta()}
	n.prevT = n.topo

	n.nbNode = engine.NewNode("nb", n.runNB, nil)
	n.sbNode = engine.NewNode("sb", n.runSB, nil)

	n.topoNode = engine.NewNode("topology", n.runTopology, n.clearTopology)
	n.topoNode.AddInput(n.nbNode, n.topologyHandleNB)

	n.portNode = engine.NewNode("ports", n.runPorts, n.clearPorts)
	n.portNode.AddInput(n.nbNode, n.portsHandleNB)
	n.portNode.AddInput(n.topoNode, n.portsHandleTopology)

	n.flowNode = engine.NewNode("lflows", n.runLflows, n.clearLflows)
	n.flowNode.AddInput(n.topoNode, n.lflowsHandleTopology)

	n.identNode = engine.NewNode("identities", n.runIdentities, n.clearIdentities)
	n.identNode.AddInput(n.nbNode, n.identitiesHandleNB)
	n.identNode.AddInput(n.topoNode, n.identitiesHandleTopology)

	n.eipNode = engine.NewNode("eips", n.runEIPs, n.clearEIPs)
	n.eipNode.AddInput(n.nbNode, n.eipsHandleNB)
	n.eipNode.AddInput(n.topoNode, n.eipsHandleTopology)
	n.eipNode.AddInput(n.portNode, n.eipsHandlePorts)

	n.snatNode = engine.NewNode("snat", n.runSNAT, n.clearSNAT)
	n.snatNode.AddInput(n.nbNode, n.snatHandleNB)
	n.snatNode.AddInput(n.topoNode, n.snatHandleTopology)
	n.snatNode.AddInput(n.eipNode, n.snatHandleEIPs)

	n.outNode = engine.NewNode("output", n.runOutput, nil)
	n.outNode.AddInput(n.nbNode, n.outputHandleNB)
	n.outNode.AddInput(n.sbNode, n.outputHandleSB)
	n.outNode.AddInput(n.topoNode, n.outputHandleTopology)
	n.outNode.AddInput(n.portNode, n.outputHandlePorts)
	n.outNode.AddInput(n.flowNode, n.outputHandleLflows)
	n.outNode.AddInput(n.identNode, n.outputHandleIdentities)
	n.outNode.AddInput(n.eipNode, n.outputHandleEIPs)
	n.outNode.AddInput(n.snatNode, n.outputHandleSNAT)

	var err error
	n.eng, err = engine.New(n.nbNode, n.sbNode, n.topoNode, n.portNode, n.flowNode, n.identNode, n.eipNode, n.snatNode, n.outNode)
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
