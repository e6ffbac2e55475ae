/* Live drop events for courier-dpctl monitor, like cilium monitor --type
 * drop: while a monitor holds a lease (until_ns, renewed by dpctl every
 * second, so a killed dpctl stops them within a few), every drop is
 * reported with its stage, reason, where it came from and the start of
 * the packet, at most a rate the monitor chose (a GCRA meter in the
 * kernel). Without a lease a drop costs one array lookup more. */
#ifndef COURIER_MONITOR_H
#define COURIER_MONITOR_H

#include "common.h"
#include "config.h"

#define MON_CAP 96 /* bytes of the packet in an event */

struct monitor_cfg {
	__u64 until_ns; /* report drops until then */
	__u64 cost_ns;  /* one event costs this much ... */
	__u64 burst_ns; /* ... and this much may be taken ahead */
	__u64 tat;      /* the meter's state */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct monitor_cfg);
} monitor_v1 SEC(".maps");

struct drop_event {
	__u8 stage;    /* STAGE_* */
	__u8 dir;      /* 0: from a port, 1: from the tunnel */
	__u16 reason;  /* DROP_* */
	__u32 ifindex; /* the port it came from */
	__u32 src;     /* the host it came from (tunnel), host byte order */
	__u32 vni;
	__u32 len;    /* of the whole packet */
	__u32 caplen; /* of pkt */
	__u8 pkt[MON_CAP];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 18);
} monitor_events_v1 SEC(".maps");

static __always_inline void monitor_drop(struct __sk_buff *skb, __u32 stage, __u32 reason, __u32 ifindex, __u32 src,
					 __u32 vni)
{
	if (cfg_trace)
		return;
	__u32 zero = 0;
	struct monitor_cfg *m = bpf_map_lookup_elem(&monitor_v1, &zero);
	if (!m)
		return;
	__u64 now = bpf_ktime_get_ns();
	if (now > m->until_ns)
		return;
	__u64 t = m->tat > now ? m->tat : now;
	if (m->cost_ns && t - now > m->burst_ns)
		return;
	m->tat = t + m->cost_ns;
	struct drop_event *e = bpf_ringbuf_reserve(&monitor_events_v1, sizeof(*e), 0);
	if (!e)
		return;
	e->stage = stage;
	e->dir = ifindex ? 0 : 1;
	e->reason = reason;
	e->ifindex = ifindex;
	e->src = src;
	e->vni = vni;
	e->len = skb->len;
	__u32 cap = skb->len;
	if (cap > MON_CAP)
		cap = MON_CAP;
	e->caplen = 0;
	if (cap > 0 && bpf_skb_load_bytes(skb, 0, e->pkt, cap) == 0)
		e->caplen = cap;
	bpf_ringbuf_submit(e, 0);
}

#endif
