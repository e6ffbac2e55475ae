// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Courier's distributed virtual router.
 *
 * port_ingress runs on the host side of every VM's veth (tcx ingress: the
 * VM's transmissions) and decides every hop there, in the sending host's
 * kernel: port security, ARP answered locally, L2 within the vxnet, one
 * hop of L3 between the VPC's vxnets, then local delivery with
 * bpf_redirect_peer or one encapsulation through the collect-metadata
 * VXLAN device straight to the destination's host. An unknown destination
 * goes to one of the VPC's hubs, within the port's budget for that, and
 * not while a hub's word that it does not exist is fresh.
 *
 * tunnel_ingress runs on the VXLAN device: it delivers to local ports, and
 * on a hub forwards what is not local, answers encapsulated ARP and sends
 * learn messages (learn.h) so that senders go direct from then on, and
 * tells senders of destinations nobody has that they are unknown.
 *
 * Stages are numbered in stages.h (from the pipeline package); the logical
 * flows of each stage are compiled by hostd into the flags of vxnets.h.
 */
#include "common.h"
#include "config.h"
#include "stats.h"
#include "budget.h"
#include "ports.h"
#include "endpoints.h"
#include "vxnets.h"
#include "routes.h"
#include "hubs.h"
#include "learn.h"
#include "events.h"
#include "tunnel.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define DEST_LOCAL 1
#define DEST_REMOTE 2

/* A resolved destination. */
struct dest {
	__u32 kind;
	__u32 ifindex; /* DEST_LOCAL */
	__u32 vtep;    /* DEST_REMOTE */
	__u32 vni;
	__u8 mac[6];
	__u16 pad;
};

/* Tests only: where the last packet was redirected. */
struct redirect_rec {
	__u32 ifindex;
	__u32 peer;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct redirect_rec);
} redirect_out_v1 SEC(".maps");

static __always_inline int to_peer(__u32 ifindex)
{
	if (cfg_test_tunnel) {
		__u32 zero = 0;
		struct redirect_rec r = {.ifindex = ifindex, .peer = 1};
		bpf_map_update_elem(&redirect_out_v1, &zero, &r, BPF_ANY);
	}
	return bpf_redirect_peer(ifindex, 0);
}

static __always_inline int to_vxlan(struct __sk_buff *skb, __u32 vtep, __u32 vni)
{
	if (set_tunnel(skb, vtep, vni) < 0)
		return drop(DROP_REDIRECT_FAILED);
	if (cfg_test_tunnel) {
		__u32 zero = 0;
		struct redirect_rec r = {.ifindex = cfg_vxlan_ifindex};
		bpf_map_update_elem(&redirect_out_v1, &zero, &r, BPF_ANY);
	}
	return bpf_redirect(cfg_vxlan_ifindex, 0);
}

/* lookup_dest finds where (vpc, ip) lives: a local port, a learned entry
 * that is still fresh, or (on a hub) a binding. It returns 0 when the
 * destination must be resolved by a hub. */
static __always_inline int lookup_dest(__u32 vpc, __be32 ip, struct dest *d)
{
	struct ep_key k = {.vpc = vpc, .ip = ip};
	struct local_ep *l = bpf_map_lookup_elem(&local_eps_v1, &k);
	if (l) {
		d->kind = DEST_LOCAL;
		d->ifindex = l->ifindex;
		d->vni = l->vni;
		__builtin_memcpy(d->mac, l->mac, 6);
		return 1;
	}
	__u64 now = bpf_ktime_get_ns();
	struct cached_ep *c = bpf_map_lookup_elem(&cache_v1, &k);
	if (c) {
		if (now - c->learned_ns < cfg_refresh_ns) {
			c->used_ns = now;
			__sync_fetch_and_add(&c->hits, 1);
			count(STAT_CACHE_HIT);
			d->kind = DEST_REMOTE;
			d->vtep = c->vtep;
			d->vni = c->vni;
			__builtin_memcpy(d->mac, c->mac, 6);
			return 1;
		}
		/* Past its refresh interval: this packet goes through a hub,
		 * which answers with a fresh learn message. */
		count(STAT_CACHE_STALE);
	}
	if (cfg_hub) {
		struct remote_ep *r = bpf_map_lookup_elem(&hub_eps_v1, &k);
		if (r) {
			d->kind = DEST_REMOTE;
			d->vtep = r->vtep;
			d->vni = r->vni;
			__builtin_memcpy(d->mac, r->mac, 6);
			return 1;
		}
	}
	count(STAT_CACHE_MISS);
	bpf_map_update_elem(&miss_ts_v1, &k, &now, BPF_NOEXIST);
	return 0;
}

