/* Security groups: identities, rules and connection tracking.
 *
 * A port's set of groups is an identity, a number the control plane
 * allocates per VPC (northd/identities.go). What an identity means
 * (sg_ident_v1: its groups; sg_member_v1: "identity I is in group G") and
 * each group's rules (sg_rules_v2, per direction, in chunks) are per VPC: they grow
 * with groups × rules and with the VPC's distinct sets of groups, never
 * with its ports. A local port's identity is in port_sg_v1. Group numbers
 * are hostd's own, per VPC.
 *
 * The sender's identity crosses the tunnel in the VXLAN header's Group
 * Based Policy field (16 bits, set with bpf_skb_set_tunnel_opt, as the
 * kernel's test_tunnel_kern.c does), with the "policy applied" bit when
 * the sender decided its egress rules alone; clear, the receiver also
 * checks the sender's egress rules that name a group (the sender does not
 * know remote identities).
 *
 * Identities above SG_ID_MAX_ALLOCATED are reserved (stages.h, from
 * pipeline/limits.go) for senders that are no port: SG_ID_INTERNET is
 * what a gateway stamps on what it tunnels in for an EIP. No port holds
 * one (port_identity) and no group has one as a member (sg_group_cb), so
 * a rule naming a group never matches them and a rule naming a prefix
 * does. A receiver honours the internet's identity only from a gateway
 * of its EIPs' networks (sg_sender, stage_sg_ingress.h).
 *
 * Connections are tracked in ct_v1 (ct.h). A packet of a tracked
 * connection (either way) passes after one or two lookups, whatever the
 * number of rules. When hostd changes any rule or identity it bumps the
 * generation (sg_gen_v1); an entry of an older generation, or whose
 * sender now carries another identity, is checked again against the
 * rules at its next packet, and removed (the packet dropped) if no rule
 * allows it any more. Idle entries expire after cfg_ct_timeout_ns. */
#ifndef COURIER_SG_H
#define COURIER_SG_H

#include "common.h"
#include "config.h"
#include "ct.h"

#define SG_MAX_GROUPS 16
#define SG_MAX_RULES 64	 /* per chunk */
#define SG_MAX_CHUNKS 16 /* per group and direction: 1,024 rules */
#define SG_DIR_EGRESS 0
#define SG_DIR_INGRESS 1
#define SG_R_GROUP 0x1 /* the remote end is a group (group), not a prefix */

#define SG_DENY 0
#define SG_ALLOW 1
#define SG_PENDING 2 /* only an egress rule naming the unknown destination's group */

/* The VXLAN GBP field: identity in the low 16 bits, and the policy
 * applied bit (as the kernel's VXLAN_GBP_POLICY_APPLIED). */
#define GBP_ID_MASK 0xffff
#define GBP_POLICY_APPLIED (1U << 19)

struct sg_ident_key {
	__u32 vpc;
	__u32 id;
};

struct sg_ident {
	__u32 n;
	__u32 groups[SG_MAX_GROUPS];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct sg_ident_key);
	__type(value, struct sg_ident);
} sg_ident_v1 SEC(".maps");

struct sg_member_key {
	__u32 vpc;
	__u32 id;
	__u32 group;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 262144);
	__type(key, struct sg_member_key);
	__type(value, __u32);
} sg_member_v1 SEC(".maps");

struct sg_rule {
	__u8 proto; /* 0: any */
	__u8 flags; /* SG_R_* */
	__u16 port_min; /* 0: every port */
	__u16 port_max;
	__u16 pad;
	__be32 addr; /* remote prefix, masked */
	__be32 mask;
	__u32 group; /* remote group (SG_R_GROUP) */
};

/* A group's rules of one direction, in chunks of SG_MAX_RULES: chunk 0
 * says how many chunks there are. */
struct sg_rules_key {
	__u32 vpc;
	__u32 group;
	__u16 dir; /* SG_DIR_* */
	__u16 chunk;
};

