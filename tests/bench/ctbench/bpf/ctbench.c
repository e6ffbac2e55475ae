// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The connection tracking measurement: the same TCP/IPv4 frame tracked
 * by Courier's table and by the kernel's conntrack, each run through
 * BPF_PROG_RUN (tests/bench/ctbench).
 *
 * lru_track does what sg_conn (dataplane/bpf/sg.h) does to track, with
 * the same key, entry, map and parser (ct.h), and no rules: look the
 * packet up as sent, then reversed; on a miss, insert it. kfunc_track
 * does the same with the kernel's conntrack through its kfuncs
 * (net/netfilter/nf_conntrack_bpf.c): one lookup finds either direction
 * and restarts the idle timeout as ct_touch does; on a miss, allocate,
 * set Courier's idle timeout, insert. parse_only is the work both share,
 * for scale.
 *
 * With vary set, each run stands for a new connection: the source port
 * and the source address's middle bits come from a counter. */
#include "ct.h"

/* The kernel's options for its conntrack kfuncs, in their 16-byte form,
 * which carries a conntrack zone (6.18 here takes it; older kernels take
 * only the 12-byte form, without a zone). */
struct bpf_ct_opts {
	__s32 netns_id;
	__s32 error;
	__u8 l4proto;
	__u8 dir;
	__u16 ct_zone_id;
	__u8 ct_zone_dir;
	__u8 reserved[3];
};

/* cilium/ebpf matches a kfunc's prototype against the kernel's kind by
 * kind, so these are structs, not forward declarations; of an nf_conn,
 * only its expiry (in jiffies) is read, relocated to the kernel's layout. */
struct nf_conn {
	__u32 timeout;
} __attribute__((preserve_access_index));
struct nf_conn___init {
	__u32 timeout;
};

extern unsigned long CONFIG_HZ __kconfig;

extern struct nf_conn *bpf_skb_ct_lookup(struct __sk_buff *skb, struct bpf_sock_tuple *tuple, __u32 tuple__sz,
					 struct bpf_ct_opts *opts, __u32 opts__sz) __ksym;
extern struct nf_conn___init *bpf_skb_ct_alloc(struct __sk_buff *skb, struct bpf_sock_tuple *tuple, __u32 tuple__sz,
					       struct bpf_ct_opts *opts, __u32 opts__sz) __ksym;
extern struct nf_conn *bpf_ct_insert_entry(struct nf_conn___init *ct) __ksym;
extern void bpf_ct_set_timeout(struct nf_conn___init *ct, __u32 timeout_ms) __ksym;
extern int bpf_ct_change_timeout(struct nf_conn *ct, __u32 timeout_ms) __ksym;
extern void bpf_ct_release(struct nf_conn *ct) __ksym;

/* What a run found; a tc program's return value. */
#define CTB_HIT 1  /* tracked already */
#define CTB_NEW 2  /* not tracked; tracked now */
#define CTB_FAIL 3 /* not tracked and could not be (see last_error) */
#define CTB_BAD 4  /* not TCP over IPv4 */

#define CTB_TIMEOUT_S 300 /* Courier's idle timeout */
#define CTB_TIMEOUT_NS (CTB_TIMEOUT_S * 1000000000ULL)

/* Set by the measurement between runs. */
__u32 zone = 1;	 /* the protected port: ct_key.zone, the kernel's ct zone */
__u32 vary;	 /* each run a new connection */
__u32 seq;	 /* the next new connection's number */
__s32 last_error; /* the kernel's error for the last CTB_FAIL */

static __always_inline int packet(struct __sk_buff *skb, struct tuple *t)
{
	*t = tuple_of(skb);
	if (!t->ok || t->proto != IPPROTO_TCP)
		return 0;
	if (vary) {
		__u32 n = seq++;
		t->sport = bpf_htons((__u16)n);
		t->saddr ^= bpf_htonl(((n >> 16) + 1) << 8); /* never the frame's own */
	}
	return 1;
}

SEC("tc")
int parse_only(struct __sk_buff *skb)
{
	struct tuple t;
	return packet(skb, &t) ? CTB_HIT : CTB_BAD;
}

SEC("tc")
int lru_track(struct __sk_buff *skb)
{
	struct tuple t;
	if (!packet(skb, &t))
		return CTB_BAD;
	__u64 now = bpf_ktime_get_coarse_ns(); /* as sg_conn */
	struct ct_key k = ct_key_of(zone, &t, 0);
	struct ct_entry *e = bpf_map_lookup_elem(&ct_v1, &k);
	if (!e) {
		k = ct_key_of(zone, &t, 1);
		e = bpf_map_lookup_elem(&ct_v1, &k);
	}
	if (e && (__s64)(now - e->seen_ns) < (__s64)CTB_TIMEOUT_NS) {
		if ((__s64)(now - e->seen_ns) > 1000000000LL) /* as ct_touch */
			e->seen_ns = now;
		return CTB_HIT;
	}
	struct ct_entry *ne = scratch_of(SCRATCH_CT);
	if (!ne)
		return CTB_FAIL;
	*ne = (struct ct_entry){.seen_ns = now};
	k = ct_key_of(zone, &t, 0);
	last_error = bpf_map_update_elem(&ct_v1, &k, ne, BPF_ANY);
	return last_error ? CTB_FAIL : CTB_NEW;
}

SEC("tc")
int kfunc_track(struct __sk_buff *skb)
{
	struct tuple t;
	if (!packet(skb, &t))
		return CTB_BAD;
	struct bpf_sock_tuple bt = {};
	bt.ipv4.saddr = t.saddr;
	bt.ipv4.daddr = t.daddr;
	bt.ipv4.sport = t.sport;
	bt.ipv4.dport = t.dport;
	struct bpf_ct_opts opts = {.netns_id = BPF_F_CURRENT_NETNS, .l4proto = IPPROTO_TCP, .ct_zone_id = zone};
	struct nf_conn *ct = bpf_skb_ct_lookup(skb, &bt, sizeof(bt.ipv4), &opts, sizeof(opts));
	if (ct) {
		/* As ct_touch: netfilter never sees the packet, so the idle
		 * timeout is restarted here, at most once a second. */
		__s32 left = ct->timeout - (__u32)bpf_jiffies64();
		if (left < (__s32)((CTB_TIMEOUT_S - 1) * CONFIG_HZ))
			bpf_ct_change_timeout(ct, CTB_TIMEOUT_S * 1000);
		bpf_ct_release(ct);
		return CTB_HIT;
	}
	opts.error = 0;
	struct nf_conn___init *n = bpf_skb_ct_alloc(skb, &bt, sizeof(bt.ipv4), &opts, sizeof(opts));
	if (!n) {
		last_error = opts.error;
		return CTB_FAIL;
	}
	bpf_ct_set_timeout(n, CTB_TIMEOUT_S * 1000);
	ct = bpf_ct_insert_entry(n);
	if (!ct) {
		last_error = -17; /* EEXIST, or the table is full */
		return CTB_FAIL;
	}
	bpf_ct_release(ct);
	return CTB_NEW;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
