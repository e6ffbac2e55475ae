/* STAGE_DST_LOOKUP: where the routed packet's target (the destination, or
 * the route's next hop) lives: a local port, a binding this host knows
 * or learned, else a hub (to_hub), which fills in the destination MAC:
 * until then the frame is addressed to the gateway, which marks it
 * incomplete. */
#ifndef COURIER_STAGE_DST_LOOKUP_H
#define COURIER_STAGE_DST_LOOKUP_H

#include "pipeline.h"
#include "lookup.h"

__attribute__((noinline)) int stage_dst_lookup(struct __sk_buff *skb, struct pctx *c)
{
	if (!c) /* the verifier checks a global function alone: c is never NULL */
		return V_DROP;
	if (!vpc_of(c))
		return drop_for(c, DROP_NO_ROUTE);
	struct vpc *vpc = &c->vx.vpce;
	struct dest *d = &c->d;
	int known = 1;
	if (d->hit) /* ip_route found d by its binding (its fast path) */
		c->hit = d->hit;
	else
		known = lookup_dest(c, c->vpc, c->target, d);
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return drop_for(c, DROP_MALFORMED);
	if (known && ((d->kind == DEST_LOCAL && (vpc->flags & VPC_F_DST_LOCAL)) ||
		      (d->kind == DEST_REMOTE && (vpc->flags & VPC_F_DST_KNOWN)))) {
		__builtin_memcpy(eth->h_dest, d->mac, 6);
		return V_OUTPUT;
	}
	d->kind = 0;
	if (vpc->flags & VPC_F_DST_MISS_HUB) {
		__builtin_memcpy(eth->h_dest, vpc->gw_mac, 6);
		return next_stage(c, STAGE_TO_HUB);
	}
	return drop_for(c, DROP_NO_HUB);
}

#endif
