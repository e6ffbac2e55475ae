/* EIPs: public addresses bound 1:1 to ports, translated on the port's
 * host, statelessly (no connection state anywhere: a packet is
 * translated by its address alone, so any gateway can carry any packet
 * and a host's restart loses nothing).
 *
 * On a port's host: eip_local_v1 (EIP -> the port's address), read by
 * eip_in for what gateways tunnel in; eip_ports_v1 (port -> its EIP and
 * network) and eip_gws_v1 (network -> its gateways), read by eip_out for
 * what the port sends outside the VPC.
 *
 * On a gateway: gw_eips_v1 (EIP -> the host and vxnet of its port), read
 * by the uplink program (gateway.h). */
#ifndef COURIER_EIP_H
#define COURIER_EIP_H

#include "common.h"
#include "hubs.h"

#define MAX_GATEWAYS 8

struct eip_local {
	__be32 addr;   /* the port's address */
	__u32 vpc;     /* its VPC */
	__u32 ifindex; /* the port */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __be32); /* EIP */
	__type(value, struct eip_local);
} eip_local_v1 SEC(".maps");

struct eip_port {
	__be32 eip;
	__u32 net; /* its external network (hostd's number) */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32); /* ifindex */
	__type(value, struct eip_port);
} eip_ports_v1 SEC(".maps");

struct eip_gws {
	__u32 n;
	__u32 vtep[MAX_GATEWAYS]; /* host byte order */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32); /* network */
	__type(value, struct eip_gws);
} eip_gws_v1 SEC(".maps");

/* The gateways of this host's EIPs' networks (their VTEPs, host byte
 * order): the hosts besides hubs whose probe replies are taken. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u32);
} gw_vteps_v1 SEC(".maps");

static __always_inline int is_gateway(__u32 vtep)
{
	return bpf_map_lookup_elem(&gw_vteps_v1, &vtep) != NULL;
}

struct gw_eip {
	__u32 vtep; /* the port's host, host byte order */
	__u32 vni;  /* the port's vxnet */
	__u8 mac[6];    /* the port's MAC */
	__u8 gw_mac[6]; /* its VPC's gateway MAC */
	__be32 nexthop; /* its network's upstream router; 0: gw_cfg's */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __be32); /* EIP */
	__type(value, struct gw_eip);
} gw_eips_v1 SEC(".maps");

struct gw_cfg {
	__u32 uplink;  /* ifindex; 0: this chassis is not a gateway */
	__be32 nexthop; /* for networks that name none; 0: route by the gateway's own table */
	__be32 addr;   /* the uplink's address, the source of its ICMP errors; 0: the packet's destination */
	__u32 mtu;     /* the overlay's: longer packets from upstream are cut or refused (mtu.h); 0: none */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gw_cfg);
} gw_cfg_v1 SEC(".maps");

/* gw_enabled: this chassis is a gateway (it answers hosts' probes). */
static __always_inline int gw_enabled(void)
{
	__u32 zero = 0;
	struct gw_cfg *g = bpf_map_lookup_elem(&gw_cfg_v1, &zero);
	return g && g->uplink;
}

/* csum_fold32 folds a 32-bit one's complement sum into 16 bits. */
static __always_inline __u16 csum_fold32(__u32 s)
{
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)s;
}

/* csum_replace4 is RFC 1624's HC' = ~(~HC + ~m + m') for a 32-bit field
 * changed from "from" to "to", all as they lie in the packet. */
static __always_inline __u16 csum_replace4(__u16 check, __be32 from, __be32 to)
{
	__u32 s = (__u16)~check;
	s += (__u16)~(from & 0xffff) + (__u16)~(from >> 16);
	s += (to & 0xffff) + (to >> 16);
	return ~csum_fold32(s);
}

#define ICMP_DEST_UNREACH 3
#define ICMP_SOURCE_QUENCH 4
#define ICMP_REDIRECT 5
#define ICMP_TIME_EXCEEDED 11
#define ICMP_PARAMETERPROB 12
#define IP_OFFSET_MASK 0x1fff

/* nat_icmp_inner translates the packet an ICMP error quotes, at l4 + 8:
 * the address that is "from" on the inner side (its destination when the
 * outer source is translated, its source otherwise) becomes "to", with the
 * inner IPv4 checksum and, when the quote holds it, the inner TCP or UDP
 * checksum. The inner header's own checksum compensates its address in
 * the ICMP checksum; the inner L4 checksum's change does not, and is
 * added. Returns 0, or -1 if the kernel refused a write. */
