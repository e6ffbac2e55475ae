/* The pipeline driver: runs a direction's stages one after the other,
 * each a function of its own (stage_NAME.h) called by number
 * (dispatch.h, generated), and carries out the verdict of the last one.
 * Stages decide; only the driver sends, counts drops and writes trace
 * records, so that every packet leaves through one path.
 *
 * Stages are global BPF functions (bpf-to-bpf calls), not tail calls:
 * the verifier checks each once, whatever calls it, and a call costs a
 * few nanoseconds where a tail call costs a program switch and its state
 * a round trip through a map (measured: DEVELOPERS.md). */
#ifndef COURIER_PIPELINE_H
#define COURIER_PIPELINE_H

#include "common.h"
#include "config.h"
#include "stats.h"
#include "ports.h"
#include "vxnets.h"
#include "tunnel.h"
#include "encap.h"
#include "trace.h"
#include "monitor.h"
#include "eip.h"
#include "endpoints.h"
#include "profile.h"

#define DEST_LOCAL 1  /* a port of this host */
#define DEST_REMOTE 2 /* another host */
#define DEST_HUB 3    /* a hub: the destination is not known here */
#define DEST_PHYS 4   /* out of the underlay NIC, from a physical EIP (phys.h) */

#define SNAT_OUT 1 /* eip_out: translate by SNAT when sending */
#define SNAT_IN 2  /* eip_in: translate back before the next stage */

/* A resolved destination. */
struct dest {
	__u8 kind;
	__u8 hit;  /* found by ip_route's fast path: what found it (HIT_*), for dst_lookup */
	__u16 pad;
	__u32 ifindex; /* DEST_LOCAL */
	__u32 vtep;    /* DEST_REMOTE, DEST_HUB */
	__u32 vni;
	__u8 mac[6];
	__u16 flags; /* DEST_LOCAL: LEP_F_* of its interface */
};

/* local_dest makes d the local VM interface l. */
static __always_inline void local_dest(struct dest *d, const struct local_ep *l)
{
	d->kind = DEST_LOCAL;
	d->ifindex = l->ifindex;
	d->vni = l->vni;
	d->flags = l->flags;
	mac_copy(d->mac, l->mac);
}

/* What the stages of one packet share. Plain values only (copies of map
 * entries, no pointers): stages are global functions, which the verifier
 * checks on their own. */
struct pctx {
	__u32 ifindex; /* from a port: its host-side ifindex */
	__u32 src;     /* from the tunnel: the sending host, host byte order */
	__u32 vni;     /* the packet's vxnet */
	__u32 vpc;     /* its VPC */
	__u32 next;    /* V_NEXT: the stage to run next */
	__u32 reason;  /* V_DROP: why */
	__u32 hit;     /* trace: what decided (HIT_*) */
	__u32 tflags;  /* trace: what was done besides (TRF_*) */
	__be32 target; /* the address resolved: the destination or a next hop */
	__u32 dvni;    /* the vxnet the packet goes on in */
	__u8 have_vpc;  /* vx.vpce holds the VPC's entry (vpc_of) */
	__u8 from_port; /* the packet came from a VM port */
	__u8 sg_done;   /* the security group stages ran (or are running) */
	__u8 snat;      /* SNAT_OUT, SNAT_IN: what the driver translates (nat_snat.h) */
	__u32 gbp;       /* VXLAN GBP: the sender's identity and flags (sg.h) */
	__be32 snat_from; /* eip_out: translate the source from this ... */
	__be32 snat_to;   /* ... to this (the EIP) when sending */
	__be32 dnat_to;   /* eip_out, a hairpin: the destination becomes this after sg_egress (hairpin.h) */
	struct port port;
	struct vxnet vx; /* and in it, once vpc_of says so, the VPC's entry */
	struct dest d; /* V_OUTPUT: where the packet goes */
};

/* vpc_of gives the packet's VPC entry (c->vx.vpce), read once per
 * packet: the copy its vxnet's entry carries (vxnets.h), else from the
 * VPCs' map. */
