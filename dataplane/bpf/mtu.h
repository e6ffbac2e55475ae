/* Packets too big for the link they are headed for: a VM's that the
 * overlay cannot carry (stage_port_sec), and what a gateway's uplink
 * brings in for a VM when the upstream's MTU is larger than the
 * overlay's (gateway.h). One with DF set is answered with ICMP
 * fragmentation needed, naming the MTU (RFC 1191), and dropped. On a
 * gateway, one without DF is cut into fragments (RFC 791) as a router
 * would: its first fragment goes on at once, and the rest of the
 * datagram is cloned back, whole and marked, into the ingress of the
 * device it came by, where the program cuts the next fragment off it
 * (frag_rest) and so on. No fragment is longer than the MTU, and every
 * fragment goes through the same lookups a fragment from upstream does. */
#ifndef COURIER_MTU_H
#define COURIER_MTU_H

#include "common.h"
#include "stats.h"
#include "budget.h"
#include "frag.h"

#define ICMP_ERR_LEN 28 /* outer IPv4 header and ICMP header */
#define IP_DF_BIT 0x4000
/* The mark of a datagram's rest, back at the ingress of the device it
 * came by, to be cut into its next fragment. Never seen outside. */
#define FRAG_REST_MARK 0xc0de0f4aU
/* The most one bpf_skb_adjust_room call may remove (it refuses 4,096 and
 * more): a multiple of 8, as fragment offsets are. */
#define FRAG_CUT_MAX 4088

struct icmp4_err {
	__u8 type;
	__u8 code;
	__sum16 check;
	__be16 unused;
	__be16 mtu; /* fragmentation needed: the next hop's MTU */
};

/* too_big: a frame, or the segments of a GSO packet, longer than mtu at
 * layer 3. */
static __always_inline int too_big(struct __sk_buff *skb, __u32 mtu, __be16 proto)
{
	if (skb->gso_size == 0)
		return skb->len > mtu + ETH_HLEN;
	if (proto != bpf_htons(ETH_P_IP))
		return 0;
	/* The headers are read in place: a GSO packet's are in its linear
	 * part, and a helper call costs tens of ns on every packet. */
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__u8 *h = data;
	if ((void *)(h + ETH_HLEN + 20 + 20) > data_end)
		return 0;
	struct iphdr *ip = (void *)(h + ETH_HLEN);
	if (ip->ihl != 5)
		return 0; /* rare: judged by the packets' MSS (mss_clamp) */
	__u32 l4 = 8;
	if (ip->protocol == IPPROTO_TCP)
		l4 = (h[ETH_HLEN + 20 + 12] >> 4) * 4;
	return skb->gso_size + 20 + l4 > mtu;
}

/* may_answer: an ICMP error may be sent about this packet. */
static __always_inline int may_answer(struct iphdr *ip, void *data_end)
{
	if (ip->saddr == 0 || (ip->saddr & bpf_htonl(0xf0000000)) == bpf_htonl(0xe0000000) || ip->saddr == 0xffffffff)
		return 0; /* from no one, multicast or broadcast */
	if (ip->frag_off & bpf_htons(IP_OFFSET_MASK))
		return 0; /* not the first fragment */
	if (ip->protocol == IPPROTO_ICMP) {
		__u8 *t = (void *)ip + ip->ihl * 4;
		if ((void *)(t + 1) > data_end)
			return 0;
		/* Only about queries: echo, timestamp, information. */
		return *t == 8 || *t == 13 || *t == 15;
	}
	return 1;
}

/* icmp_err_build turns skb's frame (Ethernet, then the offending IPv4
 * packet) into the ICMP error type/code about it, from saddr back to the
 * packet's source, between Ethernet addresses src and dst. As RFC 792
 * has it, the error quotes the offending IP header and the first 8 bytes
 * after it, so that the sender's stack finds the socket. mtu is what a
 * fragmentation needed error names. Returns 0, or -1 when the packet
 * could not be reshaped (then it is to be dropped). */
static __always_inline int icmp_err_build(struct __sk_buff *skb, __u8 type, __u8 code, __u16 mtu, __be32 saddr,
					  const __u8 *dst, const __u8 *src)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr *ip = data + ETH_HLEN;
	if ((void *)(ip + 1) > data_end)
		return -1;
	__u32 ihl = ip->ihl * 4;
	if (ihl < 20 || ihl > 60)
		return -1;
	__be32 to = ip->saddr;
	/* Room for the new IPv4 and ICMP headers after the Ethernet header,
	 * then the offending packet cut to its IP header and 8 bytes. */
	__u32 quoted = ihl + 8;
	__u32 len = ETH_HLEN + ICMP_ERR_LEN + quoted;
	if (bpf_skb_adjust_room(skb, ICMP_ERR_LEN, BPF_ADJ_ROOM_MAC, 0) < 0 ||
	    bpf_skb_change_tail(skb, len, 0) < 0 || bpf_skb_pull_data(skb, len) < 0)
		return -1;
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *oip = (void *)(eth + 1);
	struct icmp4_err *icmp = (void *)(oip + 1);
	if ((void *)(icmp + 1) > data_end)
		return -1;
	__builtin_memcpy(eth->h_dest, dst, 6);
	__builtin_memcpy(eth->h_source, src, 6);
	eth->h_proto = bpf_htons(ETH_P_IP);
	oip->version = 4;
	oip->ihl = 5;
	oip->tos = 0xc0; /* internetwork control, as Linux sends its errors */
	oip->tot_len = bpf_htons(ICMP_ERR_LEN + quoted);
	oip->id = 0;
	oip->frag_off = 0;
	oip->ttl = 64;
	oip->protocol = IPPROTO_ICMP;
	oip->check = 0;
	oip->saddr = saddr;
	oip->daddr = to;
	oip->check = csum16(oip, data_end, sizeof(*oip));
	icmp->type = type;
	icmp->code = code;
	icmp->check = 0;
	icmp->unused = 0;
	icmp->mtu = type == 3 && code == 4 ? bpf_htons(mtu) : 0;
	/* The checksum covers the ICMP header and what it quotes. */
	__u16 sum = csum16(icmp, data_end, sizeof(*icmp) + quoted);
	icmp = (void *)(long)skb->data + ETH_HLEN + sizeof(struct iphdr);
	if ((void *)(icmp + 1) > (void *)(long)skb->data_end)
		return -1;
	icmp->check = sum;
	return 0;
}

