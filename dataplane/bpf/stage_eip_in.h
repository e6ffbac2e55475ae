/* STAGE_EIP_IN: what a gateway of the EIP's network tunnelled for the
 * EIP of a local port of the VPC: its destination becomes the port's
 * address, statelessly (eip.h), and tun_lookup delivers it; the VM sees
 * the client's own address. What a gateway brought back for a connection
 * a local port opened through SNAT goes back to the port's address and
 * port (nat_snat.h). Anything else goes on to tun_lookup as it came. */
#ifndef COURIER_STAGE_EIP_IN_H
#define COURIER_STAGE_EIP_IN_H

#include "pipeline.h"
#include "eip.h"

__attribute__((noinline)) int stage_eip_in(struct __sk_buff *skb, struct pctx *c)
{
	if (!c) /* the verifier checks a global function alone: c is never NULL */
		return V_DROP;
	if (!vpc_of(c) || !(c->vx.vpce.flags & (VPC_F_EIP_IN | VPC_F_SNAT_IN)))
		return next_stage(c, STAGE_TUN_LOOKUP);
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr *ip = data + ETH_HLEN;
	if ((void *)(ip + 1) > data_end)
		return drop_for(c, DROP_MALFORMED);
	__be32 daddr = ip->daddr;
	/* Only a gateway of this host's networks brings packets for their
	 * addresses: from any other host the address is not translated (and
	 * the packet, for no local address, goes no further). */
	if (!is_gateway(c->src))
		return next_stage(c, STAGE_TUN_LOOKUP);
	struct eip_local *e = NULL;
	if (c->vx.vpce.flags & VPC_F_EIP_IN)
		e = bpf_map_lookup_elem(&eip_local_v1, &daddr);
	if (!e || e->vpc != c->vpc) {
		if (c->vx.vpce.flags & VPC_F_SNAT_IN) {
			c->snat = SNAT_IN; /* the driver translates it back, if a connection of a local port */
			c->hit = HIT_SNAT;
		}
		return next_stage(c, STAGE_TUN_LOOKUP);
	}
	__be32 to = e->addr;
	if (nat_rewrite(skb, daddr, to, 0) < 0)
		return drop_for(c, DROP_MALFORMED);
	c->hit = HIT_EIP;
	c->target = to;
	return next_stage(c, STAGE_TUN_LOOKUP);
}

#endif