struct sg_rules {
	__u32 n;      /* rules in this chunk */
	__u32 chunks; /* chunks of this group and direction */
	struct sg_rule r[SG_MAX_RULES];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 32768);
	__type(key, struct sg_rules_key);
	__type(value, struct sg_rules);
} sg_rules_v2 SEC(".maps");

/* A local port's identity, by host-side ifindex (ports of VPCs that
 * enforce groups), and until when a TCP connection this host has not
 * tracked may be picked up mid-stream at the port (a VM that migrated
 * here brings connections the old host tracked). */
struct port_sg {
	__u32 vpc;
	__u32 id;
	__u64 pickup_until_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct port_sg);
} port_sg_v2 SEC(".maps");

/* The policy generation, bumped by hostd on every change of rules or
 * identities. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} sg_gen_v1 SEC(".maps");

/* Denials by the identity of the port whose rules refused, and the
 * direction of those rules: which groups' ports are refused what
 * (courier-dpctl sg). Per CPU; pinned, so counts outlive hostd. */
struct sg_denied_key {
	__u32 vpc;
	__u32 id;
	__u32 dir; /* SG_DIR_* */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct sg_denied_key);
	__type(value, __u64);
} sg_denied_v1 SEC(".maps");

/* sg_count_denial counts one denial (not while tracing). A function of
 * its own: its frame stays off the rule walk's call chain. */
__attribute__((noinline)) int sg_count_denial(__u32 vpc, __u32 id, __u32 dir)
{
	if (cfg_trace)
		return 0;
	struct sg_denied_key k = {.vpc = vpc, .id = id, .dir = dir};
	__u64 *n = bpf_map_lookup_elem(&sg_denied_v1, &k);
	if (n) {
		(*n)++;
		return 0;
	}
	__u64 one = 1;
	bpf_map_update_elem(&sg_denied_v1, &k, &one, BPF_NOEXIST);
	return 0;
}

static __always_inline __u32 sg_gen(void)
{
	__u32 zero = 0;
	__u32 *g = bpf_map_lookup_elem(&sg_gen_v1, &zero);
	return g ? *g : 0;
}

/* port_identity: a local port's identity, 0 if none (or a reserved one,
 * which no port may send as: hostd never writes one). */
static __always_inline __u32 port_identity(__u32 ifindex)
{
	struct port_sg *p = bpf_map_lookup_elem(&port_sg_v2, &ifindex);
	return p && p->id <= SG_ID_MAX_ALLOCATED ? p->id : 0;
}

static __always_inline int may_pick_up(__u32 ifindex, __u64 now)
{
	struct port_sg *p = bpf_map_lookup_elem(&port_sg_v2, &ifindex);
	return p && now < p->pickup_until_ns;
}

/* What sg_check walks: the identity's groups' chunks of rules, one
 * bpf_loop iteration each (the verifier checks the callback once;
 * unrolled, 16 groups of 64 rules are more jumps than it follows), each
 * chunk a bounded loop. Iteration i is chunk i % SG_MAX_CHUNKS of group
 * i / SG_MAX_CHUNKS; the chunks a group lacks cost a return each. */
struct sg_walk {
	__u32 vpc;
	__u32 remote_id;
	__be32 raddr;
	__u32 dir;
	__u32 proto;
	__u32 dport;
	__u32 n;
	__u32 result;
	__u32 chunks; /* of the group being walked */
	__u32 groups[SG_MAX_GROUPS];
};

/* In a per-CPU scratch: the callers' stacks are near the 512-byte limit. */
_Static_assert(sizeof(struct sg_walk) <= SCRATCH_SIZE, "the rule walk's state is in SCRATCH_SG_WALK");

