/* STAGE_TUN_ARP: ARP between hosts. A host delivers a hub's answer to the
 * VM that asked; a hub answers a request from its bindings, and teaches
 * the asker where the address lives. */
#ifndef COURIER_STAGE_TUN_ARP_H
#define COURIER_STAGE_TUN_ARP_H

#include "pipeline.h"
#include "lookup.h"
#include "hubs.h"
#include "teach.h"
#include "stage_arp_rsp.h"

__attribute__((noinline)) int stage_tun_arp(struct __sk_buff *skb, struct pctx *c)
{
	if (!c) /* the verifier checks a global function alone: c is never NULL */
		return V_DROP;
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct arp_eth *arp = data + ETH_HLEN;
	if ((void *)(arp + 1) > data_end)
		return drop_for(c, DROP_MALFORMED);
	__be32 tpa = arp->tpa;
	c->target = tpa;
	struct ep_key k = {.vpc = c->vpc, .ip = tpa};
	if (arp->op == bpf_htons(ARPOP_REPLY)) {
		/* A hub's answer to one of our VMs, in the VM's own vxnet: no
		 * other host answers ARP across the tunnel. */
		struct local_ep *l = bpf_map_lookup_elem(&local_eps_v1, &k);
		if (!l || !(c->vx.flags & VX_F_TUN_ARP_REPLY) || !is_hub_of(c->vpc, c->src))
			return drop_for(c, DROP_ARP_UNANSWERED);
		if (l->vni != c->vni)
			return drop_for(c, DROP_L2_CROSS_VXNET);
		c->hit = HIT_LOCAL_EP;
		local_dest(&c->d, l);
		return V_OUTPUT;
	}
	if (arp->op != bpf_htons(ARPOP_REQUEST) || !cfg_hub || !(c->vx.flags & VX_F_TUN_ARP_ANSWER))
		return drop_for(c, DROP_ARP_UNANSWERED);
	/* A hub answers from its full table. */
	struct dest d = {};
	if (!lookup_dest(c, c->vpc, tpa, &d))
		return hub_miss(skb, c, tpa);
	if (d.vni != c->vni)
		return drop_for(c, DROP_L2_CROSS_VXNET);
	__u32 at = d.kind == DEST_LOCAL ? cfg_local_vtep : d.vtep;
	if (arp_answer(skb, d.mac) < 0)
		return drop_for(c, DROP_MALFORMED);
	c->tflags |= TRF_ANSWER;
	count(STAT_HUB_ARP_REPLY);
	struct dest back = {.kind = DEST_REMOTE, .vtep = c->src, .vni = c->vni};
	mac_copy(back.mac, d.mac);
	c->d = back;
	if (!should_teach(c->src, c->vpc, tpa))
		return V_OUTPUT;
	c->tflags |= TRF_TEACH;
	if (cfg_trace)
		return V_OUTPUT;
	if (clone_to(skb, &back, 0) < 0)
		return drop_for(c, DROP_REDIRECT_FAILED);
	c->tflags |= TRF_CLONE;
	return send_learn(skb, c, c->src, LEARN_OP_LEARN, tpa, d.vni, d.mac, at);
}

#endif
