/* Hairpin: a VM reaching another VM's EIP (public or physical) of its own
 * VPC is translated on the sending host and routed there as VM to VM: no
 * detour through a gateway, one hop as for the VM's own address.
 *
 * Both ends are translated, statelessly, so that each VM sees what it
 * would see through a gateway: the receiver gets the packet from the
 * sender's own EIP, to its own address; its reply, sent to that EIP, is
 * a hairpin on its host in turn and reaches the sender from the address
 * the sender called. A sender without an EIP has no address whose
 * replies could be translated back without state; it goes through its
 * VPC's SNAT and a gateway as before.
 *
 * Security groups see what the VMs see: sg_egress the packet as the
 * sender sent it (to the EIP, the internet's identity), sg_ingress as
 * the receiver gets it (from the sender's EIP, with no identity: only a
 * rule naming a prefix admits it, as what a gateway brings). The driver
 * translates in between (hairpin_nat).
 *
 * vpc_eips_v1 holds every EIP of the VPCs this host takes part in (the
 * southbound's bindings with eip_vpc set, hostd's VPC sessions). */
#ifndef COURIER_HAIRPIN_H
#define COURIER_HAIRPIN_H

#include "pipeline.h"
#include "routes.h"
#include "eip.h"

struct vpc_eip_key {
	__u32 vpc;
	__be32 eip;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct vpc_eip_key);
	__type(value, __be32); /* the port's address */
} vpc_eips_v1 SEC(".maps");

/* hairpin_route: eip_out's first branch, for a port whose own EIP is
 * own: a destination that is an EIP of its VPC is routed to the EIP's
 * port (TTL-1, from the gateway MAC, on to dst_lookup), both ends to be
 * translated once sg_egress passed it. Returns the verdict, or -1 when
 * the destination is no EIP of the VPC. */
static __always_inline int hairpin_route(struct __sk_buff *skb, struct pctx *c, __be32 own)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return -1;
	struct vpc_eip_key k = {.vpc = c->vpc, .eip = ip->daddr};
	__be32 *to = bpf_map_lookup_elem(&vpc_eips_v1, &k);
	if (!to)
		return -1;
	__be32 dst = *to;
	struct route *rt = route_lookup(c->vpc, dst);
	if (!rt)
		return -1;
	c->hit = HIT_EIP;
	c->target = rt->nexthop ? rt->nexthop : dst;
	c->dvni = rt->vni;
	c->snat_from = ip->saddr;
	c->snat_to = own;
	c->dnat_to = dst;
	if (routed_hop(skb, c, eth, ip, c->vpce.gw_mac) < 0)
		return drop_for(c, DROP_MALFORMED);
	return next_stage(c, STAGE_DST_LOOKUP);
}

/* hairpin_nat translates a hairpin once sg_egress passed it: the
 * destination EIP to its port's address, the source to the sender's EIP;
 * the receiver takes it as from outside (no identity). Returns 0, or -1
 * (malformed). A global function: its frame is not on the stages'. */
__attribute__((noinline)) int hairpin_nat(struct __sk_buff *skb, struct pctx *c)
{
	if (!c) /* the verifier checks a global function alone: c is never NULL */
		return -1;
	struct iphdr ip;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)) < 0)
		return -1;
	if (nat_rewrite(skb, ip.daddr, c->dnat_to, 0) < 0 || nat_rewrite(skb, c->snat_from, c->snat_to, 1) < 0)
		return -1;
	c->dnat_to = 0;
	c->snat_to = 0;
	c->gbp = 0;
	return 0;
}

#endif
