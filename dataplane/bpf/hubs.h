/* The hubs southd assigned to each VPC: where unknown destinations go,
 * and the only hosts whose learn messages are believed. */
#ifndef COURIER_HUBS_H
#define COURIER_HUBS_H

#include "common.h"

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

/* pick_hub chooses one of a VPC's hubs by flow hash; 0 if none. */
static __always_inline __u32 pick_hub(__u32 vpc, __u32 hash)
{
	struct hubs *h = bpf_map_lookup_elem(&hubs_v1, &vpc);
	if (!h || h->n == 0 || h->n > MAX_HUBS)
		return 0;
	/* The mask is a no-op (n <= MAX_HUBS, a power of two) that gives the
	 * verifier the bound it cannot derive from the modulo; the empty asm
	 * keeps clang, which can, from removing it. */
	__u32 i = hash % h->n;
	asm volatile("" : "+r"(i));
	i &= MAX_HUBS - 1;
	return h->vtep[i];
}

#endif
