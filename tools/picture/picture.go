// Package picture draws a Courier network as a Graphviz graph: the tools
// describe what they show (clusters, nodes, edges) and Graphviz lays it
// out. courier-nbctl show --format dot draws the intent, courier-sbctl
// the running world, the sandbox both; --format svg pipes the graph
// through Graphviz's dot when it is installed.
package picture

import (
	"bytes"
	"errors"
	"fmt"
	"os/exec"
	"sort"
	"strings"
)

// Graph is a directed graph of clusters, nodes and edges.
type Graph struct {
	Name     string
	clusters map[string]*Cluster
	order    []string
	nodes    []Node // outside any cluster
	edges    []Edge
}

// Cluster is a boxed group of nodes (a VPC), possibly nested.
type Cluster struct {
	ID, Label string
	Color     string
	nodes     []Node
	sub       []*Cluster
}

// Node is one object.
type Node struct {
	ID, Label string
	Shape     string // Graphviz shape; default box
	Color     string // "" for black; red marks an error
	Style     string
}

// Edge joins two nodes.
type Edge struct {
	From, To, Label string
	Style           string // "", dashed, dotted
	Color           string
}

// New returns an empty graph.
func New(name string) *Graph { return &Graph{Name: name, clusters: map[string]*Cluster{}} }

// Cluster returns the cluster with this id, made if missing.
func (g *Graph) Cluster(id, label string) *Cluster {
	if c := g.clusters[id]; c != nil {
		return c
	}
	c := &Cluster{ID: id, Label: label}
	g.clusters[id] = c
	g.order = append(g.order, id)
	return c
}

// Add adds a node outside any cluster.
func (g *Graph) Add(n Node) { g.nodes = append(g.nodes, n) }

// Add adds a node to the cluster.
func (c *Cluster) Add(n Node) { c.nodes = append(c.nodes, n) }

// Connect adds an edge.
func (g *Graph) Connect(e Edge) { g.edges = append(g.edges, e) }

// quote is a DOT string literal.
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s) + `"`
}

func attrs(kv ...string) string {
	var parts []string
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			parts = append(parts, kv[i]+"="+quote(kv[i+1]))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return " [" + strings.Join(parts, ", ") + "]"
}

func writeNode(b *bytes.Buffer, indent string, n Node) {
	fmt.Fprintf(b, "%s%s%s;\n", indent, quote(n.ID), attrs("label", n.Label, "shape", n.Shape, "color", n.Color, "fontcolor", n.Color, "style", n.Style))
}

// DOT renders the graph in Graphviz's language.
func (g *Graph) DOT() string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "digraph %s {\n  rankdir=LR;\n  graph [fontname=\"Helvetica\"];\n  node [shape=box, fontname=\"Helvetica\", fontsize=10];\n  edge [fontname=\"Helvetica\", fontsize=9];\n", quote(g.Name))
	ids := append([]string{}, g.order...)
	sort.Strings(ids)
	for _, id := range ids {
		writeCluster(&b, "  ", g.clusters[id])
	}
	for _, n := range g.nodes {
		writeNode(&b, "  ", n)
	}
	for _, e := range g.edges {
		fmt.Fprintf(&b, "  %s -> %s%s;\n", quote(e.From), quote(e.To), attrs("label", e.Label, "style", e.Style, "color", e.Color))
	}
	b.WriteString("}\n")
	return b.String()
}

func writeCluster(b *bytes.Buffer, indent string, c *Cluster) {
	fmt.Fprintf(b, "%ssubgraph %s {\n%s  label=%s;\n", indent, quote("cluster_"+c.ID), indent, quote(c.Label))
	if c.Color != "" {
		fmt.Fprintf(b, "%s  color=%s;\n", indent, quote(c.Color))
	}
	for _, n := range c.nodes {
		writeNode(b, indent+"  ", n)
	}
	for _, s := range c.sub {
		writeCluster(b, indent+"  ", s)
	}
	fmt.Fprintf(b, "%s}\n", indent)
}

// ErrNoGraphviz: --format svg needs Graphviz's dot.
var ErrNoGraphviz = errors.New("--format svg needs Graphviz's dot (apt-get install graphviz); --format dot prints the graph for another machine's dot")

// SVG renders a DOT graph with Graphviz's dot.
func SVG(dot string) (string, error) {
	bin, err := exec.LookPath("dot")
	if err != nil {
		return "", ErrNoGraphviz
	}
	cmd := exec.Command(bin, "-Tsvg")
	cmd.Stdin = strings.NewReader(dot)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("dot -Tsvg: %v: %s", err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// Render renders g as format: dot or svg.
func Render(g *Graph, format string) (string, error) {
	switch format {
	case "dot":
		return g.DOT(), nil
	case "svg":
		return SVG(g.DOT())
	}
	return "", fmt.Errorf("--format %q: want text, dot or svg", format)
}
