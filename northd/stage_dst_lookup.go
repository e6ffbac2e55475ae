package northd

import "github.com/courier-sdn/courier/pipeline"

// dst_lookup: a routed packet goes to its target's host, or to a hub.
func dstLookupFlows(b *flowBuilder, _ scope) {
	b.add(pipeline.DstLookup, 100, "dst.local", "output;")
	b.add(pipeline.DstLookup, 50, "dst.known", "output;")
	b.add(pipeline.DstLookup, 0, "1", "hub;")
}
