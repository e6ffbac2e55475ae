/* STAGE_IP_ROUTE: one logical hop between the VPC's vxnets and along its
 * static routes, decided here: longest prefix wins, TTL-1, and the
 * distributed gateway's MAC (the same on every host) as the source. */
#ifndef COURIER_STAGE_IP_ROUTE_H
#define COURIER_STAGE_IP_ROUTE_H

#include "pipeline.h"
#include "routes.h"
#include "lookup.h"

/* in_span: dst lies in the prefix that holds the VPC's vxnets. */
static __always_inline int in_span(const struct vpc *vpc, __be32 dst)
{
	__u32 len = vpc->span_len;
	if (len == 0 || len > 32)
		return 0;
	return (dst & bpf_htonl(0xffffffffU << (32 - len))) == vpc->span_net;
}

__attribute__((noinline)) int stage_ip_route(struct __sk_buff *skb, struct pctx *c)
{
	if (!c) /* the verifier checks a global function alone: c is never NULL */
		return V_DROP;
	if (!vpc_of(c))
		return drop_for(c, DROP_NO_ROUTE);
	struct vpc *vpc = &c->vx.vpce;
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
	__be32 dst = ip->daddr;
	/* A destination with a binding, in a VPC whose static routes leave
	 * its vxnets alone (VPC_D_ROUTE_BOUND), is routed to its binding's
	 * vxnet, as its connected route would: the routes trie costs ~50 ns
	 * on AMD EPYC with SRSO (TestVMPathCost, #21), and dst_lookup takes
	 * the binding found here instead of looking again. A miss leaves no
	 * trace (find_dest's quiet), and the routes decide. */
	if ((vpc->dflags & VPC_D_ROUTE_BOUND) && in_span(vpc, dst) && find_dest(c, c->vpc, dst, &c->d, 1)) {
		c->d.hit = c->hit;
		c->hit = HIT_ROUTE;
		c->target = dst;
		c->dvni = c->d.vni;
		if (routed_hop(skb, c, eth, ip, vpc->gw_mac) < 0)
			return drop_for(c, DROP_MALFORMED);
		return next_stage(c, STAGE_DST_LOOKUP);
	}
	struct route *rt = route_lookup(c->vpc, dst);
	if (!rt) {
		c->reason = DROP_NO_ROUTE;
		return next_stage(c, (vpc->flags & VPC_F_EIP_OUT) ? STAGE_EIP_OUT : STAGE_ICMP_ERR);
	}
	c->hit = HIT_ROUTE;
	c->target = rt->nexthop ? rt->nexthop : dst;
	c->dvni = rt->vni;
	if (routed_hop(skb, c, eth, ip, vpc->gw_mac) < 0)
		return drop_for(c, DROP_MALFORMED);
	return next_stage(c, STAGE_DST_LOOKUP);
}

#endif
