/* Per-port budgets, enforced in the kernel before anything leaves the
 * host or reaches hostd: packets a port sends to hubs (destinations this
 * host was not told about: a flood of them would land on hubs every VPC
 * shares), and addresses it announces (each becomes a southbound row).
 *
 * Each budget is a GCRA meter (ATM's generic cell rate algorithm): one
 * timestamp per port and kind, the
 * theoretical arrival time of the next conforming packet. A packet
 * conforms if that time is at most burst ahead of now; it then pushes
 * the time on by cost. Concurrent CPUs may race on the timestamp and let
 * a packet or two more through: a budget, not an exact count. */
#ifndef COURIER_BUDGET_H
#define COURIER_BUDGET_H

#include "common.h"
#include "config.h"

#define BUDGET_HUB 0
#define BUDGET_ANNOUNCE 1
#define BUDGET_ICMP 2

struct budget_key {
	__u32 ifindex;
	__u32 kind; /* BUDGET_* */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct budget_key);
	__type(value, __u64); /* theoretical arrival time, ns */
} budgets_v1 SEC(".maps");

/* budget_take: may the port spend one more of kind? A zero cost means no
 * limit. A trace only looks. */
static __always_inline int budget_take(__u32 ifindex, __u32 kind, __u64 cost, __u64 burst)
{
	if (cost == 0)
		return 1;
	struct budget_key k = {.ifindex = ifindex, .kind = kind};
	__u64 now = bpf_ktime_get_ns();
	__u64 *tat = bpf_map_lookup_elem(&budgets_v1, &k);
	if (!tat) {
		__u64 next = now + cost;
		if (!cfg_trace)
			bpf_map_update_elem(&budgets_v1, &k, &next, BPF_ANY);
		return 1;
	}
	__u64 t = *tat > now ? *tat : now;
	if (t - now > burst)
		return 0;
	if (!cfg_trace)
		*tat = t + cost;
	return 1;
}

#endif