static __always_inline int output(struct __sk_buff *skb, struct dest *d)
{
	if (d->kind == DEST_LOCAL) {
		count(STAT_LOCAL_TX);
		return to_peer(d->ifindex);
	}
	if (d->vtep == cfg_local_vtep)
		return drop(DROP_LOOP);
	count(STAT_REMOTE_TX);
	return to_vxlan(skb, d->vtep, d->vni);
}

static __always_inline int to_hub(struct __sk_buff *skb, __u32 vpc, __u32 vni)
{
	__u32 hub = pick_hub(vpc, bpf_get_hash_recalc(skb));
	if (!hub)
		return drop(DROP_NO_HUB);
	if (hub == cfg_local_vtep)
		return drop(DROP_HUB_MISS); /* we are that hub, and do not know */
	count(STAT_HUB_TX);
	return to_vxlan(skb, hub, vni);
}

/* port_to_hub sends a VM's packet for dst, which this host does not know,
 * to a hub: unless a hub said lately that nobody has dst, and within the
 * port's budget for such packets, so that one VM cannot flood the hubs
 * that every VPC shares. */
static __always_inline int port_to_hub(struct __sk_buff *skb, __u32 vpc, __u32 vni, __be32 dst, __u32 ifindex)
{
	if (known_unknown(vpc, dst))
		return drop(DROP_DST_UNKNOWN);
	if (!budget_take(ifindex, BUDGET_HUB, cfg_hub_cost_ns, cfg_hub_burst_ns))
		return drop(DROP_HUB_BUDGET);
	return to_hub(skb, vpc, vni);
}

/* usable_addr: a host address of the vxnet other than its gateway, the
 * only addresses a port with unknown addresses may use (or announce). */
static __always_inline int usable_addr(struct vxnet *vx, __be32 a)
{
	return (a & vx->mask) == vx->net && a != vx->net && a != (vx->net | ~vx->mask) && a != vx->gw_ip;
}

/* unknown_src checks a source address of a port with unknown addresses:
 * it must be usable in the port's vxnet and not held by another port of
 * this host. An address the port holds already (southd accepted it) needs
 * no report; any other is reported to hostd, which, with southd, decides
 * whether the port may hold it. Returns 0 or a drop reason. */
static __always_inline int unknown_src(struct port *port, struct vxnet *vx, __u32 ifindex, __be32 src)
{
	if (!usable_addr(vx, src))
		return DROP_SPOOF_IP;
	struct ep_key k = {.vpc = port->vpc, .ip = src};
	struct local_ep *l = bpf_map_lookup_elem(&local_eps_v1, &k);
	if (l)
		return l->ifindex == ifindex ? 0 : DROP_SPOOF_IP;
	report(EV_ADDR_SEEN, ifindex, src, port->vni, port->mac);
	return 0;
}

/* STAGE_ARP_RSP: turn the request into its reply, in place. */
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

