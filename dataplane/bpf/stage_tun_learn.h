/* STAGE_TUN_LEARN: a learn message (learn.h). A host believes learn and
 * unknown messages and probe replies only from its VPC's hubs, and a
 * forget only from a hub or from the host its path points to, so a stray
 * message can at worst send traffic through a hub, never elsewhere. A hub
 * answers probes in its kernel. */
#ifndef COURIER_STAGE_TUN_LEARN_H
#define COURIER_STAGE_TUN_LEARN_H

#include "pipeline.h"
#include "endpoints.h"
#include "hubs.h"
#include "teach.h"

static __always_inline int learn_install(struct pctx *c, struct learn_msg *m)
{
	struct ep_key k = {.vpc = c->vpc, .ip = m->ip};
	if (bpf_map_lookup_elem(&local_eps_v1, &k)) {
		c->hit = HIT_LOCAL_EP;
		return V_CONSUMED; /* we hold it ourselves */
	}
	__u64 now = bpf_ktime_get_ns();
	struct cached_ep e = {.vtep = bpf_ntohl(m->vtep), .vni = bpf_ntohl(m->vni), .learned_ns = now, .used_ns = now};
	__builtin_memcpy(e.mac, m->mac, 6);
	c->d.vtep = e.vtep;
	c->d.vni = e.vni;
	mac_copy(c->d.mac, e.mac);
	if (cfg_trace)
		return V_CONSUMED;
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
	return V_CONSUMED;
}

/* learn_unknown: a hub says nobody has the address. Unless this host
 * knows better (it holds it, or has a fresh path to it), packets to it
 * are dropped here for unknown_ttl. */
static __always_inline int learn_unknown(struct pctx *c, struct learn_msg *m)
{
	struct ep_key k = {.vpc = c->vpc, .ip = m->ip};
	if (bpf_map_lookup_elem(&local_eps_v1, &k)) {
		c->hit = HIT_LOCAL_EP;
		return V_CONSUMED;
	}
	__u64 now = bpf_ktime_get_ns();
	struct cached_ep *e = bpf_map_lookup_elem(&cache_v1, &k);
	if (e && (__s64)(now - e->learned_ns) < (__s64)cfg_refresh_ns) { /* signed, as find_dest */
		c->hit = HIT_CACHE;
		return V_CONSUMED;
	}
	if (cfg_trace)
		return V_CONSUMED;
	__u64 until = now + cfg_unknown_ttl_ns;
	bpf_map_update_elem(&unknown_v1, &k, &until, BPF_ANY);
	count(STAT_UNKNOWN_INSTALLED);
	return V_CONSUMED;
}

static __always_inline int learn_forget(struct pctx *c, struct learn_msg *m)
{
	struct ep_key k = {.vpc = c->vpc, .ip = m->ip};
	struct cached_ep *old = bpf_map_lookup_elem(&cache_v1, &k);
	if (old && (old->vtep == c->src || is_hub_of(c->vpc, c->src))) {
		c->hit = HIT_CACHE;
		if (!cfg_trace) {
			bpf_map_delete_elem(&cache_v1, &k);
			count(STAT_FORGET_APPLIED);
		}
	}
	return V_CONSUMED;
}

__attribute__((noinline)) int stage_tun_learn(struct __sk_buff *skb, struct pctx *c)
{
	if (!c) /* the verifier checks a global function alone: c is never NULL */
		return V_DROP;
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct learn_msg *m = data + ETH_HLEN;
	if ((void *)(m + 1) > data_end || m->version != LEARN_VERSION)
		return drop_for(c, DROP_LEARN_MALFORMED);
	__u32 vpc_id = c->vpc;
	struct vpc *vpc = bpf_map_lookup_elem(&vpcs_v2, &vpc_id);
	__u32 flags = vpc ? vpc->flags : 0;
	c->hit = HIT_LEARN_MSG;
	c->target = m->ip;
	__u8 op = m->op;
	if (op == LEARN_OP_FORGET)
		return (flags & VPC_F_FORGET) ? learn_forget(c, m) : V_CONSUMED;
	if (op == LEARN_OP_PROBE) {
		/* Only hubs and gateways answer: nobody else is asked. */
		if (!(cfg_hub && (flags & VPC_F_PROBE)) && !gw_enabled())
			return V_CONSUMED;
		return send_learn(skb, c, c->src, LEARN_OP_PROBE_REPLY, 0, c->vni, 0, cfg_local_vtep);
	}
	if (op == LEARN_OP_PROBE_REPLY) {
		if (!is_hub_of(vpc_id, c->src) && !is_gateway(c->src))
			return drop_for(c, DROP_LEARN_REJECTED);
		__u64 now = bpf_ktime_get_ns();
		__u32 src = c->src;
		if ((flags & VPC_F_PROBE) && !cfg_trace && bpf_map_update_elem(&hub_seen_v1, &src, &now, BPF_EXIST) == 0)
			count(STAT_PROBE_REPLY);
		return V_CONSUMED;
	}
	if (op != LEARN_OP_LEARN && op != LEARN_OP_UNKNOWN)
		return drop_for(c, DROP_LEARN_MALFORMED);
	if (!is_hub_of(vpc_id, c->src))
		return drop_for(c, DROP_LEARN_REJECTED);
	if (op == LEARN_OP_LEARN)
		return (flags & VPC_F_LEARN) ? learn_install(c, m) : V_CONSUMED;
	return (flags & VPC_F_LEARN_UNKNOWN) ? learn_unknown(c, m) : V_CONSUMED;
}

#endif
