/* Encapsulating in the program (#21): an IPv4 packet for another host
 * gets its VXLAN headers here and leaves straight out of the underlay
 * device, where the collect-metadata device would look its route up
 * again (bpf_skb_set_tunnel_key asks for no cached route), allocate,
 * and run the host's IP output path for every packet. The wire format
 * is the device's: the same outer header fields, GBP as the device
 * writes it, UDP checksum zero, the source port from the inner flow's
 * hash. Anything this cannot send (not IPv4, no route through the
 * underlay device, a neighbour not yet resolved, an outer packet over
 * the device's MTU) goes through the device, which resolves, fragments
 * and reports as before. */
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
/* The GBP field's flags, as the kernel keeps them (VXLAN_GBP_*). */
#define GBP_DONT_LEARN (1U << 22)
#define GBP_POLICY_APPLIED (1U << 19)
#define VXLAN_F_GBP 0x80
#define VXLAN_F_VNI 0x08

/* A struct bpf_fib_lookup, which bpf2go cannot render (its unions). */
struct encap_scratch {
	__u64 b[8];
};

/* The route lookup's parameters: 64 bytes a program's stack, which the
 * stages' calls share (512 bytes), cannot spare. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct encap_scratch);
} encap_fib SEC(".maps");

/* encap_route finds the underlay's next hop for vtep (host order), as a
 * packet arriving on the VXLAN device would be forwarded (the kernel
 * looks up only for devices that forward: hostd turns forwarding on for
 * the VXLAN device, which passes nothing to the host's stack), and
 * checks the outer packet's length against the next hop's MTU. */
static __always_inline long encap_route(struct __sk_buff *skb, __u32 vtep, struct bpf_fib_lookup *fib)
{
	fib->family = 2; /* AF_INET */
	fib->ipv4_src = bpf_htonl(cfg_local_vtep);
	fib->ipv4_dst = bpf_htonl(vtep);
	fib->ifindex = cfg_vxlan_ifindex;
	/* A GSO packet leaves as segments the port's MTU already bounds;
	 * any other is checked whole, with its outer headers. */
	fib->tot_len = skb->gso_size ? 0 : skb->len - ETH_HLEN + ENCAP_LEN;
	return bpf_fib_lookup(skb, fib, sizeof(*fib), 0);
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
static __always_inline int encap_fill(struct __sk_buff *skb, struct bpf_fib_lookup *fib, __u8 tos, __u32 vni,
				      __u32 gbp, __u32 hash)
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
	/* byte by byte: the lookup's MACs are not 4-byte aligned */
	__builtin_memcpy(eth->h_dest, fib->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, fib->smac, ETH_ALEN);
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
	ip->saddr = fib->ipv4_src;
	ip->daddr = fib->ipv4_dst;
	ip->check = csum16(ip, data_end, sizeof(*ip));
	/* the kernel's udp_flow_src_port over its default range */
	udp->source = bpf_htons((__u16)((((__u64)hash * (61000 - 32768)) >> 32) + 32768));
	udp->dest = bpf_htons(VXLAN_PORT);
	udp->len = bpf_htons(len - ETH_HLEN - sizeof(struct iphdr));
	udp->check = 0;
	vx[0] = VXLAN_F_VNI | (gbp ? VXLAN_F_GBP : 0);
	vx[1] = (gbp & GBP_DONT_LEARN ? 0x40 : 0) | (gbp & GBP_POLICY_APPLIED ? 0x08 : 0);
	*(__be16 *)(vx + 2) = bpf_htons(gbp & 0xffff);
	*(__be32 *)(vx + 4) = bpf_htonl(vni << 8);
	return 0;
}

/* encap_out sends an IPv4 frame to vtep in vni with gbp, out of the
 * underlay device. Returns the redirect, TC_ACT_SHOT when the frame was
 * changed and could not be finished, or -1: nothing was changed and the
 * device must send it. A function of its own (not inlined), so that its
 * locals do not grow the frame of every program that sends. */
static __attribute__((noinline)) long encap_out(struct __sk_buff *skb, __u32 vtep, __u32 vni, __u32 gbp)
{
	if (cfg_trace || !cfg_underlay_ifindex || skb->protocol != bpf_htons(ETH_P_IP))
		return -1;
	__u32 zero = 0;
	struct bpf_fib_lookup *fib = bpf_map_lookup_elem(&encap_fib, &zero);
	_Static_assert(sizeof(struct encap_scratch) == sizeof(*fib), "encap_scratch holds a bpf_fib_lookup");
	if (!fib)
		return -1;
	__builtin_memset(fib, 0, sizeof(*fib));
	if (encap_route(skb, vtep, fib) != BPF_FIB_LKUP_RET_SUCCESS || fib->ifindex != cfg_underlay_ifindex)
		return -1;
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr *ip = data + ETH_HLEN;
	if ((void *)(ip + 1) > data_end)
		return -1;
	__u8 tos = outer_tos(ip);
	__u32 hash = bpf_get_hash_recalc(skb);
	if (bpf_skb_adjust_room(skb, ENCAP_LEN, BPF_ADJ_ROOM_MAC, ENCAP_FLAGS) < 0)
		return -1;
	if (encap_fill(skb, fib, tos, vni, gbp, hash) < 0)
		return TC_ACT_SHOT;
	return bpf_redirect(cfg_underlay_ifindex, 0);
}

#endif