static long sg_group_cb(__u64 i, void *ctx)
{
	struct sg_walk *w = scratch_of(SCRATCH_SG_WALK);
	__u32 g = i / SG_MAX_CHUNKS, chunk = i % SG_MAX_CHUNKS;
	if (!w || g >= SG_MAX_GROUPS || g >= w->n)
		return 1;
	if (chunk == 0)
		w->chunks = 1;
	if (chunk >= w->chunks)
		return 0;
	struct sg_rules_key rk = {.vpc = w->vpc, .group = w->groups[g & (SG_MAX_GROUPS - 1)], .dir = w->dir, .chunk = chunk};
	struct sg_rules *rs = bpf_map_lookup_elem(&sg_rules_v2, &rk);
	if (!rs) {
		w->chunks = 0;
		return 0;
	}
	if (chunk == 0)
		w->chunks = rs->chunks;
	for (__u32 j = 0; j < SG_MAX_RULES; j++) {
		if (j >= rs->n)
			break;
		struct sg_rule *r = &rs->r[j];
		if (r->proto && r->proto != w->proto)
			continue;
		if (r->port_max && (w->dport < r->port_min || w->dport > r->port_max))
			continue;
		if (!(r->flags & SG_R_GROUP)) {
			if ((w->raddr & r->mask) == r->addr) {
				w->result = SG_ALLOW;
				return 1;
			}
			continue;
		}
		if (!w->remote_id) {
			w->result = SG_PENDING;
			continue;
		}
		if (w->remote_id > SG_ID_MAX_ALLOCATED)
			continue; /* the internet is in no group */
		struct sg_member_key mk = {.vpc = w->vpc, .id = w->remote_id, .group = r->group};
		if (bpf_map_lookup_elem(&sg_member_v1, &mk)) {
			w->result = SG_ALLOW;
			return 1;
		}
	}
	return 0;
}

/* sg_what packs a check's direction, protocol and destination port into
 * one argument (a BPF function takes five). */
static __always_inline __u32 sg_what(__u32 dir, __u32 proto, __u32 dport)
{
	return dir << 24 | (proto & 0xff) << 16 | (dport & 0xffff);
}

/* sg_check says whether identity id's rules of a direction allow a new
 * connection with the remote end (its identity, if known, and address),
 * protocol and destination port (what, sg_what): SG_ALLOW, SG_PENDING
 * (only a rule naming the remote's group could, and the remote's
 * identity is unknown) or SG_DENY. Rules are walked only for a
 * connection not tracked yet. */
__attribute__((noinline)) int sg_check(__u32 vpc, __u32 id, __u32 remote_id, __be32 raddr, __u32 what)
{
	struct sg_ident_key ik = {.vpc = vpc, .id = id};
	struct sg_ident *gi = bpf_map_lookup_elem(&sg_ident_v1, &ik);
	if (!gi)
		return SG_DENY;
	struct sg_walk *w = scratch_of(SCRATCH_SG_WALK);
	if (!w)
		return SG_DENY;
	w->vpc = vpc;
	w->remote_id = remote_id;
	w->raddr = raddr;
	w->dir = what >> 24;
	w->proto = (what >> 16) & 0xff;
	w->dport = what & 0xffff;
	w->n = gi->n;
	w->result = SG_DENY;
	__builtin_memcpy(w->groups, gi->groups, sizeof(w->groups));
	bpf_loop(SG_MAX_GROUPS * SG_MAX_CHUNKS, sg_group_cb, NULL, 0);
	return w->result;
}

/* ct_touch keeps a tracked connection alive: a RST ends it (the RST
 * itself passes), a FIN leaves it cfg_ct_closing_ns for the last ACKs;
 * otherwise its idle clock restarts, at most once a second (a write per
 * packet would cost every packet a cache line). */
