/* A gateway of external networks, stateless. Inbound (gw_uplink_ingress,
 * on the uplink NIC): a packet for an EIP, or for a port of a SNAT block,
 * goes, unchanged but for its Ethernet addresses, through the VXLAN
 * device to the host of the EIP's or block's port (gw_eips_v1,
 * gw_snat_v1), in the port's vxnet; anything else is the gateway's own.
 * Outbound (tunnel_ingress, before the pipeline): what a host sends from
 * one of its ports' EIPs or blocks goes up the uplink to the network's next
 * hop (the southbound's External_Network.next_hop, else the gateway's
 * --gateway-next-hop, else wherever its routes say), the kernel resolving
 * the next hop's MAC (bpf_redirect_neigh). No connection is remembered: any
 * gateway can take any packet, so one dying loses no connection. What
 * comes in longer than the overlay's MTU is cut into fragments or answered
 * with fragmentation needed, as a router between the two would (mtu.h). */
#ifndef COURIER_GATEWAY_H
#define COURIER_GATEWAY_H

#include <linux/if_packet.h>

#include "pipeline.h"
#include "eip.h"
#include "nat_snat.h"
#include "mtu.h"

/* gw_from_tunnel: on a gateway, a packet a host tunnelled from an EIP of
 * one of its ports, or from a SNAT block of one, goes upstream. Returns
 * the verdict, or -1 when the packet is not one (the DVR pipeline takes
 * it). A global function: its frame is not on the pipeline's stack. */
__attribute__((noinline)) int gw_from_tunnel(struct __sk_buff *skb)
{
	__u32 zero = 0;
	struct gw_cfg *g = bpf_map_lookup_elem(&gw_cfg_v1, &zero);
	if (!g || !g->uplink)
		return -1;
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return -1;
	__be32 saddr = ip->saddr;
	struct gw_eip *e = bpf_map_lookup_elem(&gw_eips_v1, &saddr);
	if (!e)
		e = gw_snat_out(skb);
	if (!e)
		return -1;
	__u32 src = 0, vni = 0, gbp = 0;
	int got = get_tunnel(skb, &src, &vni, &gbp);
	if (got == -2)
		return -1; /* not sent to this VTEP: tun_admit drops it (unknown_vtep) */
	if (got < 0 || src != e->vtep || vni != e->vni) {
		/* an EIP or block sent from a host its port is not on, or
		 * from another vxnet than its port's */
		count_drop(DROP_GW_SPOOF);
		return TC_ACT_SHOT;
	}
	count(STAT_GW_UP);
	test_record(g->uplink, 0);
	__be32 via = e->nexthop ? e->nexthop : g->nexthop;
	if (via) {
		struct bpf_redir_neigh nh = {.nh_family = 2 /* AF_INET */, .ipv4_nh = via};
		return bpf_redirect_neigh(g->uplink, &nh, sizeof(nh), 0);
	}
	return bpf_redirect_neigh(g->uplink, NULL, 0, 0);
}

/* gw_tunnel_down tunnels what came from upstream, unchanged but for its
 * Ethernet addresses, to the host of e's port. */
static __always_inline int gw_tunnel_down(struct __sk_buff *skb, struct ethhdr *eth, struct gw_eip *e)
{
	mac_copy(eth->h_dest, e->mac);
	mac_copy(eth->h_source, e->gw_mac);
	count(STAT_GW_DOWN);
	/* The internet's identity, without the policy applied bit: a gateway
	 * decides nothing, the port's host checks its ingress rules (a rule
	 * naming a group never admits it, one naming a prefix may). */
	return to_vxlan(skb, e->vtep, e->vni, SG_ID_INTERNET);
}

/* gw_down_too_big: what came for e longer than the overlay's MTU goes
 * down as its first fragment, or is answered with fragmentation needed,
 * or dropped (mtu.h). */
static __always_inline int gw_down_too_big(struct __sk_buff *skb, struct gw_cfg *g, struct gw_eip *e, int snat)
{
	struct gw_eip to = *e; /* the lookup's entry may go while the packet is cut */
	struct iphdr *ip = (void *)(long)skb->data + ETH_HLEN;
	if ((void *)(ip + 1) > (void *)(long)skb->data_end)
		return TC_ACT_SHOT;
	/* A SNAT block's later fragments find their host by the first. */
	if (snat && !later_frag(ip))
		gw_frag_note(ip, FRAG_IN, &to);
	int v = mtu_exceeded(skb, g->mtu, g->addr ? g->addr : ip->daddr);
	if (v)
		return v;
	struct ethhdr *eth = (void *)(long)skb->data;
	if ((void *)(eth + 1) > (void *)(long)skb->data_end)
		return TC_ACT_SHOT;
	return gw_tunnel_down(skb, eth, &to);
}

SEC("tc")
int gw_uplink_ingress(struct __sk_buff *skb)
{
	/* Only frames addressed to this uplink, as the kernel forwards only
	 * PACKET_HOST (ip_forward): a frame for another MAC (a switch
	 * flooding what was meant for a dead gateway, a capture's
	 * promiscuous mode) is not this gateway's to carry, or two gateways
	 * would deliver it. The stack drops it. */
	if (skb->pkt_type != PACKET_HOST)
		return TC_ACT_OK;
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	__u32 zero = 0;
	struct gw_cfg *g = bpf_map_lookup_elem(&gw_cfg_v1, &zero);
	if (!g)
		return TC_ACT_OK;
	if (skb->mark == FRAG_REST_MARK) { /* a datagram's rest, come around (mtu.h) */
		if (frag_rest(skb, g->mtu) < 0) {
			count_drop(DROP_MTU_EXCEEDED);
			return TC_ACT_SHOT;
		}
		data = (void *)(long)skb->data;
		data_end = (void *)(long)skb->data_end;
		eth = data;
		ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > data_end)
			return TC_ACT_SHOT;
	}
	__be32 daddr = ip->daddr;
	struct gw_eip *e = bpf_map_lookup_elem(&gw_eips_v1, &daddr);
	int snat = !e;
	if (!e)
		e = gw_snat_in(skb);
	if (!e) {
		if (bpf_map_lookup_elem(&gw_snat_addrs_v1, &daddr)) {
			count_drop(DROP_GW_NO_BLOCK);
			return TC_ACT_SHOT;
		}
		return TC_ACT_OK; /* the gateway's own traffic */
	}
	if (g->mtu && too_big(skb, g->mtu, bpf_htons(ETH_P_IP)))
		return gw_down_too_big(skb, g, e, snat);
	return gw_tunnel_down(skb, eth, e);
}

#endif