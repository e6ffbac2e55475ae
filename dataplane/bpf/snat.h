/* Distributed SNAT: a port without an EIP, in a VPC with SNAT addresses,
 * reaches the outside from its own host, its source translated to one of
 * the VPC's addresses and a port of a block allocated to the port
 * (SNAT_Block, southd's). No NAT box: gateways hold no state, and tunnel
 * what comes back for an address and a port to the host of the block's
 * port (gw_snat_v1, gateway.h), whose reverse map gives the connection's
 * own end.
 *
 * A connection's first packet takes the next port of the port's blocks
 * in turn (a cursor per port, snat_use_v1) that is free for its remote
 * end: free when snat_rev_v1 has no entry for (address, port, remote
 * address, remote port, protocol), so one port serves connections to
 * different remotes, and the insertion itself (BPF_NOEXIST) settles a
 * race between CPUs. Ports are taken in order, not by random probing, so
 * a port comes round again only after every other port of the blocks
 * did, and a block hostd appends (the newest last) is reached only once
 * the cursor has gone through the older ones, which gives the gateways
 * time to learn it. When the next port is taken, the search strides a
 * block and a port at a time, so it looks into every block; a
 * connection fails (drop snat_exhausted) only when SNAT_TRIES ports so
 * tried are all in use with the same remote end. hostd counts use
 * (snat_use_v1) and asks for another block long before (hostd/snat.go);
 * it also removes idle connections (dataplane/snatgc.go), so the maps
 * are plain hashes, never LRU: a live connection is never evicted.
 *
 * The maps are pinned: connections survive a hostd restart. */
#ifndef COURIER_SNAT_H
#define COURIER_SNAT_H

#include "common.h"
#include "ct.h"
#include "eip.h"
#include "stats.h"

#define SNAT_MAX_BLOCKS 64
#define EEXIST 17
#define TCP_ACK 0x10
#define SNAT_TRIES 32
#define SNAT_TOUCH_NS (1000ULL * 1000000ULL) /* seen_ns is refreshed at most once a second */

struct snat_block {
	__be32 addr;
	__u32 lo; /* first port, host byte order */
};

/* A local port translated by SNAT: its blocks, all of 1 << shift ports. */
struct snat_port {
	__u32 vpc;
	__u32 net;   /* the addresses' external network (hostd's number, eip_gws_v1) */
	__be32 addr; /* the port's own address, the one translated */
	__u32 shift;
	__u32 n; /* blocks */
	__u32 pad;
	struct snat_block blocks[SNAT_MAX_BLOCKS];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32); /* ifindex */
	__type(value, struct snat_port);
} snat_ports_v1 SEC(".maps");

/* A port's use of its blocks, written only here (hostd creates it). */
struct snat_use {
	__u32 cursor; /* the next port to try, an index into the blocks' ports */
	__u32 pad;
	__u64 allocs; /* connections given a port */
	__u64 fails;  /* connections that found none */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32); /* ifindex */
	__type(value, struct snat_use);
} snat_use_v1 SEC(".maps");

/* A port's quota, written only by hostd: its allocs may grow to this
 * before a sweep counts its live connections again and moves it on (the
 * live connections plus the allocations since stay within the port's
 * share of the host's table). No entry: no quota. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32); /* ifindex */
	__type(value, __u64);
} snat_quota_v1 SEC(".maps");

#define SNAT_F_CLOSING 0x1 /* a FIN or a reset was seen: forgotten sooner */

/* A connection as its port sent it; ICMP echo: port is the identifier,
 * rport 0. */
struct snat_fkey {
	__u32 vpc;
	__be32 addr;
	__be32 remote;
	__be16 port;
	__be16 rport;
	__u8 proto;
	__u8 pad[3];
};

struct snat_fval {
	__be32 ext;
	__be16 eport;
	__u8 flags;
	__u8 pad;
	__u32 ifindex;
	__u32 pad2;
	__u64 seen_ns;
};

/* The same connection as it comes back, translated. */
struct snat_rkey {
	__be32 ext;
	__be32 remote;
	__be16 eport;
	__be16 rport;
	__u8 proto;
	__u8 pad[3];
};

struct snat_rval {
	__u32 vpc;
	__be32 addr;
	__be16 port;
	__u8 flags;
	__u8 pad;
	__u32 ifindex;
	__u64 seen_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 262144);
	__type(key, struct snat_fkey);
	__type(value, struct snat_fval);
} snat_fwd_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 262144);
	__type(key, struct snat_rkey);
	__type(value, struct snat_rval);
} snat_rev_v1 SEC(".maps");

