/* What a hub (and a host a stale path led to) tells other hosts, in band
 * (learn.h): learn messages, forgets, "unknown", probe replies. The
 * packet that triggers one becomes it, after the packet itself has gone
 * on as a clone. A trace only says what would be sent. */
#ifndef COURIER_TEACH_H
#define COURIER_TEACH_H

#include "pipeline.h"
#include "learn.h"
#include "eip.h"

/* should_teach: has this hub not told sender about (vpc, ip) lately?
 * Asked for every packet a hub delivers, so by the coarse clock, which
 * lags hold_lesson's fine stamp by up to a tick: compared signed, the
 * interval (20 ms by default) is never shorter, at most a tick (4 ms
 * at HZ=250) longer. */
static __always_inline int should_teach(__u32 sender, __u32 vpc, __be32 ip)
{
	struct learn_rl_key k = {.sender = sender, .vpc = vpc, .ip = ip};
	__u64 *last = bpf_map_lookup_elem(&learn_rl_v1, &k);
	return !last || (__s64)(bpf_ktime_get_coarse_ns() - *last) >= (__s64)cfg_learn_interval_ns;
}

/* learn_out_v1 carries the learn messages hostd sends for the kernel
 * (learn.go's Sender): those whose packet could not become them. GRO
 * hands a host packets merged from many, still marked encapsulated, and
 * the kernel will not reshape those (bpf_skb_change_tail refuses them);
 * a bulk TCP flow sends little else, so without this a hub would never
 * teach its sender, which then sends everything through it. */
struct learn_out {
	__u32 to; /* host byte order */
	__u32 vni;
	struct learn_msg m;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 14);
} learn_out_v1 SEC(".maps");

/* learn_fill writes the message op says about ip. */
static __always_inline void learn_fill(struct learn_msg *m, __u8 op, __be32 ip, __u32 vni, const __u8 *mac, __u32 at)
{
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
}

/* learn_in_place turns the packet into the message; 0 on success. */
static __always_inline int learn_in_place(struct __sk_buff *skb, __u8 op, __be32 ip, __u32 vni, const __u8 *mac, __u32 at)
{
	__u32 len = ETH_HLEN + sizeof(struct learn_msg);
	if (bpf_skb_change_tail(skb, len, 0) < 0 || bpf_skb_pull_data(skb, len) < 0)
		return -1;
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct learn_msg *m = (void *)(eth + 1);
	if ((void *)(m + 1) > data_end)
		return -1;
	__builtin_memset(eth->h_dest, 0, 6);
	__builtin_memset(eth->h_source, 0, 6);
	eth->h_proto = bpf_htons(ETH_P_COURIER_LEARN);
	learn_fill(m, op, ip, vni, mac, at);
	return 0;
}

/* learn_to_hostd hands the message to hostd to send; 0 on success. */
static __always_inline int learn_to_hostd(__u32 to, __u8 op, __be32 ip, __u32 vni, const __u8 *mac, __u32 at)
{
	struct learn_out *o = bpf_ringbuf_reserve(&learn_out_v1, sizeof(*o), 0);
	if (!o)
		return -1;
	o->to = to;
	o->vni = vni;
	learn_fill(&o->m, op, ip, vni, mac, at);
	bpf_ringbuf_submit(o, 0);
	count(STAT_LEARN_VIA_HOSTD);
	return 0;
}

/* hold_lesson starts the interval during which sender is not told about
 * (vpc, ip) again: after a lesson, and after one that was lost (hostd's
 * queue full), so that a full queue costs one attempt an interval, not a
 * clone and an attempt for every packet. */
static __always_inline void hold_lesson(__u32 sender, __u32 vpc, __be32 ip)
{
	if (cfg_trace)
		return;
	struct learn_rl_key k = {.sender = sender, .vpc = vpc, .ip = ip};
	__u64 now = bpf_ktime_get_ns(); /* once a lesson: see should_teach */
	bpf_map_update_elem(&learn_rl_v1, &k, &now, BPF_ANY);
}

/* send_learn turns the packet into a learn message (op) for host to and
 * makes it the packet's destination; or, if the packet cannot become
 * it, has hostd send it and consumes the packet. */
