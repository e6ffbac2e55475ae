/* Counters, and the one drop path: every drop is counted under its named
 * reason (stages.h) by the pipeline driver (pipeline.h). A trace counts
 * nothing. The counters themselves (enum stat) are numbered in stages.h. */
#ifndef COURIER_STATS_H
#define COURIER_STATS_H

#include "common.h"
#include "config.h"

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
	if (cfg_trace)
		return;
	__u64 *v = bpf_map_lookup_elem(&stats_v1, &s);
	if (v)
		*v += 1;
}

static __always_inline void count_drop(__u32 reason)
{
	if (cfg_trace)
		return;
	__u64 *v = bpf_map_lookup_elem(&drops_v1, &reason);
	if (v)
		*v += 1;
}

static __always_inline void record_latency(__u64 ns)
{
	if (cfg_trace)
		return;
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
