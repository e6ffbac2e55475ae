/* STAGE_ICMP_ERR: a VM's IPv4 packet that cannot go on (its TTL would
 * reach zero, the VPC has no route for it, it is too big for the path)
 * is turned into the ICMP error that says so, from the gateway of the
 * VM's vxnet, back to the VM: traceroute shows the gateway as a hop,
 * and path MTU discovery learns the overlay MTU. As RFC 792 has it, the
 * error carries the offending IP header and the first 8 bytes after it,
 * so that the VM's stack finds the socket. No error about an ICMP error,
 * a fragment after the first, or a packet from no one (RFC 1812); at most
 * the port's budget of errors a second; otherwise the packet is dropped
 * under its reason. */
#ifndef COURIER_STAGE_ICMP_ERR_H
#define COURIER_STAGE_ICMP_ERR_H

#include "pipeline.h"
#include "budget.h"

#define ICMP_ERR_LEN 28 /* outer IPv4 header and ICMP header */

struct icmp4_err {
	__u8 type;
	__u8 code;
	__sum16 check;
	__be16 unused;
	__be16 mtu; /* fragmentation needed: the next hop's MTU */
};

/* icmp_for maps a reason to the ICMP error that reports it, if the
 * vxnet's flows say to. */
static __always_inline int icmp_for(struct pctx *c, __u8 *type, __u8 *code)
{
	__u32 f = c->vx.flags;
	switch (c->reason) {
	case DROP_TTL_EXCEEDED:
		*type = 11, *code = 0;
		return f & VX_F_ICMP_TTL;
	case DROP_NO_ROUTE:
		*type = 3, *code = 0; /* network unreachable */
		return f & VX_F_ICMP_UNREACH;
	case DROP_OVERSIZE:
		*type = 3, *code = 4; /* fragmentation needed */
		return f & VX_F_ICMP_FRAG;
	}
	return 0;
}

/* may_answer: an error may be sent about this packet. */
static __always_inline int may_answer(struct iphdr *ip, void *data_end)
{
	if (ip->saddr == 0 || (ip->saddr & bpf_htonl(0xf0000000)) == bpf_htonl(0xe0000000) || ip->saddr == 0xffffffff)
		return 0; /* from no one, multicast or broadcast */
	if (ip->frag_off & bpf_htons(0x1fff))
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


__attribute__((noinline)) int stage_icmp_err(struct __sk_buff *skb, struct pctx *c)
{
	if (!c) /* the verifier checks a global function alone: c is never NULL */
		return V_DROP;
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr *ip = data + ETH_HLEN;
	__u8 type = 0, code = 0;
	if ((void *)(ip + 1) > data_end || !icmp_for(c, &type, &code) || !may_answer(ip, data_end))
		return V_DROP; /* the reason stands */
	if (!budget_take(c->ifindex, BUDGET_ICMP, cfg_icmp_cost_ns, cfg_icmp_burst_ns)) {
		count(STAT_ICMP_LIMITED);
		c->hit = HIT_BUDGET;
		return V_DROP;
	}
	__u32 ihl = ip->ihl * 4;
	if (ihl < 20 || ihl > 60)
		return V_DROP;
	__be32 to = ip->saddr;
	__u8 vm[6];
	struct ethhdr *eth = data;
	__builtin_memcpy(vm, eth->h_source, 6);
	/* Room for the new IPv4 and ICMP headers after the Ethernet header,
	 * then the offending packet cut to its IP header and 8 bytes. */
	__u32 quoted = ihl + 8;
	__u32 len = ETH_HLEN + ICMP_ERR_LEN + quoted;
	if (bpf_skb_adjust_room(skb, ICMP_ERR_LEN, BPF_ADJ_ROOM_MAC, 0) < 0 ||
	    bpf_skb_change_tail(skb, len, 0) < 0 || bpf_skb_pull_data(skb, len) < 0)
		return V_DROP;
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	eth = data;
	struct iphdr *oip = (void *)(eth + 1);
	struct icmp4_err *icmp = (void *)(oip + 1);
	if ((void *)(icmp + 1) > data_end)
		return V_DROP;
	__builtin_memcpy(eth->h_dest, vm, 6);
	__builtin_memcpy(eth->h_source, c->vx.gw_mac, 6);
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
	oip->saddr = c->vx.gw_ip;
	oip->daddr = to;
	oip->check = csum16(oip, data_end, sizeof(*oip));
	icmp->type = type;
	icmp->code = code;
	icmp->check = 0;
	icmp->unused = 0;
	icmp->mtu = type == 3 && code == 4 ? bpf_htons(c->port.mtu) : 0;
	/* The checksum covers the ICMP header and what it quotes. */
	__u16 sum = csum16(icmp, data_end, sizeof(*icmp) + quoted);
	icmp = (void *)(long)skb->data + ETH_HLEN + sizeof(struct iphdr);
	if ((void *)(icmp + 1) > (void *)(long)skb->data_end)
		return V_DROP;
	icmp->check = sum;
	count_drop(c->reason); /* the packet itself went no further */
	count(STAT_ICMP_ERROR);
	c->tflags |= TRF_ANSWER;
	return V_REPLY;
}

#endif