static __always_inline int send_learn(struct __sk_buff *skb, struct pctx *c, __u32 to, __u8 op, __be32 ip, __u32 vni,
				      const __u8 *mac, __u32 at)
{
	int handed = 0, lost = 0;
	if (learn_in_place(skb, op, ip, vni, mac, at) < 0) {
		if (cfg_trace || learn_to_hostd(to, op, ip, vni, mac, at) < 0)
			lost = 1;
		else
			handed = 1;
	}
	if (op == LEARN_OP_LEARN || op == LEARN_OP_UNKNOWN)
		hold_lesson(to, c->vpc, ip);
	if (lost) {
		count(STAT_LEARN_SKIPPED);
		return V_CONSUMED;
	}
	if (op == LEARN_OP_LEARN)
		count(STAT_LEARN_SENT);
	else if (op == LEARN_OP_FORGET)
		count(STAT_FORGET_SENT);
	else if (op == LEARN_OP_UNKNOWN)
		count(STAT_UNKNOWN_SENT);
	else if (op == LEARN_OP_PROBE_REPLY)
		count(STAT_PROBE_ANSWERED);
	if (handed)
		return V_CONSUMED;
	c->d.kind = DEST_REMOTE;
	c->d.vtep = to;
	c->d.vni = vni;
	c->gbp = 0; /* a lesson carries nobody's identity */
	__builtin_memset(c->d.mac, 0, 6);
	return V_OUTPUT;
}

/* clone_to sends a copy of the packet on to d, so that the original can
 * become a learn message. */
static __always_inline int clone_to(struct __sk_buff *skb, struct dest *d, __u32 gbp)
{
	if (d->kind == DEST_LOCAL) {
		/* A clone cannot be redirected to a peer; out of the host side
		 * of the VM's veth reaches the VM just the same. */
		count(STAT_LOCAL_TX);
		return bpf_clone_redirect(skb, d->ifindex, 0);
	}
	if (set_tunnel(skb, d->vtep, d->vni, gbp) < 0)
		return -1;
	return bpf_clone_redirect(skb, cfg_vxlan_ifindex, 0);
}

/* hub_forward sends a packet a hub resolved on to its destination (a
 * host, or a port of the hub itself) and, unless it was told lately,
 * teaches the sender where it lives. */
static __always_inline int hub_forward(struct __sk_buff *skb, struct pctx *c, __be32 target, struct dest *d)
{
	__u32 at = cfg_local_vtep;
	if (d->kind != DEST_LOCAL) {
		if (d->vtep == c->src || d->vtep == cfg_local_vtep)
			return drop_for(c, DROP_LOOP);
		count(STAT_HUB_FORWARD);
		at = d->vtep;
	}
	c->target = target;
	c->d = *d;
	/* A gateway tunnels by its own tables (gateway.h) and rejects
	 * lessons (learn_rejected): teaching it what it brought back cost a
	 * lesson through hostd every learn interval for every flow. */
	if (is_gateway(c->src) || !should_teach(c->src, c->vpc, target))
		return V_OUTPUT;
	c->tflags |= TRF_TEACH;
	if (cfg_trace)
		return V_OUTPUT; /* the trace follows the packet, not the lesson */
	/* The packet goes on whole and hostd sends the lesson when the
	 * packet cannot become it: a GSO packet (what GRO makes of a bulk
	 * flow), which the kernel will not reshape, and a packet for a local
	 * port behind security groups, which a clone would take past them.
	 * It used to leave as a clone, out through the veth's backlog
	 * rather than to its peer, the original dropped; with hostd's queue
	 * full, every packet of a bulk flow into a hub did (#21). */
	if (skb->gso_size || (d->kind == DEST_LOCAL && vpc_of(c) && (c->vx.vpce.flags & VPC_F_SG_INGRESS))) {
		hold_lesson(c->src, c->vpc, target);
		if (learn_to_hostd(c->src, LEARN_OP_LEARN, target, d->vni, d->mac, at) < 0)
			count(STAT_LEARN_SKIPPED);
		else
			count(STAT_LEARN_SENT);
		return V_OUTPUT;
	}
	if (clone_to(skb, d, c->gbp) < 0)
		return drop_for(c, DROP_REDIRECT_FAILED);
	c->tflags |= TRF_CLONE;
	return send_learn(skb, c, c->src, LEARN_OP_LEARN, target, d->vni, d->mac, at);
}

/* hub_miss: a hub does not know the destination either. The packet is
 * dropped (counted as hub_miss) and, unless the sender was told lately,
 * becomes an unknown message, after which the sender drops its packets to
 * that address for a moment instead of sending them here. */
static __always_inline int hub_miss(struct __sk_buff *skb, struct pctx *c, __be32 ip)
{
	c->target = ip;
	c->hit = HIT_MISS;
	if (!should_teach(c->src, c->vpc, ip))
		return drop_for(c, DROP_HUB_MISS);
	count_drop(DROP_HUB_MISS);
	c->reason = DROP_HUB_MISS;
	c->tflags |= TRF_TELL_UNKNOWN;
	return send_learn(skb, c, c->src, LEARN_OP_UNKNOWN, ip, c->vni, 0, 0);
}

#endif
