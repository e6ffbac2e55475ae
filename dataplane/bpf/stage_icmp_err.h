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
#include "mtu.h"

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
	__u8 vm[6];
	__builtin_memcpy(vm, ((struct ethhdr *)data)->h_source, 6);
	if (icmp_err_build(skb, type, code, c->port.mtu, c->vx.gw_ip, vm, c->vx.gw_mac) < 0)
		return V_DROP;
	count_drop(c->reason); /* the packet itself went no further */
	count(STAT_ICMP_ERROR);
	c->tflags |= TRF_ANSWER;
	return V_REPLY;
}

#endif
