package northd

import "github.com/courier-sdn/courier/pipeline"

// to_hub: what a host does not know goes to a hub, unless a hub said
// lately nobody has it, and within the port's budget.
func toHubFlows(b *flowBuilder, _ scope) {
	b.add(pipeline.ToHub, 110, "dst.unknown", "drop(dst_unknown);")
	b.add(pipeline.ToHub, 100, "inport.over_budget", "drop(hub_budget);")
	b.add(pipeline.ToHub, 0, "1", "hub;")
}