/* frag_payload: what each fragment carries for mtu, a multiple of 8. */
static __always_inline __u32 frag_payload(__u32 mtu)
{
	return (mtu - 20) & ~7U;
}

/* frag_header sets skb's IPv4 header (options-free, after Ethernet) to a
 * fragment's length and flags/offset, and its checksum. */
static __always_inline int frag_header(struct __sk_buff *skb, __u32 len, __u16 frag_off)
{
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr *ip = (void *)(long)skb->data + ETH_HLEN;
	if ((void *)(ip + 1) > data_end)
		return -1;
	ip->tot_len = bpf_htons(len);
	ip->frag_off = bpf_htons(frag_off);
	ip->check = 0;
	ip->check = csum16(ip, data_end, sizeof(*ip));
	return 0;
}

/* frag_front: skb, an IPv4 datagram (or fragment) without options and
 * without DF, too big for mtu, becomes its first fragment; its rest goes,
 * whole and marked, back to the ingress of the device it came by. The
 * rest may be lost under memory pressure, as a fragment may on any
 * link. Returns 0, or -1 (drop it). */
static __always_inline int frag_front(struct __sk_buff *skb, __u32 mtu)
{
	struct iphdr ip;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)) < 0 || ip.ihl != 5)
		return -1;
	__u32 keep = frag_payload(mtu);
	if (bpf_ntohs(ip.tot_len) <= 20 + keep)
		return -1;
	skb->mark = FRAG_REST_MARK;
	long err = bpf_clone_redirect(skb, skb->ifindex, BPF_F_INGRESS);
	skb->mark = 0;
	if (err < 0 || bpf_skb_change_tail(skb, ETH_HLEN + 20 + keep, 0) < 0)
		return -1;
	return frag_header(skb, 20 + keep, (bpf_ntohs(ip.frag_off) & IP_OFFSET_MASK) | IP_MF_BIT);
}

/* frag_rest: skb, a datagram's rest that frag_front sent around, loses
 * the payload its earlier fragment carried: it is now the next fragment
 * (maybe still too big: then frag_front cuts it in turn). Returns 0, or
 * -1 (drop it). */
static __always_inline int frag_rest(struct __sk_buff *skb, __u32 mtu)
{
	skb->mark = 0;
	struct iphdr ip;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)) < 0 || ip.ihl != 5)
		return -1;
	__u32 cut = frag_payload(mtu);
	__u32 tot = bpf_ntohs(ip.tot_len);
	if (tot <= 20 + cut || skb->len < ETH_HLEN + tot)
		return -1;
	__u32 left = cut;
	for (int i = 0; i < 3 && left > 0; i++) { /* a 9,000-byte MTU needs three */
		__u32 n = left > FRAG_CUT_MAX ? FRAG_CUT_MAX : left;
		if (bpf_skb_adjust_room(skb, -(__s32)n, BPF_ADJ_ROOM_NET, 0) < 0)
			return -1;
		left -= n;
	}
	if (left)
		return -1;
	__u16 fo = bpf_ntohs(ip.frag_off);
	return frag_header(skb, tot - cut, (fo & IP_MF_BIT) | ((fo & IP_OFFSET_MASK) + cut / 8));
}

/* mtu_exceeded deals with skb, a packet come in by skb->ifindex from
 * outside the overlay, for a VM, and longer than mtu. Without DF (and
 * options, and GSO) it becomes its first fragment, its rest sent around
 * (frag_front), and 0 is returned: the caller sends it on. With DF it is
 * answered, within the device's ICMP budget, with fragmentation needed
 * from address from, sent back out of the device to the router it came
 * from: the verdict is returned. Otherwise TC_ACT_SHOT. */
static __always_inline int mtu_exceeded(struct __sk_buff *skb, __u32 mtu, __be32 from)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return TC_ACT_SHOT;
	int df = ip->frag_off & bpf_htons(IP_DF_BIT);
	if (!df && skb->gso_size == 0 && ip->ihl == 5) {
		if (frag_front(skb, mtu) == 0) {
			count(STAT_FRAGMENTED);
			return 0;
		}
		count_drop(DROP_MTU_EXCEEDED);
		return TC_ACT_SHOT;
	}
	count_drop(DROP_MTU_EXCEEDED); /* the packet itself goes no further */
	if (!df || !may_answer(ip, data_end))
		return TC_ACT_SHOT;
	if (!budget_take(skb->ifindex, BUDGET_ICMP, cfg_icmp_cost_ns, cfg_icmp_burst_ns)) {
		count(STAT_ICMP_LIMITED);
		return TC_ACT_SHOT;
	}
	__u8 router[6], self[6];
	__builtin_memcpy(router, eth->h_source, 6);
	__builtin_memcpy(self, eth->h_dest, 6);
	__u32 out = skb->ifindex;
	if (icmp_err_build(skb, 3, 4, mtu, from, router, self) < 0)
		return TC_ACT_SHOT;
	count(STAT_ICMP_ERROR);
	test_record(out, 0);
	return bpf_redirect(out, 0);
}

#endif
