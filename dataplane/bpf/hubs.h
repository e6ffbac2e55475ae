/* The hubs southd assigned to each VPC: where unknown destinations go,
 * and the only hosts whose learn messages are believed; and when each hub
 * last answered this host's liveness probes (learn.h). */
#ifndef COURIER_HUBS_H
#define COURIER_HUBS_H

#include "common.h"
#include "config.h"
#include "stats.h"

#define MAX_HUBS 8

struct hubs {
	__u32 n;
	__u32 vtep[MAX_HUBS]; /* host byte order */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32); /* VPC */
	__type(value, struct hubs);
} hubs_v1 SEC(".maps");

/* When each hub this host probes last answered (ns). hostd creates an
 * entry, stamped with the time it started probing, for every hub it
 * probes, and removes those that are no longer hubs; probe replies only
 * update existing entries, so nobody else can grow the map. A hub with
 * no entry is not probed (hostd is not running): it counts as up. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);   /* hub VTEP, host byte order */
	__type(value, __u64); /* last reply */
} hub_seen_v1 SEC(".maps");

static __always_inline int is_hub_of(__u32 vpc, __u32 vtep)
{
	struct hubs *h = bpf_map_lookup_elem(&hubs_v1, &vpc);
	if (!h)
		return 0;
#pragma unroll
	for (int i = 0; i < MAX_HUBS; i++) {
		if (i < h->n && h->vtep[i] == vtep)
			return 1;
	}
	return 0;
}

static __always_inline int hub_up(__u32 vtep, __u64 now)
{
	__u64 *seen = bpf_map_lookup_elem(&hub_seen_v1, &vtep);
	return !seen || now - *seen < cfg_hub_down_ns;
}

/* pick_hub chooses one of a VPC's hubs by flow hash, passing over hubs
 * that stopped answering probes to the next one that answers (and says so
 * in *passed); if none does (this host's own probing may be what
 * stopped), the hashed one. 0 if the VPC has no hub. */
static __always_inline __u32 pick_hub(__u32 vpc, __u32 hash, int *passed)
{
	struct hubs *h = bpf_map_lookup_elem(&hubs_v1, &vpc);
	if (!h || h->n == 0 || h->n > MAX_HUBS)
		return 0;
	/* The mask is a no-op (n <= MAX_HUBS, a power of two) that gives the
	 * verifier the bound it cannot derive from the modulo; the empty asm
	 * keeps clang, which can, from removing it. */
	__u32 n = h->n;
	__u32 first = hash % n;
	asm volatile("" : "+r"(first));
	first &= MAX_HUBS - 1;
	__u64 now = bpf_ktime_get_ns();
#pragma unroll
	for (__u32 k = 0; k < MAX_HUBS; k++) {
		__u32 i = first + k;
		if (i >= n)
			i -= n;
		i &= MAX_HUBS - 1;
		if (k < n && hub_up(h->vtep[i], now)) {
			if (k > 0) {
				count(STAT_HUB_DOWN_SKIPPED);
				*passed = 1;
			}
			return h->vtep[i];
		}
	}
	return h->vtep[first];
}

#endif