static __always_inline int port_arp(struct __sk_buff *skb, struct port *port, struct vxnet *vx, __u32 ifindex)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct arp_eth *arp = (void *)(eth + 1);
	if ((void *)(arp + 1) > data_end)
		return drop(DROP_MALFORMED);
	if (arp->htype != bpf_htons(1) || arp->ptype != bpf_htons(ETH_P_IP) || arp->hlen != 6 || arp->plen != 4)
		return drop(DROP_MALFORMED);
	__be32 spa = arp->spa, tpa = arp->tpa;
	__u16 op = bpf_ntohs(arp->op);
	__u32 af = port_addr(ifindex, spa);

	/* STAGE_PORT_SEC, for ARP: the sender must be the port. */
	if ((port->flags & PORT_F_SECURITY) && (vx->flags & VX_F_PSEC_IP)) {
		__u8 sha[6];
		__builtin_memcpy(sha, arp->sha, 6);
		if (!mac_eq(sha, port->mac))
			return drop(DROP_SPOOF_MAC);
		if (spa != 0 && !af && !(port->flags & PORT_F_UNKNOWN))
			return drop(DROP_SPOOF_IP);
	}
	/* A port with unknown addresses may use only its vxnet's; each new
	 * one is reported (unknown_src). */
	if (spa != 0 && !af && (port->flags & PORT_F_UNKNOWN)) {
		int why = unknown_src(port, vx, ifindex, spa);
		if (why)
			return drop(why);
	}
	/* Announcements (gratuitous ARP, or replies): they tell the host
	 * which port holds an address, and never leave it. */
	if (spa != 0 && (spa == tpa || op == ARPOP_REPLY)) {
		if (af & ADDR_F_VIP)
			report(EV_VIP_ANNOUNCE, ifindex, spa, port->vni, port->mac);
		count(STAT_ANNOUNCE);
		return TC_ACT_SHOT;
	}
	if (op != ARPOP_REQUEST)
		return drop(DROP_ARP_UNANSWERED);
	/* A probe for one of the port's own addresses (RFC 5227) must go
	 * unanswered, or the VM would see a conflict. */
	if (port_addr(ifindex, tpa))
		return TC_ACT_SHOT;

	/* STAGE_ARP_RSP */
	if ((vx->flags & VX_F_ARP_GW) && tpa == vx->gw_ip) {
		if (arp_answer(skb, vx->gw_mac) < 0)
			return drop(DROP_MALFORMED);
		count(STAT_ARP_REPLY);
		return to_peer(ifindex);
	}
	if ((tpa & vx->mask) != vx->net)
		return drop(DROP_ARP_UNANSWERED);
	struct dest d = {};
	if ((vx->flags & VX_F_ARP_PROXY) && lookup_dest(vx->vpc, tpa, &d)) {
		if (d.vni != port->vni)
			return drop(DROP_L2_CROSS_VXNET);
		if (arp_answer(skb, d.mac) < 0)
			return drop(DROP_MALFORMED);
		count(STAT_ARP_REPLY);
		return to_peer(ifindex);
	}
	if (vx->flags & VX_F_ARP_MISS_HUB) {
		count(STAT_ARP_TO_HUB);
		return port_to_hub(skb, vx->vpc, port->vni, tpa, ifindex);
	}
	return drop(DROP_ARP_UNANSWERED);
}

/* STAGE_IP_ROUTE then STAGE_DST_LOOKUP, for a packet from port ifindex:
 * TTL-1, the gateway MAC as source, then the destination's host. (A hub
 * completing a sender's route only resolves it: tunnel_hub_route.) */
static __always_inline int route_ipv4(struct __sk_buff *skb, __u32 vpc_id, __u32 ifindex)
{
	struct vpc *vpc = bpf_map_lookup_elem(&vpcs_v1, &vpc_id);
	if (!vpc)
		return drop(DROP_NO_ROUTE);
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return drop(DROP_MALFORMED);
	if ((vpc->flags & VPC_F_TTL) && ip->ttl <= 1)
		return drop(DROP_TTL_EXCEEDED);
	struct route *rt = route_lookup(vpc_id, ip->daddr);
	if (!rt)
		return drop(DROP_NO_ROUTE);
	__be32 target = rt->nexthop ? rt->nexthop : ip->daddr;
	__u32 dvni = rt->vni;
	/* One logical hop: TTL-1, and the distributed gateway's MAC as the
	 * source, the same on every host. */
	__be16 old = *(__be16 *)&ip->ttl;
	ip->ttl--;
	__be16 new = *(__be16 *)&ip->ttl;
	__builtin_memcpy(eth->h_source, vpc->gw_mac, 6);
	if (bpf_l3_csum_replace(skb, ETH_HLEN + __builtin_offsetof(struct iphdr, check), old, new, 2) < 0)
		return drop(DROP_MALFORMED);
	struct dest d = {};
	int known = lookup_dest(vpc_id, target, &d);
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	eth = data;
	if ((void *)(eth + 1) > data_end)
		return drop(DROP_MALFORMED);
	if (known && ((d.kind == DEST_LOCAL && (vpc->flags & VPC_F_DST_LOCAL)) ||
		      (d.kind == DEST_REMOTE && (vpc->flags & VPC_F_DST_KNOWN)))) {
		__builtin_memcpy(eth->h_dest, d.mac, 6);
		return output(skb, &d);
	}
	if (vpc->flags & VPC_F_DST_MISS_HUB) {
		/* The hub fills in the destination MAC: until then the frame
		 * is addressed to the gateway, which marks it incomplete. */
		__builtin_memcpy(eth->h_dest, vpc->gw_mac, 6);
		return port_to_hub(skb, vpc_id, dvni, target, ifindex);
	}
	return drop(DROP_NO_HUB);
}

