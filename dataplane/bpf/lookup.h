/* Where an address of a VPC lives, as this host knows it: a port here, a
 * path a hub taught (while it is fresh), or, on a hub, its bindings. */
#ifndef COURIER_LOOKUP_H
#define COURIER_LOOKUP_H

#include "pipeline.h"
#include "endpoints.h"

/* find_dest finds where (vpc, ip) lives and says what decided in
 * c->hit. It returns 0 when the destination must be resolved by a hub:
 * having counted the miss (and a stale path), unless quiet, when a miss
 * leaves no trace at all (ip_route's try by binding, which a miss sends
 * on to the routes and to lookup_dest). */
static __always_inline int find_dest(struct pctx *c, __u32 vpc, __be32 ip, struct dest *d, int quiet)
{
	struct ep_key k = {.vpc = vpc, .ip = ip};
	struct local_ep *l = bpf_map_lookup_elem(&local_eps_v1, &k);
	if (l) {
		local_dest(d, l);
		c->hit = HIT_LOCAL_EP;
		return 1;
	}
	/* The clock is a helper call: read only for a learned path or a
	 * miss, not for a local or hub hit; and on a learned path's every
	 * packet, the coarse clock (a tick's resolution, enough for a
	 * refresh interval of seconds; with sg_conn's, it took ~75 ns off
	 * a packet on a kvm-clock guest, #21). It lags the fine one that
	 * stamped learned_ns by up to a tick: compared signed, a path
	 * learned within the tick is fresh. */
	__u64 now = 0;
	int stale = 0;
	struct cached_ep *e = bpf_map_lookup_elem(&cache_v1, &k);
	if (e) {
		now = bpf_ktime_get_coarse_ns();
		if ((__s64)(now - e->learned_ns) < (__s64)cfg_refresh_ns) {
			if (!cfg_trace) {
				e->used_ns = now;
				__sync_fetch_and_add(&e->hits, 1);
			}
			count(STAT_CACHE_HIT);
			d->kind = DEST_REMOTE;
			d->vtep = e->vtep;
			d->vni = e->vni;
			mac_copy(d->mac, e->mac);
			c->hit = HIT_CACHE;
			return 1;
		}
		/* Past its refresh interval: this packet goes through a hub,
		 * which answers with a fresh learn message. */
		stale = 1;
	}
	if (cfg_hub) {
		struct remote_ep *r = bpf_map_lookup_elem(&hub_eps_v1, &k);
		if (r) {
			if (stale)
				count(STAT_CACHE_STALE);
			d->kind = DEST_REMOTE;
			d->vtep = r->vtep;
			d->vni = r->vni;
			mac_copy(d->mac, r->mac);
			c->hit = HIT_HUB_EP;
			return 1;
		}
	}
	if (quiet)
		return 0;
	if (stale) {
		count(STAT_CACHE_STALE);
		c->hit = HIT_CACHE_STALE;
	}
	count(STAT_CACHE_MISS);
	if (!cfg_trace) {
		now = bpf_ktime_get_ns();
		bpf_map_update_elem(&miss_ts_v1, &k, &now, BPF_NOEXIST);
	}
	if (c->hit == HIT_NONE)
		c->hit = HIT_MISS;
	return 0;
}

/* lookup_dest finds where (vpc, ip) lives and says what decided in
 * c->hit. It returns 0 when the destination must be resolved by a hub. */
static __always_inline int lookup_dest(struct pctx *c, __u32 vpc, __be32 ip, struct dest *d)
{
	return find_dest(c, vpc, ip, d, 0);
}

#endif
