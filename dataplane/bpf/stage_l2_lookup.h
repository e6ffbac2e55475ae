/* STAGE_L2_LOOKUP: within the vxnet, by destination IP (the MAC a VM
 * uses is whatever this host answered for the IP). A frame for the
 * gateway MAC goes on to routing; the gateway answers pings itself. */
#ifndef COURIER_STAGE_L2_LOOKUP_H
#define COURIER_STAGE_L2_LOOKUP_H

#include "pipeline.h"
#include "lookup.h"
#include "stage_port_sec.h"

/* gw_echo_reply turns an echo request to the gateway into its reply. */
static __always_inline int gw_echo_reply(struct __sk_buff *skb, struct pctx *c)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return drop_for(c, DROP_MALFORMED);
	__u32 off = ETH_HLEN + ip->ihl * 4;
	__u8 *icmp = data + off;
	if (off > 60 + ETH_HLEN || (void *)(icmp + 4) > data_end)
		return drop_for(c, DROP_MALFORMED);
	/* Swap the addresses (the IP checksum does not change), turn the
	 * request (type 8) into a reply (type 0). */
	__u8 vm[6];
	__builtin_memcpy(vm, eth->h_source, 6);
	__builtin_memcpy(eth->h_dest, vm, 6);
	__builtin_memcpy(eth->h_source, c->vx.gw_mac, 6);
	__be32 a = ip->saddr;
	ip->saddr = ip->daddr;
	ip->daddr = a;
	icmp[0] = 0;
	if (bpf_l4_csum_replace(skb, off + 2, bpf_htons(0x0800), 0, 2) < 0)
		return drop_for(c, DROP_MALFORMED);
	c->tflags |= TRF_ANSWER;
	count(STAT_ARP_REPLY);
	return V_REPLY;
}

/* is_ping: an echo request, whole: not a fragment, which would be
 * answered as if it were the whole ping. */
static __always_inline int is_ping(struct iphdr *ip, void *data_end)
{
	if (ip->protocol != IPPROTO_ICMP || (ip->frag_off & bpf_htons(0x3fff)))
		return 0;
	__u8 *icmp = (void *)ip + ip->ihl * 4;
	return (void *)(icmp + 1) <= data_end && icmp[0] == 8;
}

__attribute__((noinline)) int stage_l2_lookup(struct __sk_buff *skb, struct pctx *c)
{
	if (!c) /* the verifier checks a global function alone: c is never NULL */
		return V_DROP;
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return drop_for(c, DROP_MALFORMED);
	__be32 dst = ip->daddr;
	c->target = dst;
	if (is_dhcp_request(c, ip, data_end)) /* broadcast or to the gateway */
		return next_stage(c, STAGE_DHCP);
	if (mac_eq(eth->h_dest, c->vx.gw_mac)) {
		c->hit = HIT_GATEWAY;
		if ((c->vx.flags & VX_F_GW_PING) && dst == c->vx.gw_ip && is_ping(ip, data_end))
			return gw_echo_reply(skb, c);
		if (!(c->vx.flags & VX_F_L2_ROUTE))
			return drop_for(c, DROP_L2_UNKNOWN_DST);
		return next_stage(c, STAGE_IP_ROUTE);
	}
	if ((dst & c->vx.mask) != c->vx.net)
		return drop_for(c, DROP_L2_UNKNOWN_DST);
	if ((c->vx.flags & VX_F_L2_OUTPUT) && lookup_dest(c, c->vpc, dst, &c->d)) {
		if (c->d.vni != c->port.vni)
			return drop_for(c, DROP_L2_CROSS_VXNET);
		return V_OUTPUT;
	}
	c->d.kind = 0;
	if (c->vx.flags & VX_F_L2_MISS_HUB)
		return next_stage(c, STAGE_TO_HUB);
	return drop_for(c, DROP_L2_UNKNOWN_DST);
}

#endif