/* STAGE_L2_LOOKUP: the distributed gateway answers pings to its address,
 * on the host, like every other gateway duty. */
static __always_inline int gw_echo_reply(struct __sk_buff *skb, struct vxnet *vx, __u32 ifindex)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return drop(DROP_MALFORMED);
	__u32 off = ETH_HLEN + ip->ihl * 4;
	__u8 *icmp = data + off;
	if (off > 60 + ETH_HLEN || (void *)(icmp + 4) > data_end)
		return drop(DROP_MALFORMED);
	/* Swap the addresses (the IP checksum does not change), turn the
	 * request (type 8) into a reply (type 0). */
	__u8 vm[6];
	__builtin_memcpy(vm, eth->h_source, 6);
	__builtin_memcpy(eth->h_dest, vm, 6);
	__builtin_memcpy(eth->h_source, vx->gw_mac, 6);
	__be32 a = ip->saddr;
	ip->saddr = ip->daddr;
	ip->daddr = a;
	icmp[0] = 0;
	if (bpf_l4_csum_replace(skb, off + 2, bpf_htons(0x0800), 0, 2) < 0)
		return drop(DROP_MALFORMED);
	count(STAT_ARP_REPLY);
	return to_peer(ifindex);
}

static __always_inline int port_ipv4(struct __sk_buff *skb, struct port *port, struct vxnet *vx, __u32 ifindex)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return drop(DROP_MALFORMED);
	if (ip->version != 4 || ip->ihl < 5)
		return drop(DROP_MALFORMED);
	__be32 src = ip->saddr, dst = ip->daddr;

	/* STAGE_PORT_SEC, for IPv4 */
	if (!port_addr(ifindex, src)) {
		if (port->flags & PORT_F_UNKNOWN) {
			int why = src ? unknown_src(port, vx, ifindex, src) : 0;
			if (why)
				return drop(why);
		} else if ((port->flags & PORT_F_SECURITY) && (vx->flags & VX_F_PSEC_IP)) {
			return drop(DROP_SPOOF_IP);
		}
	}

	/* STAGE_L2_LOOKUP */
	if (mac_eq(eth->h_dest, vx->gw_mac)) {
		if ((vx->flags & VX_F_GW_PING) && dst == vx->gw_ip && ip->protocol == IPPROTO_ICMP) {
			__u8 *icmp = (void *)ip + ip->ihl * 4;
			if ((void *)(icmp + 1) <= data_end && icmp[0] == 8)
				return gw_echo_reply(skb, vx, ifindex);
		}
		if (!(vx->flags & VX_F_L2_ROUTE))
			return drop(DROP_L2_UNKNOWN_DST);
		return route_ipv4(skb, vx->vpc, ifindex);
	}
	if ((dst & vx->mask) != vx->net)
		return drop(DROP_L2_UNKNOWN_DST);
	struct dest d = {};
	if ((vx->flags & VX_F_L2_OUTPUT) && lookup_dest(vx->vpc, dst, &d)) {
		if (d.vni != port->vni)
			return drop(DROP_L2_CROSS_VXNET);
		return output(skb, &d);
	}
	if (vx->flags & VX_F_L2_MISS_HUB)
		return port_to_hub(skb, vx->vpc, port->vni, dst, ifindex);
	return drop(DROP_L2_UNKNOWN_DST);
}

