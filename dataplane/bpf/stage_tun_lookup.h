/* STAGE_TUN_LOOKUP: an IPv4 packet from another host. Delivered to a
 * local port; on a hub, forwarded to the destination's host (completing
 * the route of a packet its sender could not resolve, addressed to the
 * gateway MAC) and the sender taught, or the sender told the destination
 * is unknown. A packet for a VM no longer here goes to a hub, and its
 * sender is told to forget the path that brought it; what a hub sent is
 * dropped rather than bounced back. */
#ifndef COURIER_STAGE_TUN_LOOKUP_H
#define COURIER_STAGE_TUN_LOOKUP_H

#include "pipeline.h"
#include "lookup.h"
#include "routes.h"
#include "hubs.h"
#include "teach.h"

/* hub_route completes a sender's route (without another TTL-1): resolve
 * the route's target, fill in the destination MAC and forward. */
static __always_inline int hub_route(struct __sk_buff *skb, struct pctx *c, __be32 daddr)
{
	struct route *rt = route_lookup(c->vpc, daddr);
	if (!rt)
		return drop_for(c, DROP_NO_ROUTE);
	__be32 target = rt->nexthop ? rt->nexthop : daddr;
	struct dest d = {};
	if (!lookup_dest(c, c->vpc, target, &d))
		return hub_miss(skb, c, target);
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return drop_for(c, DROP_MALFORMED);
	__builtin_memcpy(eth->h_dest, d.mac, 6);
	c->tflags |= TRF_MAC_REWRITE;
	return hub_forward(skb, c, target, &d);
}

/* not_here: a host (not a hub) got a packet for a VM it no longer has.
 * The packet goes on to a hub, and the sender is told to forget. */
static __always_inline int not_here(struct __sk_buff *skb, struct pctx *c, __be32 target)
{
	if (is_hub_of(c->vpc, c->src))
		return drop_for(c, DROP_STALE_FROM_HUB);
	struct route *rt = route_lookup(c->vpc, target);
	if (rt && rt->nexthop)
		target = rt->nexthop;
	c->target = target;
	int passed = 0;
	__u32 hub = pick_hub(c->vpc, bpf_get_hash_recalc(skb), &passed);
	if (!hub || hub == c->src)
		return drop_for(c, DROP_NO_HUB);
	c->hit = passed ? HIT_HUB_NEXT : HIT_HUB;
	struct dest d = {.kind = DEST_HUB, .vtep = hub, .vni = c->vni};
	c->d = d;
	c->tflags |= TRF_FORGET;
	if (cfg_trace)
		return V_OUTPUT;
	if (clone_to(skb, &d, c->gbp) < 0)
		return drop_for(c, DROP_REDIRECT_FAILED);
	c->tflags |= TRF_CLONE;
	count(STAT_HUB_TX);
	return send_learn(skb, c, c->src, LEARN_OP_FORGET, target, c->vni, 0, 0);
}

__attribute__((noinline)) int stage_tun_lookup(struct __sk_buff *skb, struct pctx *c)
{
	if (!c) /* the verifier checks a global function alone: c is never NULL */
		return V_DROP;
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return drop_for(c, DROP_MALFORMED);
	__u32 vpc_id = c->vpc;
	__be32 target = ip->daddr;
	c->target = target;
	/* eip_in read the VPC's entry already: a second lookup was one
	 * more hash on every packet. */
	struct vpc *vpc = vpc_of(c) ? &c->vx.vpce : 0;
	__u32 flags = vpc ? vpc->flags : 0;
	int incomplete = vpc && mac_eq(eth->h_dest, vpc->gw_mac);
	int hub = cfg_hub && (flags & VPC_F_TUN_HUB);
	if (incomplete && hub)
		return hub_route(skb, c, target);

	struct ep_key k = {.vpc = vpc_id, .ip = target};
	struct local_ep *l = bpf_map_lookup_elem(&local_eps_v1, &k);
	if (l && (flags & VPC_F_TUN_LOCAL)) {
		if (l->vni != c->vni)
			return drop_for(c, DROP_L2_CROSS_VXNET);
		if (incomplete) {
			__builtin_memcpy(eth->h_dest, l->mac, 6);
			c->tflags |= TRF_MAC_REWRITE;
		}
		c->hit = HIT_LOCAL_EP;
		struct dest d = {};
		local_dest(&d, l);
		/* On a hub, whether its sender knew cannot be told from the
		 * packet (an L2 frame through a hub carries the VM's own MAC
		 * too): it is taught, at most once per learn interval. */
		if (hub)
			return hub_forward(skb, c, target, &d);
		c->d = d;
		return V_OUTPUT;
	}
	if (hub) {
		struct dest d = {};
		if (!lookup_dest(c, vpc_id, target, &d))
			return hub_miss(skb, c, target);
		if (d.vni != c->vni)
			return drop_for(c, DROP_L2_CROSS_VXNET);
		return hub_forward(skb, c, target, &d);
	}
	if (flags & VPC_F_TUN_STALE)
		return not_here(skb, c, target);
	return drop_for(c, DROP_STALE_FROM_HUB);
}

#endif
