/* Events for hostd: addresses a port announced or used that only the
 * data plane sees (a virtual IP taken over by gratuitous ARP, the address
 * of a port declared with unknown addresses). Rate-limited per address,
 * and per port by its announcement budget (budget.h): a port spraying
 * source addresses wakes hostd a few times a second, not per packet. */
#ifndef COURIER_EVENTS_H
#define COURIER_EVENTS_H

#include "common.h"
#include "config.h"
#include "budget.h"
#include "stats.h"

#define EV_VIP_ANNOUNCE 1 /* a port announced one of its virtual IPs */
#define EV_ADDR_SEEN 2    /* a port with unknown addresses used an IP */
#define EV_RESUMED 3      /* a migrating port's guest announced itself here */

struct event {
	__u32 type;
	__u32 ifindex;
	__be32 ip;
	__u32 vni;
	__u8 mac[6];
	__u16 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 16);
} events_v1 SEC(".maps");

struct ev_key {
	__u32 ifindex;
	__be32 ip;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct ev_key);
	__type(value, __u64);
} ev_rl_v1 SEC(".maps");

#define EV_INTERVAL_NS (1000ULL * 1000000ULL)

static __always_inline void report(__u32 type, __u32 ifindex, __be32 ip, __u32 vni, const __u8 *mac)
{
	if (cfg_trace)
		return;
	struct ev_key k = {.ifindex = ifindex, .ip = ip};
	__u64 now = bpf_ktime_get_ns();
	__u64 *last = bpf_map_lookup_elem(&ev_rl_v1, &k);
	if (last && now - *last < EV_INTERVAL_NS)
		return;
	if (!budget_take(ifindex, BUDGET_ANNOUNCE, cfg_announce_cost_ns, cfg_announce_burst_ns)) {
		count(STAT_ANNOUNCE_LIMITED);
		return;
	}
	bpf_map_update_elem(&ev_rl_v1, &k, &now, BPF_ANY);
	struct event *e = bpf_ringbuf_reserve(&events_v1, sizeof(*e), 0);
	if (!e)
		return;
	e->type = type;
	e->ifindex = ifindex;
	e->ip = ip;
	e->vni = vni;
	mac_copy(e->mac, mac);
	e->pad = 0;
	bpf_ringbuf_submit(e, 0);
}

#endif