static __always_inline int vpc_of(struct pctx *c)
{
	if (c->have_vpc)
		return 1;
	__u32 id = c->vpc;
	if (!(c->vx.vpce.dflags & VPC_D_ENTRY) || c->vx.vpc != id) {
		struct vpc *v = bpf_map_lookup_elem(&vpcs_v2, &id);
		if (!v)
			return 0;
		c->vx.vpce = *v;
	}
	c->have_vpc = 1;
	return 1;
}

/* routed_hop makes the packet one routed hop: TTL-1, the IPv4 checksum
 * with it, and, given a gateway MAC, from that MAC. Returns 0 (callers
 * check for -1, which it no longer gives: a failed checksum helper).
 *
 * The checksum is updated in place, incrementally (RFC 1624, eqn. 3):
 * bpf_l3_csum_replace cost a helper call, 50 ns a routed packet on AMD
 * EPYC with SRSO (TestVMPathCost, #21), for the same arithmetic; the
 * TTL is written in place already, so the packet is writable here. */
static __always_inline int routed_hop(struct __sk_buff *skb, struct pctx *c, struct ethhdr *eth, struct iphdr *ip, const __u8 *gw_mac)
{
	__u16 old = *(__u16 *)&ip->ttl;
	ip->ttl--;
	__u16 new = *(__u16 *)&ip->ttl;
	__u32 sum = (__u16)~ip->check + (__u16)~old + new;
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	ip->check = ~sum;
	if (gw_mac) {
		__builtin_memcpy(eth->h_source, gw_mac, 6);
		c->tflags |= TRF_MAC_REWRITE;
	}
	c->tflags |= TRF_TTL_DEC;
	return 0;
}

static __always_inline int next_stage(struct pctx *c, __u32 stage)
{
	c->next = stage;
	return V_NEXT;
}

static __always_inline int drop_for(struct pctx *c, __u32 reason)
{
	c->reason = reason;
	return V_DROP;
}

#include "dispatch.h"

/* SNAT's translations (nat_snat.h), which the driver carries out: of
 * what a port sends (0, or a drop reason), and of what comes back (1
 * done, 0 not SNAT's, -1 malformed). */
int snat_out(struct __sk_buff *skb, struct pctx *c);
int snat_in(struct __sk_buff *skb, struct pctx *c);
/* A physical EIP's packet, out of the underlay NIC (phys.h). */
int phys_send(struct __sk_buff *skb, struct pctx *c);
/* A hairpin's translation, once sg_egress passed it, and a reply to one
 * from a port without an EIP translated back (hairpin.h). */
int hairpin_nat(struct __sk_buff *skb, struct pctx *c);
int hairpin_back(struct __sk_buff *skb, struct pctx *c);
int hairpin_forget(struct __sk_buff *skb, struct pctx *c);
static __always_inline int hairpin_to(__u32 port);

/* Tests only: where the last packet was redirected. */
struct redirect_rec {
	__u32 ifindex;
	__u32 peer;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct redirect_rec);
} redirect_out SEC(".maps");

static __always_inline void test_record(__u32 ifindex, __u32 peer)
{
	if (cfg_test) {
		__u32 zero = 0;
		struct redirect_rec r = {.ifindex = ifindex, .peer = peer};
		bpf_map_update_elem(&redirect_out, &zero, &r, BPF_ANY);
	}
}

/* to_port delivers to a local VM interface: into a veth's peer (the VM's
 * side, skipping a pass through the host's backlog), or out of a tap to
 * its guest. */
static __always_inline int to_port(__u32 ifindex, int tap)
{
	if (tap) {
		test_record(ifindex, 0);
		return bpf_redirect(ifindex, 0);
	}
	test_record(ifindex, 1);
	return bpf_redirect_peer(ifindex, 0);
}

static __always_inline int to_vxlan(struct __sk_buff *skb, __u32 vtep, __u32 vni, __u32 gbp)
{
	long sent = encap_out(skb, vtep, vni, gbp);
	if (sent == TC_ACT_SHOT)
		count_drop(DROP_REDIRECT_FAILED);
	if (sent >= 0) {
		test_record(cfg_underlay_ifindex, 0);
		return sent;
	}
	count(STAT_ENCAP_DEVICE);
	if (set_tunnel(skb, vtep, vni, gbp) < 0) {
		count_drop(DROP_REDIRECT_FAILED);
		return TC_ACT_SHOT;
	}
	test_record(cfg_vxlan_ifindex, 0);
	return bpf_redirect(cfg_vxlan_ifindex, 0);
}

