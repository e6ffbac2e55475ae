// Package engine is an incremental processing engine in the manner of
// OVN's lib/inc-proc-eng: a graph of nodes, each with a full recompute
// and, per input, a change handler. On each run every node whose inputs
// changed either handles the changes (the handler returns true) or falls
// back to a full recompute. A node that recomputed offers no tracked
// changes, so the nodes that depend on it recompute too. A recompute is
// always correct; a handler is an optimization that must give the same
// result, which northd's tests check by comparing both paths.
package engine

import "fmt"

// Handler processes the tracked changes of one input. It returns false
// when it cannot, and the node then recomputes.
type Handler func() bool

// Stats count what a node did.
type Stats struct {
	Recompute uint64 // full recomputes
	Compute   uint64 // inputs handled incrementally
}

// Node is one step of the computation.
type Node struct {
	Name   string
	inputs []input
	// run recomputes the node's data from its inputs' data.
	run func()
	// clear forgets the tracked changes after a run has been consumed.
	clear func()

	updated    bool
	recomputed bool
	stats      Stats
}

type input struct {
	node    *Node
	handler Handler
}

// NewNode returns a node. run must leave the node's data complete; clear
// (optional) drops its tracked changes.
func NewNode(name string, run func(), clear func()) *Node {
	return &Node{Name: name, run: run, clear: clear}
}

// AddInput makes n depend on in. A nil handler means any change to in
// forces a recompute of n.
func (n *Node) AddInput(in *Node, h Handler) { n.inputs = append(n.inputs, input{in, h}) }

// SetUpdated marks that the node's data changed in this run.
func (n *Node) SetUpdated() { n.updated = true }

// Updated reports whether the node's data changed in this run.
func (n *Node) Updated() bool { return n.updated }

// Recomputed reports whether the node recomputed in this run (its data
// then has no tracked changes).
func (n *Node) Recomputed() bool { return n.recomputed }

// Engine runs a graph of nodes in dependency order.
type Engine struct {
	nodes []*Node
	runs  uint64
}

// New checks that nodes are given in dependency order (every input comes
// before the nodes that use it) and returns the engine.
func New(nodes ...*Node) (*Engine, error) {
	seen := map[*Node]bool{}
	for _, n := range nodes {
		for _, in := range n.inputs {
			if !seen[in.node] {
				return nil, fmt.Errorf("engine: node %s uses %s, which is not before it", n.Name, in.node.Name)
			}
		}
		seen[n] = true
	}
	return &Engine{nodes: nodes}, nil
}

// Run computes every node. With force, every node recomputes.
// Input nodes (no inputs) always run: their run loads what changed.
func (e *Engine) Run(force bool) {
	e.runs++
	for _, n := range e.nodes {
		n.updated, n.recomputed = false, false
		if len(n.inputs) == 0 {
			n.run()
			if force {
				n.recomputed = true
				n.updated = true
			}
			continue
		}
		mustRecompute := force
		for _, in := range n.inputs {
			if in.node.recomputed {
				mustRecompute = true
			}
		}
		if !mustRecompute {
			for _, in := range n.inputs {
				if !in.node.updated {
					continue
				}
				if in.handler == nil || !in.handler() {
					mustRecompute = true
					break
				}
				n.stats.Compute++
			}
		}
		if mustRecompute {
			n.run()
			n.stats.Recompute++
			n.recomputed = true
			n.updated = true
		}
	}
}

// Clear drops every node's tracked changes; call it once the results of
// a run have been consumed (written to the database).
func (e *Engine) Clear() {
	for _, n := range e.nodes {
		if n.clear != nil {
			n.clear()
		}
	}
}

// Stats returns each node's counters.
func (e *Engine) Stats() map[string]Stats {
	out := map[string]Stats{}
	for _, n := range e.nodes {
		out[n.Name] = n.stats
	}
	return out
}

// Runs is how many times Run was called.
func (e *Engine) Runs() uint64 { return e.runs }
