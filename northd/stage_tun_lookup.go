package northd

import "github.com/courier-sdn/courier/pipeline"

// tun_lookup: deliver to a local port; a hub forwards and teaches, or
// says the destination is unknown; a packet for a VM no longer here goes
// to a hub and its sender forgets the path (what a hub sent is dropped).
func tunLookupFlows(b *flowBuilder, _ scope) {
	b.add(pipeline.TunLookup, 100, "dst.local", "output;")
	b.add(pipeline.TunLookup, 90, "chassis.hub && dst.known", "output; teach;")
	b.add(pipeline.TunLookup, 80, "chassis.hub", "tell_unknown;")
	b.add(pipeline.TunLookup, 70, "from.hub", "drop(stale_from_hub);")
	b.add(pipeline.TunLookup, 0, "1", "hub; forget_path;")
}