static __always_inline void ct_touch(struct ct_entry *e, struct ct_key *k, struct tuple *t, __u64 now)
{
	if (cfg_trace)
		return;
	if (t->tcp_flags & TCP_RST) {
		bpf_map_delete_elem(&ct_v1, k);
		return;
	}
	if (t->tcp_flags & TCP_FIN && !(e->flags & CT_F_CLOSING)) {
		e->flags |= CT_F_CLOSING;
		e->seen_ns = now - cfg_ct_timeout_ns + cfg_ct_closing_ns;
		return;
	}
	if (!(e->flags & CT_F_CLOSING) && (__s64)(now - e->seen_ns) > 1000000000LL)
		e->seen_ns = now;
}

/* ct_related: is this an ICMP error (destination unreachable, time
 * exceeded, parameter problem) about a connection tracked at port zone?
 * It quotes the packet it is about (its IPv4 header and 8 bytes more),
 * which the port sent or received: the connection's entry is that
 * quoted tuple, one way or the other. Like the kernel's conntrack
 * "related", such an error needs no rule of its own (a UDP peer's port
 * unreachable, a router's fragmentation needed). */
static __attribute__((noinline)) int ct_related(struct __sk_buff *skb, __u32 zone)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr *ip = data + sizeof(struct ethhdr);
	if ((void *)(ip + 1) > data_end || ip->protocol != IPPROTO_ICMP || ip->ihl != 5)
		return 0;
	__u8 *h = (void *)(ip + 1);
	struct iphdr *in = (void *)(h + 8);
	if ((void *)(in + 1) > data_end || (h[0] != 3 && h[0] != 11 && h[0] != 12) || in->ihl != 5)
		return 0;
	__be16 *l4 = (void *)(in + 1);
	if ((void *)(l4 + 4) > data_end)
		return 0;
	struct tuple t = {.ok = 1, .saddr = in->saddr, .daddr = in->daddr, .proto = in->protocol};
	if (t.proto == IPPROTO_TCP || t.proto == IPPROTO_UDP) {
		t.sport = l4[0];
		t.dport = l4[1];
	} else if (t.proto == IPPROTO_ICMP) {
		t.sport = l4[2]; /* a quoted echo's identifier */
		t.dport = l4[2];
	} else {
		return 0;
	}
	struct ct_key k = ct_key_of(zone, &t, 0);
	if (bpf_map_lookup_elem(&ct_v1, &k))
		return 1;
	k = ct_key_of(zone, &t, 1);
	return bpf_map_lookup_elem(&ct_v1, &k) != NULL;
}

/* pick_up: may a TCP segment that no rule allows in its own direction
 * be taken for a packet of a connection opened the other way (as the
 * kernel's conntrack picks up a stream mid-way)? Only without SYN or
 * RST, at a port whose pickup window is open (a VM that just came to
 * this host brings the connections its old host tracked); then, if the
 * rules allow the other direction, it is tracked as opened that way. */
static __always_inline int pick_up(struct tuple *t, __u32 zone, __u64 now)
{
	return t->proto == IPPROTO_TCP && !(t->tcp_flags & (TCP_SYN | TCP_RST)) && may_pick_up(zone, now);
}

/* sg_conn decides a packet at local port zone (identity id) going in
 * direction dir, whose other end has identity remote_id (0: unknown):
 * SG_ALLOW or SG_PENDING (c->hit and c->tflags say how), or SG_DENY.
 * A tracked connection passes; an outdated one is checked again; a new
 * one is checked and tracked. */