SEC("tc")
int port_ingress(struct __sk_buff *skb)
{
	count(STAT_PORT_RX);
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return drop(DROP_MALFORMED);
	__u32 ifindex = skb->ifindex;
	struct port *port = bpf_map_lookup_elem(&ports_v1, &ifindex);
	if (!port)
		return drop(DROP_NO_PORT);
	__be16 proto = eth->h_proto;
	if (skb->vlan_present || proto == bpf_htons(0x8100) || proto == bpf_htons(0x88A8))
		return drop(DROP_VLAN);
	if (skb->gso_size == 0 && skb->len > (__u32)port->mtu + ETH_HLEN)
		return drop(DROP_OVERSIZE);
	__u32 vni = port->vni;
	struct vxnet *vx = bpf_map_lookup_elem(&vxnets_v1, &vni);
	if (!vx)
		return drop(DROP_UNKNOWN_VNI);

	/* STAGE_PORT_SEC: the source MAC first, for every protocol. */
	if ((port->flags & PORT_F_SECURITY) && (vx->flags & VX_F_PSEC_MAC) && !mac_eq(eth->h_source, port->mac))
		return drop(DROP_SPOOF_MAC);
	if (proto == bpf_htons(ETH_P_ARP))
		return port_arp(skb, port, vx, ifindex);
	if (proto == bpf_htons(ETH_P_IP))
		return port_ipv4(skb, port, vx, ifindex);
	if (proto == bpf_htons(ETH_P_IPV6))
		return drop(DROP_IPV6);
	return drop(DROP_UNSUPPORTED_PROTO);
}

/* ---- the VXLAN side ---- */

/* should_teach: has this hub not told sender about (vpc, ip) lately? */
static __always_inline int should_teach(__u32 sender, __u32 vpc, __be32 ip)
{
	struct learn_rl_key k = {.sender = sender, .vpc = vpc, .ip = ip};
	__u64 *last = bpf_map_lookup_elem(&learn_rl_v1, &k);
	return !last || bpf_ktime_get_ns() - *last >= cfg_learn_interval_ns;
}

/* send_learn turns the packet into a learn (or forget) message to vtep
 * and sends it. The packet itself must already have been sent on (by
 * bpf_clone_redirect). */
static __always_inline int send_learn(struct __sk_buff *skb, __u32 to, __u32 vpc, __u8 op, __be32 ip,
				      __u32 vni, const __u8 *mac, __u32 at)
{
	__u32 len = ETH_HLEN + sizeof(struct learn_msg);
	if (bpf_skb_change_tail(skb, len, 0) < 0 || bpf_skb_pull_data(skb, len) < 0) {
		count(STAT_LEARN_SKIPPED);
		return TC_ACT_SHOT;
	}
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct learn_msg *m = (void *)(eth + 1);
	if ((void *)(m + 1) > data_end) {
		count(STAT_LEARN_SKIPPED);
		return TC_ACT_SHOT;
	}
	__builtin_memset(eth->h_dest, 0, 6);
	__builtin_memset(eth->h_source, 0, 6);
	eth->h_proto = bpf_htons(ETH_P_COURIER_LEARN);
	m->version = LEARN_VERSION;
	m->op = op;
	m->reserved = 0;
	m->vni = bpf_htonl(vni);
	m->ip = ip;
	if (mac)
		__builtin_memcpy(m->mac, mac, 6);
	else
		__builtin_memset(m->mac, 0, 6);
	m->reserved2 = 0;
	m->vtep = bpf_htonl(at);
	if (op == LEARN_OP_LEARN || op == LEARN_OP_UNKNOWN) {
		struct learn_rl_key k = {.sender = to, .vpc = vpc, .ip = ip};
		__u64 now = bpf_ktime_get_ns();
		bpf_map_update_elem(&learn_rl_v1, &k, &now, BPF_ANY);
	}
	if (op == LEARN_OP_LEARN)
		count(STAT_LEARN_SENT);
	else if (op == LEARN_OP_FORGET)
		count(STAT_FORGET_SENT);
	else if (op == LEARN_OP_UNKNOWN)
		count(STAT_UNKNOWN_SENT);
	else if (op == LEARN_OP_PROBE_REPLY)
		count(STAT_PROBE_ANSWERED);
	return to_vxlan(skb, to, vni);
}

/* hub_forward sends the packet on to its destination: another host, or a
 * port of the hub itself. When the sender has not been taught lately, the
 * packet goes as a clone and the original becomes the learn message. */