/* On a gateway: its networks' SNAT addresses (the log2 of their block
 * size), and where each block's port is. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __be32);
	__type(value, __u32);
} gw_snat_addrs_v1 SEC(".maps");

struct gw_snat_key {
	__be32 addr;
	__u32 lo; /* the block's first port, host byte order */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 262144);
	__type(key, struct gw_snat_key);
	__type(value, struct gw_eip);
} gw_snat_v1 SEC(".maps");

struct snat_scratch {
	struct snat_rkey rk;
	struct snat_rval rv;
	struct snat_fval fv;
};

_Static_assert(sizeof(struct snat_scratch) <= SCRATCH_SIZE, "in SCRATCH_SNAT");

#define ICMP_ECHOREPLY 0
#define ICMP_ECHO 8

static __always_inline int icmp_is_error(__u8 type)
{
	return type == ICMP_DEST_UNREACH || type == ICMP_SOURCE_QUENCH || type == ICMP_REDIRECT ||
	       type == ICMP_TIME_EXCEEDED || type == ICMP_PARAMETERPROB;
}

/* csum_replace2 is csum_replace4 for a 16-bit field. */
static __always_inline __u16 csum_replace2(__u16 check, __be16 from, __be16 to)
{
	__u32 s = (__u16)~check;
	s += (__u16)~from;
	s += to;
	return ~csum_fold32(s);
}

/* nat_port rewrites a 16-bit port (or ICMP echo identifier) at l4 + off
 * from "from" to "to", with the L4 checksum (ICMP's has no pseudo header;
 * a UDP checksum of 0 stays 0). Returns 0, or -1 if the kernel refused. */
static __always_inline int nat_port(struct __sk_buff *skb, __u32 l4, __u8 proto, __u32 off, __be16 from, __be16 to)
{
	if (from == to)
		return 0;
	__u32 coff = l4 + 2; /* ICMP */
	__u64 flags = 2;
	if (proto == IPPROTO_TCP) {
		coff = l4 + 16;
	} else if (proto == IPPROTO_UDP) {
		coff = l4 + 6;
		flags |= BPF_F_MARK_MANGLED_0;
	}
	if (bpf_l4_csum_replace(skb, coff, from, to, flags) < 0)
		return -1;
	return bpf_skb_store_bytes(skb, l4 + off, &to, 2, 0) < 0 ? -1 : 0;
}

/* nat_icmp_inner_port rewrites the source port (or echo identifier) of
 * the packet an ICMP error at l4 quotes, from "from" to "to", with the
 * quoted L4 checksum when the quote holds it and the ICMP checksum. */
static __always_inline int nat_icmp_inner_port(struct __sk_buff *skb, __u32 l4, __be16 from, __be16 to)
{
	struct iphdr inner;
	if (from == to || bpf_skb_load_bytes(skb, l4 + 8, &inner, sizeof(inner)) < 0 || inner.ihl < 5)
		return 0;
	__u32 il4 = l4 + 8 + inner.ihl * 4;
	__u32 poff = il4, coff = il4 + 16;
	if (inner.protocol == IPPROTO_UDP) {
		coff = il4 + 6;
	} else if (inner.protocol == IPPROTO_ICMP) {
		poff = il4 + 4;
		coff = il4 + 2;
	} else if (inner.protocol != IPPROTO_TCP) {
		return 0;
	}
	if (bpf_skb_store_bytes(skb, poff, &to, 2, 0) < 0 || bpf_l4_csum_replace(skb, l4 + 2, from, to, 2) < 0)
		return -1;
	__u16 old;
	if (bpf_skb_load_bytes(skb, coff, &old, 2) < 0 || (inner.protocol == IPPROTO_UDP && old == 0))
		return 0; /* not quoted, or no checksum */
	__u16 new = csum_replace2(old, from, to);
	if (inner.protocol == IPPROTO_UDP && new == 0)
		new = 0xffff;
	if (bpf_skb_store_bytes(skb, coff, &new, 2, 0) < 0 || bpf_l4_csum_replace(skb, l4 + 2, old, new, 2) < 0)
		return -1;
	return 0;
}

/* snat_touch notes that a connection's entry was used now, and closing
 * when flags say so. */