static __always_inline int sg_conn(struct pctx *c, struct tuple *t, __u32 zone, __u32 id, __u32 dir, __u32 remote_id,
				   __u8 *ct_flags)
{
	/* The coarse clock (a tick's resolution; with find_dest's, it took
	 * ~75 ns off a packet on a kvm-clock guest, #21) is enough for
	 * timeouts of seconds. Entries stamped by the fine clock (an older
	 * build's, before an upgrade) may be up to a tick ahead of it:
	 * differences are compared signed. */
	__u64 now = bpf_ktime_get_coarse_ns();
	__u32 gen = sg_gen();
	struct ct_key k = ct_key_of(zone, t, 0);
	int reply = 0;
	struct ct_entry *e = bpf_map_lookup_elem(&ct_v1, &k);
	if (!e) {
		k = ct_key_of(zone, t, 1);
		e = bpf_map_lookup_elem(&ct_v1, &k);
		reply = 1;
	}
	if (e && (__s64)(now - e->seen_ns) < (__s64)cfg_ct_timeout_ns) {
		c->hit = HIT_CT;
		/* The packet's own remote identity counts for packets in the
		 * direction that opened the connection. */
		__u32 rid = e->remote_id;
		if (!reply && remote_id)
			rid = remote_id;
		*ct_flags = e->flags;
		if (e->gen == gen && rid == e->remote_id) {
			ct_touch(e, &k, t, now);
			return (e->flags & CT_F_PENDING) ? SG_PENDING : SG_ALLOW;
		}
		count(STAT_CT_REVALIDATED);
		/* Check again as the packet that opened it: its tuple is this
		 * one, or this one reversed. */
		__u32 odir = e->dir;
		__be32 raddr = odir == SG_DIR_EGRESS ? k.daddr : k.saddr;
		int v = sg_check(c->vpc, id, rid, raddr, sg_what(odir, t->proto, bpf_ntohs(k.dport)));
		if (v == SG_PENDING && odir == SG_DIR_INGRESS)
			v = SG_DENY; /* a receiver knows its sender's identity, or nothing */
		if (v == SG_DENY) {
			if (!cfg_trace)
				bpf_map_delete_elem(&ct_v1, &k);
			c->hit = HIT_SG_NONE;
			return SG_DENY;
		}
		if (!cfg_trace) {
			e->gen = gen;
			e->remote_id = rid;
			if (!(e->flags & CT_F_CLOSING))
				e->seen_ns = now;
			e->flags = (e->flags & CT_F_CLOSING) | (v == SG_PENDING ? CT_F_PENDING : 0);
		}
		*ct_flags = v == SG_PENDING ? CT_F_PENDING : 0;
		return v;
	}
	__be32 raddr = dir == SG_DIR_EGRESS ? t->daddr : t->saddr;
	int v = sg_check(c->vpc, id, remote_id, raddr, sg_what(dir, t->proto, bpf_ntohs(t->dport)));
	if (v == SG_PENDING && dir == SG_DIR_INGRESS)
		v = SG_DENY;
	int reverse = 0;
	if (v == SG_DENY && pick_up(t, zone, now)) {
		dir ^= 1; /* SG_DIR_EGRESS <-> SG_DIR_INGRESS */
		if (sg_check(c->vpc, id, remote_id, raddr, sg_what(dir, t->proto, bpf_ntohs(t->sport))) == SG_ALLOW) {
			v = SG_ALLOW;
			reverse = 1;
		}
	}
	if (v == SG_DENY) {
		c->hit = HIT_SG_NONE;
		return SG_DENY;
	}
	c->hit = HIT_SG_RULE;
	c->tflags |= TRF_CT_NEW;
	if (v == SG_PENDING)
		c->tflags |= TRF_SG_PENDING;
	*ct_flags = v == SG_PENDING ? CT_F_PENDING : 0;
	if (!cfg_trace) {
		/* The new entry is built in a per-CPU scratch: on the stack it
		 * would take the stages' frames past the 512-byte limit. */
		struct ct_entry *ne = scratch_of(SCRATCH_CT);
		if (ne) {
			*ne = (struct ct_entry){.seen_ns = now, .gen = gen, .remote_id = remote_id, .dir = dir, .flags = *ct_flags};
			k = ct_key_of(zone, t, reverse);
			bpf_map_update_elem(&ct_v1, &k, ne, BPF_ANY);
			count(reverse ? STAT_CT_PICKUP : STAT_CT_NEW);
		}
	}
	return v;
}

#endif
