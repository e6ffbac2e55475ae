/* STAGE_SG_EGRESS: what a port sends, once a stage decided where it goes:
 * a tracked connection passes; a new one needs an egress rule of one of
 * the port's groups (sg.h). The port's identity goes with the packet in
 * the VXLAN header; a local destination meets sg_ingress next. What goes
 * out through an EIP goes to the internet (SG_ID_INTERNET), which no
 * rule naming a group allows. */
#ifndef COURIER_STAGE_SG_EGRESS_H
#define COURIER_STAGE_SG_EGRESS_H

#include "pipeline.h"
#include "sg.h"

static __always_inline int sg_egress_pass(struct pctx *c)
{
	if (c->d.kind == DEST_LOCAL)
		return next_stage(c, STAGE_SG_INGRESS);
	return V_OUTPUT;
}

__attribute__((noinline)) int stage_sg_egress(struct __sk_buff *skb, struct pctx *c)
{
	if (!c) /* the verifier checks a global function alone: c is never NULL */
		return V_DROP;
	__u32 id = port_identity(c->ifindex);
	c->gbp = id ? id | GBP_POLICY_APPLIED : 0;
	if (!vpc_of(c) || !(c->vx.vpce.flags & VPC_F_SG_EGRESS))
		return sg_egress_pass(c);
	struct tuple t = tuple_of(skb);
	if (!t.ok)
		return sg_egress_pass(c); /* ARP: never subject to groups */
	/* The other end's identity: the internet's for what leaves through
	 * the port's EIP or SNAT, or is a hairpin (the VM called an EIP,
	 * with an EIP of its own or without), so that a rule naming a group
	 * never lets it go (no gateway would check it); a local port's;
	 * else unknown. */
	__u32 remote = c->snat_to || c->dnat_to || c->snat == SNAT_OUT ? SG_ID_INTERNET : c->d.kind == DEST_LOCAL ? port_identity(c->d.ifindex) : 0;
	if (t.proto == IPPROTO_ICMP && ct_related(skb, c->ifindex)) {
		count(STAT_CT_RELATED);
		c->hit = HIT_CT; /* about a tracked connection */
		return sg_egress_pass(c);
	}
	__u8 flags = 0;
	int v = sg_conn(c, &t, c->ifindex, id, SG_DIR_EGRESS, remote, &flags);
	if (v == SG_DENY) {
		sg_count_denial(c->vpc, id, SG_DIR_EGRESS);
		return drop_for(c, DROP_SG_EGRESS);
	}
	if (v == SG_PENDING && c->d.kind != DEST_LOCAL)
		c->gbp = id; /* the receiver checks the rule naming its group */
	return sg_egress_pass(c);
}

#endif
