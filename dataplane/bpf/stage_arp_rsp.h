/* STAGE_ARP_RSP: ARP is answered on the host and never crosses the
 * underlay as a broadcast: the gateway with the VPC's gateway MAC, known
 * addresses of the vxnet from what this host knows, unknown ones by one
 * unicast to a hub (to_hub). Announcements (gratuitous ARP, replies) tell
 * the host which port holds an address and go no further. */
#ifndef COURIER_STAGE_ARP_RSP_H
#define COURIER_STAGE_ARP_RSP_H

#include "pipeline.h"
#include "lookup.h"
#include "events.h"

/* arp_answer turns the request into its reply, in place. */
static __always_inline int arp_answer(struct __sk_buff *skb, const __u8 *mac)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct arp_eth *arp = (void *)(eth + 1);
	if ((void *)(arp + 1) > data_end)
		return -1;
	__u8 req_mac[6];
	__builtin_memcpy(req_mac, arp->sha, 6);
	__be32 req_ip = arp->spa, target = arp->tpa;
	__builtin_memcpy(eth->h_dest, req_mac, 6);
	__builtin_memcpy(eth->h_source, mac, 6);
	arp->op = bpf_htons(ARPOP_REPLY);
	__builtin_memcpy(arp->tha, req_mac, 6);
	arp->tpa = req_ip;
	__builtin_memcpy(arp->sha, mac, 6);
	arp->spa = target;
	return 0;
}

/* arp_reply answers the request with mac, back to the port. */
static __always_inline int arp_reply(struct __sk_buff *skb, struct pctx *c, const __u8 *mac)
{
	if (arp_answer(skb, mac) < 0)
		return drop_for(c, DROP_MALFORMED);
	mac_copy(c->d.mac, mac);
	c->tflags |= TRF_ANSWER;
	count(STAT_ARP_REPLY);
	return V_REPLY;
}

__attribute__((noinline)) int stage_arp_rsp(struct __sk_buff *skb, struct pctx *c)
{
	if (!c) /* the verifier checks a global function alone: c is never NULL */
		return V_DROP;
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct arp_eth *arp = data + ETH_HLEN;
	if ((void *)(arp + 1) > data_end)
		return drop_for(c, DROP_MALFORMED);
	__be32 spa = arp->spa, tpa = arp->tpa;
	__u16 op = bpf_ntohs(arp->op);
	__u32 ifindex = c->ifindex;
	c->target = tpa;
	if (spa != 0 && (spa == tpa || op == ARPOP_REPLY)) {
		if (port_addr(ifindex, spa) & ADDR_F_VIP) {
			report(EV_VIP_ANNOUNCE, ifindex, spa, c->port.vni, c->port.mac);
			c->tflags |= TRF_REPORT;
		}
		count(STAT_ANNOUNCE);
		return V_CONSUMED;
	}
	if (op != ARPOP_REQUEST)
		return drop_for(c, DROP_ARP_UNANSWERED);
	/* A probe for one of the port's own addresses (RFC 5227) must go
	 * unanswered, or the VM would see a conflict. */
	if (port_addr(ifindex, tpa)) {
		c->hit = HIT_PORT_ADDR;
		return V_CONSUMED;
	}
	if ((c->vx.flags & VX_F_ARP_GW) && tpa == c->vx.gw_ip) {
		c->hit = HIT_GATEWAY;
		return arp_reply(skb, c, c->vx.gw_mac);
	}
	if ((tpa & c->vx.mask) != c->vx.net)
		return drop_for(c, DROP_ARP_UNANSWERED);
	struct dest d = {};
	if ((c->vx.flags & VX_F_ARP_PROXY) && lookup_dest(c, c->vpc, tpa, &d)) {
		if (d.vni != c->port.vni)
			return drop_for(c, DROP_L2_CROSS_VXNET);
		return arp_reply(skb, c, d.mac);
	}
	if (c->vx.flags & VX_F_ARP_MISS_HUB) {
		count(STAT_ARP_TO_HUB);
		return next_stage(c, STAGE_TO_HUB);
	}
	return drop_for(c, DROP_ARP_UNANSWERED);
}

#endif
