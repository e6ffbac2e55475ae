/* STAGE_IP_ROUTE: one logical hop between the VPC's vxnets and along its
 * static routes, decided here: longest prefix wins, TTL-1, and the
 * distributed gateway's MAC (the same on every host) as the source. */
#ifndef COURIER_STAGE_IP_ROUTE_H
#define COURIER_STAGE_IP_ROUTE_H

#include "pipeline.h"
#include "routes.h"

__attribute__((noinline)) int stage_ip_route(struct __sk_buff *skb, struct pctx *c)
{
	if (!c) /* the verifier checks a global function alone: c is never NULL */
		return V_DROP;
	if (!vpc_of(c))
		return drop_for(c, DROP_NO_ROUTE);
	struct vpc *vpc = &c->vpce;
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return drop_for(c, DROP_MALFORMED);
	if ((vpc->flags & VPC_F_TTL) && ip->ttl <= 1) {
		c->reason = DROP_TTL_EXCEEDED;
		return next_stage(c, STAGE_ICMP_ERR);
	}
	struct route *rt = route_lookup(c->vpc, ip->daddr);
	if (!rt) {
		c->reason = DROP_NO_ROUTE;
		return next_stage(c, (vpc->flags & VPC_F_EIP_OUT) ? STAGE_EIP_OUT : STAGE_ICMP_ERR);
	}
	c->hit = HIT_ROUTE;
	c->target = rt->nexthop ? rt->nexthop : ip->daddr;
	c->dvni = rt->vni;
	if (routed_hop(skb, c, eth, ip, vpc->gw_mac) < 0)
		return drop_for(c, DROP_MALFORMED);
	return next_stage(c, STAGE_DST_LOOKUP);
}

#endif