static __always_inline int hub_forward(struct __sk_buff *skb, __u32 sender, __u32 vpc, __be32 target, struct dest *d)
{
	__u32 at = cfg_local_vtep;
	if (d->kind == DEST_LOCAL) {
		count(STAT_LOCAL_TX);
	} else {
		if (d->vtep == sender || d->vtep == cfg_local_vtep)
			return drop(DROP_LOOP);
		count(STAT_HUB_FORWARD);
		at = d->vtep;
	}
	if (!should_teach(sender, vpc, target))
		return d->kind == DEST_LOCAL ? to_peer(d->ifindex) : to_vxlan(skb, d->vtep, d->vni);
	if (d->kind == DEST_LOCAL) {
		/* A clone cannot be redirected to a peer; out of the host side
		 * of the VM's veth reaches the VM just the same. */
		if (bpf_clone_redirect(skb, d->ifindex, 0) < 0)
			return drop(DROP_REDIRECT_FAILED);
	} else if (set_tunnel(skb, d->vtep, d->vni) < 0 || bpf_clone_redirect(skb, cfg_vxlan_ifindex, 0) < 0) {
		return drop(DROP_REDIRECT_FAILED);
	}
	return send_learn(skb, sender, vpc, LEARN_OP_LEARN, target, d->vni, d->mac, at);
}

/* hub_miss: a hub does not know the destination either. The packet is
 * dropped (counted as hub_miss) and, unless the sender was told lately,
 * becomes an unknown message, after which the sender drops its packets to
 * that address for a moment instead of sending them here. */
static __always_inline int hub_miss(struct __sk_buff *skb, __u32 sender, __u32 vpc, __be32 ip, __u32 vni)
{
	drop(DROP_HUB_MISS);
	if (!should_teach(sender, vpc, ip))
		return TC_ACT_SHOT;
	return send_learn(skb, sender, vpc, LEARN_OP_UNKNOWN, ip, vni, 0, 0);
}

static __always_inline int learn_install(struct learn_msg *m, __u32 vpc, __u32 src)
{
	struct ep_key k = {.vpc = vpc, .ip = m->ip};
	if (!is_hub_of(vpc, src))
		return drop(DROP_LEARN_REJECTED);
	if (bpf_map_lookup_elem(&local_eps_v1, &k))
		return TC_ACT_SHOT; /* we hold it ourselves */
	__u64 now = bpf_ktime_get_ns();
	struct cached_ep e = {.vtep = bpf_ntohl(m->vtep), .vni = bpf_ntohl(m->vni), .learned_ns = now, .used_ns = now};
	__builtin_memcpy(e.mac, m->mac, 6);
	struct cached_ep *old = bpf_map_lookup_elem(&cache_v1, &k);
	if (old) {
		e.hits = old->hits;
		e.used_ns = old->used_ns;
	}
	bpf_map_update_elem(&cache_v1, &k, &e, BPF_ANY);
	bpf_map_delete_elem(&unknown_v1, &k);
	__u64 *t = bpf_map_lookup_elem(&miss_ts_v1, &k);
	if (t) {
		record_latency(now - *t);
		bpf_map_delete_elem(&miss_ts_v1, &k);
	}
	count(STAT_LEARN_INSTALLED);
	return TC_ACT_SHOT;
}

/* learn_unknown: a hub says nobody has the address. Unless this host
 * knows better (it holds it, or has a fresh path to it), packets to it
 * are dropped here for unknown_ttl. */
static __always_inline int learn_unknown(struct learn_msg *m, __u32 vpc, __u32 src)
{
	struct ep_key k = {.vpc = vpc, .ip = m->ip};
	if (!is_hub_of(vpc, src))
		return drop(DROP_LEARN_REJECTED);
	if (bpf_map_lookup_elem(&local_eps_v1, &k))
		return TC_ACT_SHOT;
	__u64 now = bpf_ktime_get_ns();
	struct cached_ep *c = bpf_map_lookup_elem(&cache_v1, &k);
	if (c && now - c->learned_ns < cfg_refresh_ns)
		return TC_ACT_SHOT;
	__u64 until = now + cfg_unknown_ttl_ns;
	bpf_map_update_elem(&unknown_v1, &k, &until, BPF_ANY);
	count(STAT_UNKNOWN_INSTALLED);
	return TC_ACT_SHOT;
}

