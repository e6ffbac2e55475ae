/* Encapsulating in the program (#21): an IPv4 packet for another host
 * gets its VXLAN headers here and leaves straight out of the underlay
 * interface, where the collect-metadata device would look its route up
 * again (bpf_skb_set_tunnel_key asks for no cached route) and run the
 * host's UDP and IP output path for every packet. The headers are the
 * device's (ECN copied, DF clear, TTL 64, UDP checksum zero, GBP as
 * vxlan_build_gbp_hdr writes it, the source port by udp_flow_src_port's
 * formula); only the IP ID differs (random here, a hashed counter
 * there). The kernel's neighbour code fills in the link layer
 * (bpf_redirect_neigh), so a neighbour is resolved and refreshed as for
 * any packet the host sends. Anything this cannot send (not IPv4, a VLAN
 * tag, no route out of the underlay interface, a packet or segment over
 * the MTU, one already encapsulated) goes through the device, which
 * fragments and reports as before. The route lookup's answer is kept
 * per VTEP (encap_routes) until the routes change or a second passes
 * (cfg_route_keep_ns). */
#ifndef COURIER_ENCAP_H
#define COURIER_ENCAP_H

#include <linux/udp.h>

#include "common.h"
#include "config.h"

#define VXLAN_PORT 4789
#define VXLAN_HLEN 8
#define ENCAP_LEN (sizeof(struct iphdr) + sizeof(struct udphdr) + VXLAN_HLEN + ETH_HLEN)
#define ENCAP_FLAGS                                                                                      \
	(BPF_F_ADJ_ROOM_FIXED_GSO | BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 | BPF_F_ADJ_ROOM_ENCAP_L4_UDP |         \
	 BPF_F_ADJ_ROOM_ENCAP_L2_ETH | BPF_F_ADJ_ROOM_ENCAP_L2(ETH_HLEN))
/* The GBP field's flags, as the kernel keeps them (VXLAN_GBP_*), and
 * where they go on the wire (the VXLAN header's first two bytes). */
#define GBP_DONT_LEARN (1U << 22)
#define GBP_POLICY_APPLIED (1U << 19)
#define VXLAN_F_GBP 0x80
#define VXLAN_F_VNI 0x08
#define VXLAN_GBP_D 0x40
#define VXLAN_GBP_A 0x08
#ifndef AF_INET
#define AF_INET 2
#define AF_INET6 10
#endif

/* A route lookup's answer for one VTEP, kept so that the packets after
 * the first do not pay for bpf_fib_lookup (nearly 30% of the programs'
 * time for a packet they encapsulate, DEVELOPERS.md). */
struct encap_route {
	__u64 expires; /* bpf_ktime_get_coarse_ns */
	__u32 vtep;    /* whose: slots are shared (encap_routes) */
	__u32 gen;     /* cfg_route_gen when looked up */
	/* The longest packet not GSO (outer IP length) the route was seen
	 * to carry: a longer one is looked up again, as the lookup checks
	 * the route's MTU. 0: only GSO packets so far, whose segments fits()
	 * checks. */
	__u32 ok_len;
	__u32 ifindex; /* the egress interface */
	__u32 family;  /* the next hop's: AF_INET or AF_INET6 */
	__u32 nh[4];   /* the next hop, as struct bpf_redir_neigh holds it */
};

/* A struct bpf_fib_lookup, which bpf2go cannot render (its unions). */
struct encap_scratch {
	__u64 b[8];
};

/* The route lookup's parameters: 64 bytes a program's stack, which the
 * stages' calls share (512 bytes), cannot spare (SCRATCH_FIB). */
_Static_assert(sizeof(struct encap_scratch) <= SCRATCH_SIZE, "in SCRATCH_FIB");

/* Kept routes: a direct-mapped cache per CPU, a VTEP's slot chosen by
 * its hash. Per CPU, each slot has one writer, the program running on
 * that CPU, which is also its only reader: no entry changes under a
 * reader (a shared LRU hash reuses an element at once, while another
 * CPU may be reading it), no lock, no helper call to keep one. That
 * holds because a tc program runs with softirqs off: nothing else runs
 * on its CPU until it ends; not on PREEMPT_RT, where hostd keeps nothing
 * (cfg_route_keep_ns 0). Two VTEPs sharing a slot take turns. Each CPU
 * looks a VTEP up once per cfg_route_keep_ns, when told, and for a
 * longer packet. 2,048 slots of 48 bytes: 96 KiB a CPU. Not pinned: a
 * new load starts empty. */
