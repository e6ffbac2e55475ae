/* STAGE_SG_INGRESS: what a local port receives, from another local port
 * or from the tunnel: a tracked connection passes; a new one needs an
 * ingress rule of one of the port's groups, the sender's group known by
 * the identity it carries (sg.h). A sender that could not decide an
 * egress rule naming this port's group (GBP without the policy applied
 * bit) has that rule checked here first. What the internet sends (the
 * reserved SG_ID_INTERNET, from a gateway) has no egress rules to check,
 * and only a rule naming a prefix admits it. */
#ifndef COURIER_STAGE_SG_INGRESS_H
#define COURIER_STAGE_SG_INGRESS_H

#include "pipeline.h"
#include "sg.h"

/* sg_sender is the identity the packet's sender carries. The internet's
 * counts only from a gateway of this host's EIPs' networks: from another
 * host it is taken for unknown (0), which is worth as much (no rule
 * naming a group admits either), so that what a misbehaving host sends
 * is never counted as the internet's. */
static __always_inline __u32 sg_sender(struct pctx *c)
{
	__u32 sender = c->gbp & GBP_ID_MASK;
	if (sender > SG_ID_MAX_ALLOCATED && (c->from_port || !is_gateway(c->src)))
		return 0;
	return sender;
}

__attribute__((noinline)) int stage_sg_ingress(struct __sk_buff *skb, struct pctx *c)
{
	if (!c) /* the verifier checks a global function alone: c is never NULL */
		return V_DROP;
	if (c->d.kind != DEST_LOCAL)
		return V_OUTPUT;
	if (!vpc_of(c) || !(c->vx.vpce.flags & VPC_F_SG_INGRESS))
		return V_OUTPUT;
	struct tuple t = tuple_of(skb);
	if (!t.ok)
		return V_OUTPUT;
	__u32 zone = c->d.ifindex;
	if (t.proto == IPPROTO_ICMP && ct_related(skb, zone)) {
		count(STAT_CT_RELATED);
		c->hit = HIT_CT; /* about a tracked connection */
		return V_OUTPUT;
	}
	__u32 id = port_identity(zone);
	__u32 sender = sg_sender(c);
	if (sender && sender <= SG_ID_MAX_ALLOCATED && !c->from_port && !(c->gbp & GBP_POLICY_APPLIED)) {
		struct ct_key k = ct_key_of(zone, &t, 0);
		if (!bpf_map_lookup_elem(&ct_v1, &k) &&
		    sg_check(c->vpc, sender, id, t.daddr, sg_what(SG_DIR_EGRESS, t.proto, bpf_ntohs(t.dport))) != SG_ALLOW) {
			c->hit = HIT_SG_NONE;
			sg_count_denial(c->vpc, sender, SG_DIR_EGRESS);
			return drop_for(c, DROP_SG_EGRESS);
		}
	}
	__u8 flags = 0;
	if (sg_conn(c, &t, zone, id, SG_DIR_INGRESS, sender, &flags) == SG_DENY) {
		sg_count_denial(c->vpc, id, SG_DIR_INGRESS);
		if (sender == SG_ID_INTERNET) /* and what the internet was refused */
			sg_count_denial(c->vpc, SG_ID_INTERNET, SG_DIR_INGRESS);
		return drop_for(c, DROP_SG_INGRESS);
	}
	return V_OUTPUT;
}

#endif
