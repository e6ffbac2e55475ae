/* STAGE_TUN_ADMIT: a packet from another host, decapsulated by the VXLAN
 * device: from a chassis's VTEP to this host's (tunnel.h), of a VNI this
 * host serves, carrying IPv4 (through eip_in, which translates what
 * gateways send for EIPs), ARP or a learn message, each to its stage. */
#ifndef COURIER_STAGE_TUN_ADMIT_H
#define COURIER_STAGE_TUN_ADMIT_H

#include "pipeline.h"

__attribute__((noinline)) int stage_tun_admit(struct __sk_buff *skb, struct pctx *c)
{
	if (!c) /* the verifier checks a global function alone: c is never NULL */
		return V_DROP;
	__u32 src = 0, vni = 0, gbp = 0;
	int got = get_tunnel(skb, &src, &vni, &gbp);
	if (got == -2 || (got == 0 && !vtep_known(src)))
		return drop_for(c, DROP_UNKNOWN_VTEP);
	if (got < 0)
		return drop_for(c, DROP_MALFORMED);
	c->src = src;
	c->gbp = gbp; /* a hub sends it on as it came */
	c->vni = vni;
	c->dvni = vni;
	struct vxnet *vx = bpf_map_lookup_elem(&vxnets_v2, &vni);
	if (!vx) {
		/* A gateway serves no vxnet, but answers hosts' probes. */
		void *d0 = (void *)(long)skb->data;
		struct ethhdr *e0 = d0;
		if ((void *)(e0 + 1) <= (void *)(long)skb->data_end && e0->h_proto == bpf_htons(ETH_P_COURIER_LEARN) && gw_enabled())
			return next_stage(c, STAGE_TUN_LEARN);
		return drop_for(c, DROP_UNKNOWN_VNI);
	}
	c->vx = *vx;
	c->vpc = vx->vpc;
	c->hit = HIT_VXNET;
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return drop_for(c, DROP_MALFORMED);
	__be16 proto = eth->h_proto;
	if (proto == bpf_htons(ETH_P_COURIER_LEARN))
		return next_stage(c, STAGE_TUN_LEARN);
	if (proto == bpf_htons(ETH_P_ARP))
		return next_stage(c, STAGE_TUN_ARP);
	if (proto == bpf_htons(ETH_P_IP))
		return next_stage(c, STAGE_EIP_IN);
	if (proto == bpf_htons(ETH_P_IPV6))
		return drop_for(c, DROP_IPV6);
	return drop_for(c, DROP_UNSUPPORTED_PROTO);
}

#endif
