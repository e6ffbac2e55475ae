/* Fragments of datagrams translated by SNAT. Only a datagram's first
 * fragment carries its ports, by which SNAT maps a connection (and a
 * gateway finds a block's host); the later ones carry the addresses,
 * the protocol and the datagram's identification only. So whoever maps
 * a first fragment remembers, for that datagram (source, destination,
 * identification, protocol), what it decided, and its later fragments
 * are translated (their IPv4 header only) or tunnelled the same way:
 *
 *   - a port's host, sending: the SNAT address the first got
 *     (snat_frags_v1, outbound key: the port's address);
 *   - a port's host, receiving: the port's address (inbound key: the
 *     SNAT address);
 *   - a gateway, either way: the block's host (gw_frags_v1);
 *   - a host delivering a reply to a hairpin from a port without an EIP:
 *     the EIP the port called (hairpin.h).
 *
 * Entries are per datagram, not per connection, and only as old as
 * FRAG_TTL_NS (the kernel's reassembly timeout, ipfrag_time): a gateway
 * that dies loses at most the datagrams in flight through it, which its
 * death loses anyway. A later fragment that arrives before its first, or
 * after its entry was evicted, is dropped (snat_untracked on a host,
 * gw_no_block on a gateway), as Linux's and Cilium's NAT do. All
 * fragments of a datagram take the same gateway both ways: the flow hash
 * of a fragment, first or later, covers its addresses only (the kernel's
 * dissector does not parse a first fragment's ports), here for the
 * host's choice and upstream for ECMP. LRU maps: an old datagram's entry
 * is what goes when they are full. */
#ifndef COURIER_FRAG_H
#define COURIER_FRAG_H

#include "common.h"
#include "eip.h"

#define FRAG_TTL_NS (30ULL * 1000000000ULL)
#define IP_MF_BIT 0x2000

struct frag_key {
	__u32 vpc; /* 0 on a gateway */
	__be32 saddr;
	__be32 daddr;
	__be16 id;
	__u8 proto;
	__u8 dir; /* FRAG_OUT, FRAG_IN */
};

struct frag_addr {
	__be32 addr;
	__u32 pad;
	__u64 ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct frag_key);
	__type(value, struct frag_addr);
} snat_frags_v1 SEC(".maps");

struct frag_gw {
	struct gw_eip e;
	__u64 ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct frag_key);
	__type(value, struct frag_gw);
} gw_frags_v1 SEC(".maps");

/* A first fragment: more fragments follow, offset 0. */
static __always_inline int first_frag(const struct iphdr *ip)
{
	return (ip->frag_off & bpf_htons(IP_MF_BIT)) && !(ip->frag_off & bpf_htons(IP_OFFSET_MASK));
}

static __always_inline int later_frag(const struct iphdr *ip)
{
	return (ip->frag_off & bpf_htons(IP_OFFSET_MASK)) != 0;
}

#define FRAG_OUT 1     /* a key as a datagram leaves (the untranslated source) */
#define FRAG_IN 2      /* as it comes back (the untranslated destination) */
#define FRAG_HAIRPIN 3 /* a reply to a hairpin from a port without an EIP (hairpin.h) */

static __always_inline struct frag_key frag_key_of(__u32 vpc, const struct iphdr *ip, __u8 dir)
{
	struct frag_key k = {.vpc = vpc, .saddr = ip->saddr, .daddr = ip->daddr, .id = ip->id, .proto = ip->protocol, .dir = dir};
	return k;
}

/* frag_remember records what a first fragment's address became. */
static __always_inline void frag_remember(const struct frag_key *k, __be32 addr)
{
	struct frag_addr v = {.addr = addr, .ns = bpf_ktime_get_ns()};
	bpf_map_update_elem(&snat_frags_v1, k, &v, BPF_ANY);
}

/* frag_recall is what a later fragment's first fragment got, or 0. */
static __always_inline __be32 frag_recall(const struct frag_key *k)
{
	struct frag_addr *v = bpf_map_lookup_elem(&snat_frags_v1, k);
	if (!v || bpf_ktime_get_ns() - v->ns > FRAG_TTL_NS)
		return 0;
	return v->addr;
}

/* gw_frag_note remembers e as the block of the datagram ip heads. */
static __always_inline void gw_frag_note(const struct iphdr *ip, __u8 dir, const struct gw_eip *e)
{
	struct frag_key k = frag_key_of(0, ip, dir);
	struct frag_gw v = {.e = *e, .ns = bpf_ktime_get_ns()};
	bpf_map_update_elem(&gw_frags_v1, &k, &v, BPF_ANY);
}

/* gw_frag finds the block a gateway tunnels a SNAT fragment by: a later
 * fragment's, as its first fragment's was found (NULL: none); for a
 * first fragment, the one found (e) is remembered. */
static __always_inline struct gw_eip *gw_frag(const struct iphdr *ip, __u8 dir, struct gw_eip *e)
{
	struct frag_key k = frag_key_of(0, ip, dir);
	if (later_frag(ip)) {
		struct frag_gw *v = bpf_map_lookup_elem(&gw_frags_v1, &k);
		if (!v || bpf_ktime_get_ns() - v->ns > FRAG_TTL_NS)
			return NULL;
		return &v->e;
	}
	if (e && first_frag(ip))
		gw_frag_note(ip, dir, e);
	return e;
}

#endif
