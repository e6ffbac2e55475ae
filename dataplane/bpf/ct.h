/* Connection tracking: what a tracked connection is keyed by and holds.
 *
 * Connections are tracked in an LRU hash keyed by the protected local
 * port (zone) and the 5-tuple, not in the kernel's conntrack through its
 * kfuncs (bpf_skb_ct_lookup, bpf_skb_ct_alloc): measured on the same
 * packet, the kernel's costs 1.4 to 1.6 times as much per packet
 * (courier-bench --only ct), an nf_conn has no room for the policy
 * generation and identity an entry was allowed under, and the DVR's
 * packets bypass netfilter, so the kernel would only store what this
 * code decides anyway. DEVELOPERS.md, "Security groups", has the rest.
 *
 * This header holds no policy (sg.h decides with it) so that the
 * measurement's program (tests/bench/ctbench) tracks with the same key,
 * entry, map and parser as the DVR. */
#ifndef COURIER_CT_H
#define COURIER_CT_H

#include "common.h"

struct ct_key {
	__u32 zone; /* the local port protected: its ifindex */
	__be32 saddr;
	__be32 daddr;
	__be16 sport; /* ICMP echo: the identifier, both ways */
	__be16 dport;
	__u8 proto;
	__u8 pad[3];
};

#define CT_F_PENDING 0x1 /* allowed pending the receiver's egress check */
#define CT_F_CLOSING 0x2 /* a FIN was seen: forgotten cfg_ct_closing_ns after */

struct ct_entry {
	__u64 seen_ns;
	__u32 gen;
	__u32 remote_id; /* the other end's identity when allowed (0: unknown) */
	__u8 dir;	 /* SG_DIR_* of the packet that opened it */
	__u8 flags;	 /* CT_F_* */
	__u8 pad[6];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 262144);
	__type(key, struct ct_key);
	__type(value, struct ct_entry);
} ct_v1 SEC(".maps");

_Static_assert(sizeof(struct ct_entry) <= SCRATCH_SIZE, "a new connection's entry is built in SCRATCH_CT");

/* A packet's 5-tuple, from its IPv4 header on. */
struct tuple {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 ok; /* IPv4 with a readable header */
	__u8 tcp_flags;
	__u8 pad;
};

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04

static __always_inline struct tuple tuple_of(struct __sk_buff *skb)
{
	struct tuple t = {};
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return t;
	t.ok = 1;
	t.saddr = ip->saddr;
	t.daddr = ip->daddr;
	t.proto = ip->protocol;
	if (ip->frag_off & bpf_htons(0x1fff))
		return t; /* a later fragment: addresses and protocol only */
	__u8 *l4 = (void *)ip + ip->ihl * 4;
	if (t.proto == IPPROTO_TCP || t.proto == IPPROTO_UDP) {
		__be16 *p = (void *)l4;
		if ((void *)(p + 2) <= data_end) {
			t.sport = p[0];
			t.dport = p[1];
		}
		if (t.proto == IPPROTO_TCP && (void *)(l4 + 14) <= data_end)
			t.tcp_flags = l4[13];
	} else if (t.proto == IPPROTO_ICMP) {
		__u8 *h = l4;
		if ((void *)(h + 8) <= data_end && (h[0] == 8 || h[0] == 0)) {
			__be16 echo_id = *(__be16 *)(h + 4);
			t.sport = echo_id;
			t.dport = echo_id;
		}
	}
	return t;
}

static __always_inline struct ct_key ct_key_of(__u32 zone, struct tuple *t, int reverse)
{
	struct ct_key k = {.zone = zone, .proto = t->proto};
	k.saddr = reverse ? t->daddr : t->saddr;
	k.daddr = reverse ? t->saddr : t->daddr;
	k.sport = reverse ? t->dport : t->sport;
	k.dport = reverse ? t->sport : t->dport;
	return k;
}

#endif
