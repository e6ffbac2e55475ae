/* STAGE_EIP_OUT: a packet ip_route found no route for. To an EIP of its
 * own VPC it is a hairpin, routed as VM to VM (hairpin.h), from a port
 * with an EIP or without. Else, from a port with
 * an EIP it goes to one of the EIP network's gateways, chosen by flow
 * hash, TTL-1 and from the VPC's gateway MAC; its source becomes the EIP
 * when the driver sends it, after sg_egress passed it (which tracks the
 * connection by the port's own address). From a port translated by its
 * VPC's SNAT (snat_ports_v1) it goes the same way, its source becoming
 * an address and port of the port's blocks (nat_snat.h). From a port
 * whose EIP is physical it leaves from this host's underlay NIC, its
 * source becoming the EIP likewise (phys.h). Else the VM is told there
 * is no route. */
#ifndef COURIER_STAGE_EIP_OUT_H
#define COURIER_STAGE_EIP_OUT_H

#include "pipeline.h"
#include "eip.h"
#include "snat.h"
#include "phys.h"
#include "hairpin.h"

__attribute__((noinline)) int stage_eip_out(struct __sk_buff *skb, struct pctx *c)
{
	if (!c) /* the verifier checks a global function alone: c is never NULL */
		return V_DROP;
	__u32 ifindex = c->ifindex;
	struct eip_port *p = bpf_map_lookup_elem(&eip_ports_v1, &ifindex);
	__be32 *ph = NULL;
	if (!p && vpc_of(c))
		ph = bpf_map_lookup_elem(&phys_ports_v1, &ifindex);
	__be32 own = p ? p->eip : ph ? *ph : 0;
	if (vpc_of(c)) {
		int v = hairpin_route(skb, c, own);
		if (v >= 0)
			return v;
	}
	if (ph)
		return phys_route(skb, c, *ph);
	struct snat_port *s = NULL;
	if (!p && vpc_of(c) && (c->vx.vpce.flags & VPC_F_SNAT_OUT))
		s = bpf_map_lookup_elem(&snat_ports_v1, &ifindex);
	if ((!p && !s) || !vpc_of(c)) {
		c->reason = DROP_NO_ROUTE;
		return next_stage(c, STAGE_ICMP_ERR);
	}
	__be32 eip = 0;
	__u32 net;
	if (p) {
		c->hit = HIT_EIP;
		c->target = eip = p->eip;
		net = p->net;
	} else {
		c->hit = HIT_SNAT;
		c->snat = SNAT_OUT;
		net = s->net;
	}
	__u32 gw = pick_gateway(net, bpf_get_hash_recalc(skb));
	if (!gw)
		return drop_for(c, DROP_NO_GATEWAY);
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return drop_for(c, DROP_MALFORMED);
	if (eip) {
		c->snat_from = ip->saddr;
		c->snat_to = eip;
	}
	if (routed_hop(skb, c, eth, ip, c->vx.vpce.gw_mac) < 0)
		return drop_for(c, DROP_MALFORMED);
	struct dest d = {.kind = DEST_REMOTE, .vtep = gw, .vni = c->vni};
	c->d = d;
	return V_OUTPUT;
}

#endif