/* trace_record writes a stage's trace record. A function of its own,
 * called only when tracing: inlined, its temporaries took stack from
 * every program's frame, which the stages' calls share (512 bytes). */
__attribute__((noinline)) int trace_record(struct pctx *c, __u32 stage, int verdict)
{
	if (!c) /* the verifier checks a global function alone: c is never NULL */
		return 0;
	__u32 zero = 0;
	struct trace_buf *t = bpf_map_lookup_elem(&trace_recs, &zero);
	if (!t)
		return 0;
	__u32 i = t->n;
	if (i >= TRACE_MAX)
		return 0;
	struct trace_rec *r = &t->rec[i];
	r->stage = stage;
	r->verdict = verdict;
	r->hit = c->hit;
	r->reason = verdict == V_DROP ? c->reason : 0;
	r->next = verdict == V_NEXT ? c->next : 0;
	r->flags = c->tflags;
	/* ip_route's fast path found d already, for dst_lookup: ip_route's
	 * record shows no destination, as without it. */
	int early = stage == STAGE_IP_ROUTE && c->d.hit;
	__u32 kind = early ? 0 : c->d.kind;
	r->ifindex = kind == DEST_LOCAL ? c->d.ifindex : c->ifindex;
	r->vtep = kind == DEST_LOCAL || early ? 0 : c->d.vtep;
	r->vni = kind ? c->d.vni : c->dvni;
	r->addr = c->target;
	if (early)
		__builtin_memset(r->mac, 0, 6);
	else
		mac_copy(r->mac, c->d.mac);
	t->n = i + 1;
	return 0;
}

static __always_inline void trace_stage(struct pctx *c, __u32 stage, int verdict)
{
	if (cfg_trace)
		trace_record(c, stage, verdict);
}

/* finish carries out a pipeline's last verdict. */
static __always_inline int finish(struct __sk_buff *skb, struct pctx *c, __u32 stage, int verdict)
{
	switch (verdict) {
	case V_OUTPUT:
		if (c->d.kind == DEST_LOCAL) {
			count(STAT_LOCAL_TX);
			return to_port(c->d.ifindex, c->d.flags & LEP_F_TAP);
		}
		if (c->d.kind == DEST_PHYS)
			return phys_send(skb, c);
		if (c->d.vtep == cfg_local_vtep) {
			verdict = V_DROP;
			c->reason = DROP_LOOP;
			break;
		}
		/* eip_out's translation waits until sg_egress passed the
		 * packet under the port's own address. */
		if (c->snat_to && nat_rewrite(skb, c->snat_from, c->snat_to, 1) < 0) {
			verdict = V_DROP;
			c->reason = DROP_MALFORMED;
			break;
		}
		if (c->snat == SNAT_OUT) {
			__u32 why = snat_out(skb, c);
			if (why) {
				verdict = V_DROP;
				c->reason = why;
				break;
			}
		}
		count(c->d.kind == DEST_HUB ? STAT_HUB_TX : STAT_REMOTE_TX);
		return to_vxlan(skb, c->d.vtep, c->d.vni, c->gbp);
	case V_REPLY:
		return to_port(c->ifindex, c->port.flags & PORT_F_TAP);
	case V_CONSUMED:
		return TC_ACT_SHOT;
	}
	count_drop(c->reason);
	monitor_drop(skb, stage, c->reason, c->ifindex, c->src, c->vni);
	return TC_ACT_SHOT;
}

/* finish_timed is finish, timed in the profiled build (profile.h). */
static __always_inline int finish_timed(struct __sk_buff *skb, struct pctx *c, __u32 stage, int verdict)
{
	prof_start(PROF_T_STEP);
	int r = finish(skb, c, stage, verdict);
	prof_end(PROF_T_STEP, PROF_FINISH);
	return r;
}