#define ENCAP_ROUTE_SLOTS 2048
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ENCAP_ROUTE_SLOTS);
	__type(key, __u32);
	__type(value, struct encap_route);
} encap_routes SEC(".maps");

/* encap_route finds the underlay's next hop for vtep (host order), as a
 * packet arriving on the VXLAN device would be forwarded (the kernel
 * looks up only for devices that forward: hostd turns forwarding on for
 * the VXLAN device, which passes nothing to the host's stack), and
 * checks a packet that is not GSO, len bytes with its outer headers,
 * against the route's MTU. The neighbour is left to bpf_redirect_neigh.
 * On success fib holds the egress interface and the next hop (ipv4_dst,
 * or ipv6_dst with family AF_INET6: an IPv6 next hop). */
static __always_inline long encap_route(struct __sk_buff *skb, __u32 vtep, __u32 len, struct bpf_fib_lookup *fib)
{
	fib->family = AF_INET;
	fib->l4_protocol = IPPROTO_UDP;
	fib->dport = bpf_htons(VXLAN_PORT);
	fib->ipv4_src = bpf_htonl(cfg_local_vtep);
	fib->ipv4_dst = bpf_htonl(vtep);
	fib->ifindex = cfg_vxlan_ifindex;
	fib->tot_len = len;
	return bpf_fib_lookup(skb, fib, sizeof(*fib), BPF_FIB_LOOKUP_SKIP_NEIGH);
}

/* encap_next_hop is vtep's route: its kept entry while it is current
 * (the same cfg_route_gen, younger than cfg_route_keep_ns, seen to carry
 * a packet this long), else a new lookup, kept. NULL: no route the
 * programs can use (none, or the MTU is exceeded); the device sends the
 * packet. */
static __always_inline struct encap_route *encap_next_hop(struct __sk_buff *skb, __u32 vtep)
{
	__u32 gen = cfg_route_gen;
	__u64 now = bpf_ktime_get_coarse_ns();
	__u32 len = skb->gso_size ? 0 : skb->len - ETH_HLEN + ENCAP_LEN;
	__u32 slot = (vtep * 2654435761U) >> 21; /* Fibonacci hashing: 11 bits */
	_Static_assert(ENCAP_ROUTE_SLOTS == 1 << 11, "the slot is 11 bits");
	struct encap_route *r = bpf_map_lookup_elem(&encap_routes, &slot);
	if (!r)
		return NULL;
	if (r->vtep == vtep && r->gen == gen && now < r->expires && len <= r->ok_len)
		return r;
	struct bpf_fib_lookup *fib = scratch_of(SCRATCH_FIB);
	_Static_assert(sizeof(struct encap_scratch) == sizeof(*fib), "encap_scratch holds a bpf_fib_lookup");
	if (!fib)
		return NULL;
	__builtin_memset(fib, 0, sizeof(*fib));
	if (encap_route(skb, vtep, len, fib) != BPF_FIB_LKUP_RET_SUCCESS)
		return NULL;
	r->expires = now + cfg_route_keep_ns;
	r->vtep = vtep;
	r->gen = gen;
	r->ok_len = len;
	r->ifindex = fib->ifindex;
	r->family = fib->family;
	if (fib->family == AF_INET6) {
		__builtin_memcpy(r->nh, fib->ipv6_dst, sizeof(r->nh));
	} else {
		__builtin_memset(r->nh, 0, sizeof(r->nh));
		r->nh[0] = fib->ipv4_dst;
	}
	return r;
}

/* fits: a GSO packet's segments, each with outer headers, fit the
 * underlay: no longer than the VXLAN device's MTU (the underlay's less
 * the overhead). A guest chooses its segment size (a tap's virtio
 * header), and port_sec bounds it only for simple headers; the device's
 * path segments and fragments what does not fit. */
static __always_inline int fits(struct __sk_buff *skb)
{
	__u32 mtu = 0;
	return !skb->gso_size || bpf_check_mtu(skb, cfg_vxlan_ifindex, &mtu, 0, BPF_MTU_CHK_SEGS) == BPF_MTU_CHK_RET_SUCCESS;
}

/* src_port is udp_flow_src_port's: the inner flow's hash over this
 * host's local port range, as the device picks it, so that a flow's
 * packets sent either way take the same underlay path. */
static __always_inline __be16 src_port(__u32 hash)
{
	hash ^= hash << 16;
	return bpf_htons((__u16)((((__u64)hash * (cfg_sport_max - cfg_sport_min)) >> 32) + cfg_sport_min));
}