static __always_inline int tunnel_learn(struct __sk_buff *skb, __u32 vpc, __u32 src, __u32 vni)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct learn_msg *m = data + ETH_HLEN;
	if ((void *)(m + 1) > data_end || m->version != LEARN_VERSION)
		return drop(DROP_LEARN_MALFORMED);
	struct ep_key k = {.vpc = vpc, .ip = m->ip};
	if (m->op == LEARN_OP_LEARN)
		return learn_install(m, vpc, src);
	if (m->op == LEARN_OP_UNKNOWN)
		return learn_unknown(m, vpc, src);
	if (m->op == LEARN_OP_PROBE) {
		/* Only hubs answer: nobody else is asked. */
		if (!cfg_hub)
			return TC_ACT_SHOT;
		return send_learn(skb, src, vpc, LEARN_OP_PROBE_REPLY, 0, vni, 0, cfg_local_vtep);
	}
	if (m->op == LEARN_OP_PROBE_REPLY) {
		if (!is_hub_of(vpc, src))
			return drop(DROP_LEARN_REJECTED);
		__u64 now = bpf_ktime_get_ns();
		if (bpf_map_update_elem(&hub_seen_v1, &src, &now, BPF_EXIST) == 0)
			count(STAT_PROBE_REPLY);
		return TC_ACT_SHOT;
	}
	if (m->op == LEARN_OP_FORGET) {
		struct cached_ep *old = bpf_map_lookup_elem(&cache_v1, &k);
		if (old && (old->vtep == src || is_hub_of(vpc, src))) {
			bpf_map_delete_elem(&cache_v1, &k);
			count(STAT_FORGET_APPLIED);
		}
		return TC_ACT_SHOT;
	}
	return drop(DROP_LEARN_MALFORMED);
}

static __always_inline int tunnel_arp(struct __sk_buff *skb, struct vxnet *vx, __u32 src, __u32 vni)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct arp_eth *arp = data + ETH_HLEN;
	if ((void *)(arp + 1) > data_end)
		return drop(DROP_MALFORMED);
	__u32 vpc = vx->vpc;
	__be32 tpa = arp->tpa;
	struct ep_key k = {.vpc = vpc, .ip = tpa};
	if (arp->op == bpf_htons(ARPOP_REPLY)) {
		/* A hub's answer to one of our VMs. */
		struct local_ep *l = bpf_map_lookup_elem(&local_eps_v1, &k);
		if (!l)
			return drop(DROP_ARP_UNANSWERED);
		count(STAT_LOCAL_TX);
		return to_peer(l->ifindex);
	}
	if (arp->op != bpf_htons(ARPOP_REQUEST) || !cfg_hub)
		return drop(DROP_ARP_UNANSWERED);
	/* A hub answers from its full table. */
	struct dest d = {};
	if (!lookup_dest(vpc, tpa, &d))
		return hub_miss(skb, src, vpc, tpa, vni);
	if (d.vni != vni)
		return drop(DROP_L2_CROSS_VXNET);
	__u32 at = d.kind == DEST_LOCAL ? cfg_local_vtep : d.vtep;
	if (arp_answer(skb, d.mac) < 0)
		return drop(DROP_MALFORMED);
	count(STAT_HUB_ARP_REPLY);
	if (!should_teach(src, vpc, tpa))
		return to_vxlan(skb, src, vni);
	if (set_tunnel(skb, src, vni) < 0 || bpf_clone_redirect(skb, cfg_vxlan_ifindex, 0) < 0)
		return drop(DROP_REDIRECT_FAILED);
	return send_learn(skb, src, vpc, LEARN_OP_LEARN, tpa, d.vni, d.mac, at);
}

/* A hub completes a sender's route: resolve the route's target (a next hop
 * or the destination), fill in the destination MAC, and forward. */
static __always_inline int tunnel_hub_route(struct __sk_buff *skb, __u32 vpc_id, __u32 src, __u32 vni)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr *ip = data + ETH_HLEN;
	if ((void *)(ip + 1) > data_end)
		return drop(DROP_MALFORMED);
	struct route *rt = route_lookup(vpc_id, ip->daddr);
	if (!rt)
		return drop(DROP_NO_ROUTE);
	__be32 target = rt->nexthop ? rt->nexthop : ip->daddr;
	struct dest d = {};
	if (!lookup_dest(vpc_id, target, &d))
		return hub_miss(skb, src, vpc_id, target, vni);
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return drop(DROP_MALFORMED);
	__builtin_memcpy(eth->h_dest, d.mac, 6);
	return hub_forward(skb, src, vpc_id, target, &d);
}