static __always_inline int nat_icmp_inner(struct __sk_buff *skb, __u32 l4, __be32 from, __be32 to, int snat)
{
	__u32 in = l4 + 8;
	struct iphdr inner;
	if (bpf_skb_load_bytes(skb, in, &inner, sizeof(inner)) < 0)
		return 0; /* too short to quote a header: left as it is */
	__u32 aoff = snat ? __builtin_offsetof(struct iphdr, daddr) : __builtin_offsetof(struct iphdr, saddr);
	__be32 have = snat ? inner.daddr : inner.saddr;
	if (have != from || inner.ihl < 5)
		return 0;
	if (bpf_skb_store_bytes(skb, in + aoff, &to, 4, 0) < 0)
		return -1;
	__u16 ic = csum_replace4(inner.check, from, to);
	if (bpf_skb_store_bytes(skb, in + __builtin_offsetof(struct iphdr, check), &ic, 2, 0) < 0)
		return -1;
	if (bpf_ntohs(inner.frag_off) & IP_OFFSET_MASK)
		return 0;
	__u32 il4 = in + inner.ihl * 4;
	__u32 coff;
	if (inner.protocol == IPPROTO_UDP)
		coff = il4 + 6;
	else if (inner.protocol == IPPROTO_TCP)
		coff = il4 + 16;
	else
		return 0;
	__u16 old;
	if (bpf_skb_load_bytes(skb, coff, &old, 2) < 0)
		return 0; /* not quoted */
	if (inner.protocol == IPPROTO_UDP && old == 0)
		return 0; /* no checksum */
	__u16 new = csum_replace4(old, from, to);
	if (inner.protocol == IPPROTO_UDP && new == 0)
		new = 0xffff;
	if (bpf_skb_store_bytes(skb, coff, &new, 2, 0) < 0)
		return -1;
	if (bpf_l4_csum_replace(skb, l4 + 2, old, new, 2) < 0)
		return -1;
	return 0;
}

/* nat_rewrite translates one address of the IPv4 packet at ETH_HLEN, 1:1:
 * the source (snat) or the destination, from "from" to "to". The IPv4
 * checksum is updated, and unless the packet is a later fragment (which
 * has no L4 header) the TCP or UDP checksum (its pseudo header; a UDP
 * checksum of 0 stays 0), or an ICMP error's quoted packet. The helpers
 * update checksums incrementally and keep a CHECKSUM_PARTIAL packet's
 * partial sum right. Returns 0, or -1 (malformed or refused). */
static __always_inline int nat_rewrite(struct __sk_buff *skb, __be32 from, __be32 to, int snat)
{
	struct iphdr ip;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)) < 0 || ip.ihl < 5)
		return -1;
	__u32 l4 = ETH_HLEN + ip.ihl * 4;
	if (!(bpf_ntohs(ip.frag_off) & IP_OFFSET_MASK)) {
		if (ip.protocol == IPPROTO_TCP) {
			if (bpf_l4_csum_replace(skb, l4 + 16, from, to, BPF_F_PSEUDO_HDR | 4) < 0)
				return -1;
		} else if (ip.protocol == IPPROTO_UDP) {
			if (bpf_l4_csum_replace(skb, l4 + 6, from, to, BPF_F_PSEUDO_HDR | BPF_F_MARK_MANGLED_0 | 4) < 0)
				return -1;
		} else if (ip.protocol == IPPROTO_ICMP) {
			__u8 type;
			if (bpf_skb_load_bytes(skb, l4, &type, 1) < 0)
				return -1;
			if (type == ICMP_DEST_UNREACH || type == ICMP_SOURCE_QUENCH || type == ICMP_REDIRECT ||
			    type == ICMP_TIME_EXCEEDED || type == ICMP_PARAMETERPROB) {
				if (nat_icmp_inner(skb, l4, from, to, snat) < 0)
					return -1;
			}
		}
	}
	__u32 aoff = ETH_HLEN + (snat ? __builtin_offsetof(struct iphdr, saddr) : __builtin_offsetof(struct iphdr, daddr));
	if (bpf_l3_csum_replace(skb, ETH_HLEN + __builtin_offsetof(struct iphdr, check), from, to, 4) < 0)
		return -1;
	if (bpf_skb_store_bytes(skb, aoff, &to, 4, 0) < 0)
		return -1;
	return 0;
}

/* pick_gateway chooses one of a network's gateways by flow hash: the
 * upstream's ECMP spreads what comes in the same way, and every gateway
 * serves all of the network, so any choice is right. A gateway silent to
 * this host's probes (hub_seen_v1, as hubs) is passed over for the next
 * one that answers; if none does, the hashed one. */
static __always_inline __u32 pick_gateway(__u32 net, __u32 hash)
{
	struct eip_gws *g = bpf_map_lookup_elem(&eip_gws_v1, &net);
	if (!g || g->n == 0)
		return 0;
	__u32 n = g->n > MAX_GATEWAYS ? MAX_GATEWAYS : g->n;
	/* The masks are no-ops the verifier needs (as in pick_hub); the
	 * empty asm keeps clang from removing them. */
	__u32 first = hash % n;
	asm volatile("" : "+r"(first));
	first &= MAX_GATEWAYS - 1;
	__u64 now = bpf_ktime_get_ns();
#pragma unroll
	for (__u32 k = 0; k < MAX_GATEWAYS; k++) {
		__u32 i = first + k;
		if (i >= n)
			i -= n;
		i &= MAX_GATEWAYS - 1;
		if (k < n && hub_up(g->vtep[i], now))
			return g->vtep[i];
	}
	return g->vtep[first];
}

#endif