/* outer_tos: the inner packet's ECN, as the kernel's tunnels copy it. */
static __always_inline __u8 outer_tos(struct iphdr *inner)
{
	__u8 ecn = inner->tos & 3;
	return ecn == 3 ? 2 : ecn; /* CE leaves as ECT(0) */
}

/* encap_fill writes the outer headers in front of the inner frame, whose
 * Ethernet header adjust_room left at the front, ENCAP_LEN bytes from
 * where it belongs. */
static __always_inline int encap_fill(struct __sk_buff *skb, __u32 vtep, __u8 tos, __u32 vni, __u32 gbp, __u32 hash)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + ETH_HLEN;
	struct udphdr *udp = (void *)(ip + 1);
	__u8 *vx = (void *)(udp + 1);
	struct ethhdr *inner = (void *)(vx + VXLAN_HLEN);
	if ((void *)(inner + 1) > data_end)
		return -1;
	*inner = *eth;
	/* The addresses are the neighbour's to write; but a multicast
	 * destination left here (the inner frame's, a guest's choice) would
	 * make bpf_redirect_neigh drop the packet, unsaid. */
	__builtin_memset(eth->h_dest, 0, ETH_ALEN);
	eth->h_proto = bpf_htons(ETH_P_IP);
	__u32 len = skb->len;
	ip->version = 4;
	ip->ihl = 5;
	ip->tos = tos;
	ip->tot_len = bpf_htons(len - ETH_HLEN);
	ip->id = bpf_get_prandom_u32();
	ip->frag_off = 0;
	ip->ttl = cfg_tunnel_ttl;
	ip->protocol = IPPROTO_UDP;
	ip->check = 0;
	ip->saddr = bpf_htonl(cfg_local_vtep);
	ip->daddr = bpf_htonl(vtep);
	ip->check = csum16(ip, data_end, sizeof(*ip));
	udp->source = src_port(hash);
	udp->dest = bpf_htons(VXLAN_PORT);
	udp->len = bpf_htons(len - ETH_HLEN - sizeof(struct iphdr));
	udp->check = 0;
	vx[0] = VXLAN_F_VNI | (gbp ? VXLAN_F_GBP : 0);
	vx[1] = (gbp & GBP_DONT_LEARN ? VXLAN_GBP_D : 0) | (gbp & GBP_POLICY_APPLIED ? VXLAN_GBP_A : 0);
	*(__be16 *)(vx + 2) = bpf_htons(gbp & 0xffff);
	*(__be32 *)(vx + 4) = bpf_htonl(vni << 8);
	return 0;
}

/* encap_out sends an IPv4 frame to vtep in vni with gbp, out of the
 * underlay interface. Returns the redirect, TC_ACT_SHOT when the frame
 * was changed and could not be finished, or -1: nothing was changed and
 * the device must send it. A function of its own (not inlined), so that
 * its locals do not grow the frame of every program that sends. */
static __attribute__((noinline)) long encap_out(struct __sk_buff *skb, __u32 vtep, __u32 vni, __u32 gbp)
{
	if (!cfg_encap || cfg_trace)
		return -1;
	/* Read once: hostd may change it meanwhile. */
	__u32 underlay = cfg_underlay_ifindex;
	/* A VLAN tag would go on the outer frame: the device puts it inside. */
	if (!underlay || skb->protocol != bpf_htons(ETH_P_IP) || skb->vlan_present)
		return -1;
	struct encap_route *rt = encap_next_hop(skb, vtep);
	if (!rt || rt->ifindex != underlay || !fits(skb))
		return -1;
	struct bpf_redir_neigh nh = {.nh_family = rt->family};
	__builtin_memcpy(nh.ipv6_nh, rt->nh, sizeof(nh.ipv6_nh));
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr *ip = data + ETH_HLEN;
	if ((void *)(ip + 1) > data_end)
		return -1;
	__u8 tos = outer_tos(ip);
	__u32 hash = bpf_get_hash_recalc(skb);
	if (bpf_skb_adjust_room(skb, ENCAP_LEN, BPF_ADJ_ROOM_MAC, ENCAP_FLAGS) < 0)
		return -1;
	if (encap_fill(skb, vtep, tos, vni, gbp, hash) < 0)
		return TC_ACT_SHOT;
	return bpf_redirect_neigh(underlay, &nh, sizeof(nh), 0);
}

#endif
