/* STAGE_TO_HUB: a VM's packet for an address this host does not know
 * goes to one of the VPC's hubs, which forwards it and teaches this host
 * the direct path: chosen by flow hash among the hubs answering probes
 * (hubs.h), within the port's budget for such packets (budget.h), and not
 * while a hub's word that nobody has the address is fresh (unknown_v1):
 * one VM cannot flood the hubs every VPC shares. */
#ifndef COURIER_STAGE_TO_HUB_H
#define COURIER_STAGE_TO_HUB_H

#include "pipeline.h"
#include "endpoints.h"
#include "budget.h"
#include "hubs.h"

__attribute__((noinline)) int stage_to_hub(struct __sk_buff *skb, struct pctx *c)
{
	if (!c) /* the verifier checks a global function alone: c is never NULL */
		return V_DROP;
	if (!vpc_of(c))
		return drop_for(c, DROP_NO_HUB);
	__u32 vpc_id = c->vpc;
	struct vpc *vpc = &c->vx.vpce;
	if ((vpc->flags & VPC_F_HUB_UNKNOWN) && known_unknown(vpc_id, c->target)) {
		c->hit = HIT_UNKNOWN;
		return drop_for(c, DROP_DST_UNKNOWN);
	}
	if ((vpc->flags & VPC_F_HUB_BUDGET) && !budget_take(c->ifindex, BUDGET_HUB, cfg_hub_cost_ns, cfg_hub_burst_ns)) {
		c->hit = HIT_BUDGET;
		return drop_for(c, DROP_HUB_BUDGET);
	}
	int passed = 0;
	__u32 hub = pick_hub(vpc_id, bpf_get_hash_recalc(skb), &passed);
	if (!hub)
		return drop_for(c, DROP_NO_HUB);
	c->hit = passed ? HIT_HUB_NEXT : HIT_HUB;
	if (hub == cfg_local_vtep)
		return drop_for(c, DROP_HUB_MISS); /* we are that hub, and do not know */
	c->d.kind = DEST_HUB;
	c->d.vtep = hub;
	c->d.vni = c->dvni;
	return V_OUTPUT;
}

#endif
