/* Counters, and the one drop path: every drop goes through drop(), which
 * counts it under its named reason (stages.h). */
#ifndef COURIER_STATS_H
#define COURIER_STATS_H

#include "common.h"

enum stat {
	STAT_PORT_RX = 0,     /* frames from VM ports */
	STAT_TUNNEL_RX,       /* packets from the VXLAN device */
	STAT_LOCAL_TX,        /* delivered to a local port */
	STAT_REMOTE_TX,       /* sent straight to the destination's host */
	STAT_HUB_TX,          /* sent to a hub: the destination was unknown */
	STAT_ARP_REPLY,       /* ARP requests answered on the host */
	STAT_ARP_TO_HUB,      /* ARP requests sent to a hub */
	STAT_CACHE_HIT,       /* remote binding cache hits */
	STAT_CACHE_MISS,      /* remote binding cache misses */
	STAT_CACHE_STALE,     /* cache entries past their refresh interval */
	STAT_HUB_FORWARD,     /* hub: forwarded for another host */
	STAT_HUB_ARP_REPLY,   /* hub: answered an encapsulated ARP request */
	STAT_LEARN_SENT,      /* hub: learn messages sent */
	STAT_LEARN_INSTALLED, /* learn messages accepted and installed */
	STAT_FORGET_SENT,     /* forget messages sent (stale destination) */
	STAT_FORGET_APPLIED,  /* forget messages that removed an entry */
	STAT_ANNOUNCE,        /* address announcements passed to hostd */
	STAT_LEARN_SKIPPED,   /* learn message could not be built */
	STAT_MAX,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DROP_MAX);
	__type(key, __u32);
	__type(value, __u64);
} drops_v1 SEC(".maps");

/* Learning latency, first miss to installed entry: bucket i counts
 * latencies in [2^i, 2^(i+1)) microseconds. */
#define LAT_BUCKETS 24
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LAT_BUCKETS);
	__type(key, __u32);
	__type(value, __u64);
} learn_latency_v1 SEC(".maps");

static __always_inline void count(__u32 s)
{
	__u64 *v = bpf_map_lookup_elem(&stats_v1, &s);
	if (v)
		*v += 1;
}

static __always_inline int drop(__u32 reason)
{
	__u64 *v = bpf_map_lookup_elem(&drops_v1, &reason);
	if (v)
		*v += 1;
	return TC_ACT_SHOT;
}

static __always_inline void record_latency(__u64 ns)
{
	__u64 us = ns / 1000;
	__u32 b = 0;
#pragma unroll
	for (int i = 0; i < LAT_BUCKETS - 1; i++) {
		if (us >= 2)
			b++;
		us >>= 1;
	}
	__u64 *v = bpf_map_lookup_elem(&learn_latency_v1, &b);
	if (v)
		*v += 1;
}

#endif