/* sg_skip says whether the security group stages would only pass the
 * packet, so that the driver need not call them: its VPC enforces no
 * groups. From a port, that takes both directions' flags off: with
 * either on, sg_egress stamps the port's identity for the receiver's
 * sg_ingress (hostd gives a VPC's ports identities only when it enforces
 * groups, so an open VPC's packets carry none either way). A hairpin
 * still needs sg_egress's turn (its translation follows it), and a trace
 * shows every stage the packet meets, and so does a port with hairpins
 * lately. Per packet, this saves a stage
 * call and the identity lookup on every send, both stages' calls to a
 * local port, and a call on every receive: 40-120 ns on AMD EPYC with
 * SRSO (TestVMPathCost, #21). */
static __always_inline int sg_skip(struct pctx *c)
{
	if (cfg_trace || c->dnat_to || !vpc_of(c))
		return 0;
	/* A port with hairpins lately (hairpin.h): a reply delivered to it
	 * is translated at sg_ingress's turn, and a new connection it opens
	 * forgets one after sg_egress's. */
	if (hairpin_to(c->d.ifindex) || (c->from_port && hairpin_to(c->ifindex)))
		return 0;
	__u32 on = c->from_port ? VPC_F_SG_EGRESS | VPC_F_SG_INGRESS : VPC_F_SG_INGRESS;
	return !(c->vx.vpce.flags & on);
}

/* run_pipeline runs a direction's stages from first until one decides,
 * then carries its verdict out. */
static __always_inline int run_pipeline(struct __sk_buff *skb, struct pctx *c, __u32 first)
{
	__u32 stage = first;
	for (int i = 0; i < STAGE_COUNT; i++) {
		c->next = 0;
		c->hit = HIT_NONE;
		c->tflags = 0;
		/* A reply to a hairpin from a port without an EIP comes from
		 * the EIP it called, before that port's groups see it (a
		 * hairpin's own packet, snat_from set, is no reply). */
		if (stage == STAGE_SG_INGRESS && !c->snat_from && hairpin_to(c->d.ifindex) && hairpin_back(skb, c) < 0) {
			c->reason = DROP_MALFORMED;
			return finish(skb, c, stage, V_DROP);
		}
		prof_start(PROF_T_STEP);
		int verdict = run_stage(stage, skb, c);
		prof_end(PROF_T_STEP, stage);
		trace_stage(c, stage, verdict);
		/* A connection a port opens straight to an address of the
		 * VPC forgets a hairpin's on its tuple (hairpin.h). */
		if (stage == STAGE_SG_EGRESS && !c->dnat_to && !c->snat_to && c->snat != SNAT_OUT && c->d.kind != DEST_PHYS &&
		    (verdict == V_NEXT || verdict == V_OUTPUT) && hairpin_to(c->ifindex))
			hairpin_forget(skb, c);
		if (c->dnat_to && stage == STAGE_SG_EGRESS && (verdict == V_NEXT || verdict == V_OUTPUT) && hairpin_nat(skb, c) < 0) {
			c->reason = DROP_MALFORMED;
			return finish(skb, c, stage, V_DROP);
		}
		/* Whatever goes to a VM, or leaves a port, meets the
		 * security groups first: sg_egress for what a port sends
		 * (then sg_ingress for a local destination), sg_ingress
		 * for what the tunnel brings to a local port. */
		if (verdict == V_OUTPUT && !c->sg_done && (c->from_port || c->d.kind == DEST_LOCAL)) {
			c->sg_done = 1;
			if (!sg_skip(c)) {
				stage = c->from_port ? STAGE_SG_EGRESS : STAGE_SG_INGRESS;
				continue;
			}
		}
		if (verdict != V_NEXT)
			return finish_timed(skb, c, stage, verdict);
		if (c->snat == SNAT_IN) {
			/* here, not in eip_in: the translation's stack frame
			 * would not fit under a stage's */
			c->snat = 0;
			if (snat_in(skb, c) < 0) {
				c->reason = DROP_MALFORMED;
				return finish(skb, c, stage, V_DROP);
			}
		}
		stage = c->next;
	}
	c->reason = DROP_LOOP;
	return finish(skb, c, stage, V_DROP);
}

#endif