static __always_inline int tunnel_ipv4(struct __sk_buff *skb, struct vxnet *vx, __u32 src, __u32 vni)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return drop(DROP_MALFORMED);
	__u32 vpc_id = vx->vpc;
	__be32 target = ip->daddr;
	struct vpc *vpc = bpf_map_lookup_elem(&vpcs_v1, &vpc_id);
	int incomplete = vpc && mac_eq(eth->h_dest, vpc->gw_mac);
	if (incomplete && cfg_hub)
		/* A sender routed this packet but did not know where its
		 * destination lives: resolve it (without another TTL-1). */
		return tunnel_hub_route(skb, vpc_id, src, vni);

	struct ep_key k = {.vpc = vpc_id, .ip = target};
	struct local_ep *l = bpf_map_lookup_elem(&local_eps_v1, &k);
	if (l) {
		if (l->vni != vni)
			return drop(DROP_L2_CROSS_VXNET);
		if (incomplete)
			__builtin_memcpy(eth->h_dest, l->mac, 6);
		if (cfg_hub) {
			/* A sender that came to a hub did not know where the
			 * destination lives: it lives here, and is taught so. */
			struct dest d = {.kind = DEST_LOCAL, .ifindex = l->ifindex, .vni = l->vni};
			__builtin_memcpy(d.mac, l->mac, 6);
			return hub_forward(skb, src, vpc_id, target, &d);
		}
		count(STAT_LOCAL_TX);
		return to_peer(l->ifindex);
	}
	if (cfg_hub) {
		struct dest d = {};
		if (!lookup_dest(vpc_id, target, &d))
			return hub_miss(skb, src, vpc_id, target, vni);
		if (d.vni != vni)
			return drop(DROP_L2_CROSS_VXNET);
		return hub_forward(skb, src, vpc_id, target, &d);
	}
	/* Not here (any more): a hub knows better. Whatever a hub sent us is
	 * dropped rather than bounced back. Otherwise the packet goes to a
	 * hub and the sender is told to forget the entry that brought it. */
	if (is_hub_of(vpc_id, src))
		return drop(DROP_STALE_FROM_HUB);
	struct route *rt = route_lookup(vpc_id, target);
	if (rt && rt->nexthop)
		target = rt->nexthop;
	__u32 hub = pick_hub(vpc_id, bpf_get_hash_recalc(skb));
	if (!hub || hub == src)
		return drop(DROP_NO_HUB);
	if (set_tunnel(skb, hub, vni) < 0 || bpf_clone_redirect(skb, cfg_vxlan_ifindex, 0) < 0)
		return drop(DROP_REDIRECT_FAILED);
	count(STAT_HUB_TX);
	return send_learn(skb, src, vpc_id, LEARN_OP_FORGET, target, vni, 0, 0);
}

static __always_inline int tunnel_rx(struct __sk_buff *skb, __u32 src, __u32 vni)
{
	struct vxnet *vx = bpf_map_lookup_elem(&vxnets_v1, &vni);
	if (!vx)
		return drop(DROP_UNKNOWN_VNI);
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return drop(DROP_MALFORMED);
	__be16 proto = eth->h_proto;
	if (proto == bpf_htons(ETH_P_COURIER_LEARN))
		return tunnel_learn(skb, vx->vpc, src, vni);
	if (proto == bpf_htons(ETH_P_ARP))
		return tunnel_arp(skb, vx, src, vni);
	if (proto == bpf_htons(ETH_P_IP))
		return tunnel_ipv4(skb, vx, src, vni);
	if (proto == bpf_htons(ETH_P_IPV6))
		return drop(DROP_IPV6);
	return drop(DROP_UNSUPPORTED_PROTO);
}

SEC("tc")
int tunnel_ingress(struct __sk_buff *skb)
{
	count(STAT_TUNNEL_RX);
	__u32 src = 0, vni = 0;
	if (get_tunnel(skb, &src, &vni) < 0)
		return drop(DROP_MALFORMED);
	return tunnel_rx(skb, src, vni);
}