static __always_inline void snat_touch(__u64 *seen, __u8 *flags, __u64 now, __u8 closing)
{
	if (now - *seen > SNAT_TOUCH_NS)
		*seen = now;
	if (closing && !(*flags & SNAT_F_CLOSING))
		*flags |= SNAT_F_CLOSING;
}

/* snat_new maps a new connection to the next free port of the port's
 * blocks. Returns 0, or the drop reason. */
static __always_inline __u32 snat_new(__u32 ifindex, struct snat_fkey *fk, __u64 now, __u8 flags, struct snat_fval *out)
{
	struct snat_port *p = bpf_map_lookup_elem(&snat_ports_v1, &ifindex);
	struct snat_use *u = bpf_map_lookup_elem(&snat_use_v1, &ifindex);
	if (!p || !u)
		return DROP_SNAT_EXHAUSTED;
	__u32 shift = p->shift & 15;
	__u32 n = p->n > SNAT_MAX_BLOCKS ? SNAT_MAX_BLOCKS : p->n;
	__u32 total = n << shift;
	if (!total) {
		__sync_fetch_and_add(&u->fails, 1);
		return DROP_SNAT_EXHAUSTED;
	}
	__u64 *quota = bpf_map_lookup_elem(&snat_quota_v1, &ifindex);
	if (quota && u->allocs >= *quota)
		return DROP_SNAT_QUOTA; /* not a failure: more blocks would not help */
	/* The entries are built in a per-CPU scratch value, not on the
	 * stack, which the driver's frame and this one's share. */
	struct snat_scratch *sc = scratch_of(SCRATCH_SNAT);
	if (!sc)
		return DROP_SNAT_EXHAUSTED;
	struct snat_rkey *rk = &sc->rk;
	*rk = (struct snat_rkey){.remote = fk->remote, .rport = fk->rport, .proto = fk->proto};
	sc->rv = (struct snat_rval){.vpc = fk->vpc, .addr = fk->addr, .port = fk->port, .flags = flags, .ifindex = ifindex, .seen_ns = now};
	/* Not atomic: two CPUs reading one value try the same port, and
	 * the insertion lets one have it. */
	__u32 start = u->cursor;
	if (start >= total)
		start = 0;
	__u32 stride = (1U << shift) + 1;
	for (int i = 0; i < SNAT_TRIES; i++) {
		__u32 idx = (start + i * stride) % total;
		__u32 b = (idx >> shift) & (SNAT_MAX_BLOCKS - 1);
		rk->ext = p->blocks[b].addr;
		rk->eport = bpf_htons((__u16)(p->blocks[b].lo + (idx & ((1U << shift) - 1))));
		long err = bpf_map_update_elem(&snat_rev_v1, rk, &sc->rv, BPF_NOEXIST);
		if (err == -EEXIST)
			continue; /* in use with this remote: the next */
		if (err < 0)
			return DROP_SNAT_TABLE_FULL; /* not the port's failure: more blocks would not help */
		out->ext = rk->ext;
		out->eport = rk->eport;
		sc->fv = (struct snat_fval){.ext = rk->ext, .eport = rk->eport, .flags = flags, .ifindex = ifindex, .seen_ns = now};
		if (bpf_map_update_elem(&snat_fwd_v1, fk, &sc->fv, BPF_NOEXIST) < 0) {
			/* Another CPU mapped the connection first (or the map
			 * is full): give the port back, take its mapping. */
			bpf_map_delete_elem(&snat_rev_v1, rk);
			struct snat_fval *f = bpf_map_lookup_elem(&snat_fwd_v1, fk);
			/* keeps clang from offsetting f before the check */
			asm volatile("" : "+r"(f));
			if (!f)
				break;
			out->ext = f->ext;
			out->eport = f->eport;
			return 0;
		}
		u->cursor = idx + 1;
		__sync_fetch_and_add(&u->allocs, 1);
		count(STAT_SNAT_NEW);
		return 0;
	}
	__sync_fetch_and_add(&u->fails, 1);
	return DROP_SNAT_EXHAUSTED;
}

/* l4_of reads the IPv4 header at ETH_HLEN; returns the L4 offset, or 0. */
static __always_inline __u32 l4_of(struct __sk_buff *skb, struct iphdr *ip)
{
	if (bpf_skb_load_bytes(skb, ETH_HLEN, ip, sizeof(*ip)) < 0 || ip->ihl < 5)
		return 0;
	return ETH_HLEN + ip->ihl * 4;
}

#endif
