/* SNAT's two translations (snat.h has the maps and the allocation):
 * snat_out for what a port sends outside its VPC, run by the driver once
 * sg_egress passed the packet under the port's own address; snat_in, run
 * by eip_in, for what a gateway brings back. Global functions, so that
 * each has a stack frame of its own. */
#ifndef COURIER_NAT_SNAT_H
#define COURIER_NAT_SNAT_H

#include "pipeline.h"
#include "snat.h"
#include "frag.h"

/* snat_out translates the source of what port c->ifindex sends to its
 * connection's address and port, mapping a new connection first. Returns
 * 0, or a drop reason. */
__attribute__((noinline)) int snat_out(struct __sk_buff *skb, struct pctx *c)
{
	if (!c) /* the verifier checks a global function alone: c is never NULL */
		return DROP_MALFORMED;
	struct tuple t = tuple_of(skb);
	void *data = (void *)(long)skb->data;
	struct iphdr *iph = data + ETH_HLEN;
	if (!t.ok || (void *)(iph + 1) > (void *)(long)skb->data_end || iph->ihl < 5)
		return DROP_MALFORMED;
	struct frag_key k = frag_key_of(c->vpc, iph, FRAG_OUT);
	int first = first_frag(iph);
	if (later_frag(iph)) {
		/* no ports to map it by: its first fragment's address (frag.h) */
		__be32 ext = frag_recall(&k);
		if (!ext)
			return DROP_SNAT_UNTRACKED;
		return nat_rewrite(skb, k.saddr, ext, 1) < 0 ? DROP_MALFORMED : 0;
	}
	__u32 l4 = ETH_HLEN + iph->ihl * 4;
	/* The ports and flags again, through the helper: tuple_of reads the
	 * linear part only, which a guest's packet may end before its L4
	 * header. */
	if (t.proto == IPPROTO_TCP || t.proto == IPPROTO_UDP) {
		__be16 ports[2];
		if (bpf_skb_load_bytes(skb, l4, ports, 4) < 0)
			return DROP_MALFORMED;
		t.sport = ports[0];
		t.dport = ports[1];
		if (t.proto == IPPROTO_TCP && bpf_skb_load_bytes(skb, l4 + 13, &t.tcp_flags, 1) < 0)
			return DROP_MALFORMED;
	}
	__u32 poff = 0;
	__be16 rport = t.dport;
	if (t.proto == IPPROTO_ICMP) {
		__u8 type;
		if (bpf_skb_load_bytes(skb, l4, &type, 1) < 0 || type != ICMP_ECHO)
			return DROP_SNAT_UNTRACKED;
		poff = 4; /* the echo identifier */
		rport = 0;
	} else if (t.proto != IPPROTO_TCP && t.proto != IPPROTO_UDP) {
		return DROP_SNAT_UNTRACKED;
	}
	struct snat_fkey fk = {.vpc = c->vpc, .addr = t.saddr, .remote = t.daddr, .port = t.sport, .rport = rport, .proto = t.proto};
	__u8 tcp = t.proto == IPPROTO_TCP ? t.tcp_flags : 0;
	__u8 closing = tcp & (TCP_FIN | TCP_RST) ? SNAT_F_CLOSING : 0;
	__u64 now = bpf_ktime_get_ns();
	struct snat_fval m;
	struct snat_fval *f = bpf_map_lookup_elem(&snat_fwd_v1, &fk);
	if (f) {
		/* a SYN reusing a closed connection's tuple opens it anew */
		if ((tcp & (TCP_SYN | TCP_ACK)) == TCP_SYN)
			f->flags &= ~SNAT_F_CLOSING;
		snat_touch(&f->seen_ns, &f->flags, now, closing);
		m = *f;
	} else {
		/* Only a SYN opens a TCP connection: a later segment of no
		 * connection here is a live-migrated port's whose connections
		 * are not handed over yet (hostd/snathandoff.go). Mapped anew,
		 * it would leave from another port, the server would reset
		 * it and the handed-over mapping would find its tuple taken;
		 * dropped, it is sent again. */
		if (t.proto == IPPROTO_TCP && (tcp & (TCP_SYN | TCP_ACK | TCP_RST)) != TCP_SYN)
			return DROP_SNAT_UNTRACKED;
		__u32 r = snat_new(c->ifindex, &fk, now, closing, &m);
		if (r)
			return r;
	}
	if (nat_rewrite(skb, t.saddr, m.ext, 1) < 0 || nat_port(skb, l4, t.proto, poff, t.sport, m.eport) < 0)
		return DROP_MALFORMED;
	if (first)
		frag_remember(&k, m.ext);
	return 0;
}

/* snat_rkey_in fills rk with the connection a packet from outside
 * belongs to, from its headers (an ICMP error: from the packet it
 * quotes, which left translated). Returns 1 for a packet SNAT may have
 * mapped, 2 for such an ICMP error, 0 for anything else. */
static __always_inline int snat_rkey_in(struct __sk_buff *skb, struct iphdr *ip, __u32 l4, struct snat_rkey *rk, __u8 *tcp)
{
	rk->ext = ip->daddr;
	rk->remote = ip->saddr;
	rk->proto = ip->protocol;
	__be16 p[4];
	if (ip->protocol == IPPROTO_TCP || ip->protocol == IPPROTO_UDP) {
		if (bpf_skb_load_bytes(skb, l4, p, 4) < 0)
			return 0;
		rk->rport = p[0];
		rk->eport = p[1];
		if (ip->protocol == IPPROTO_TCP && bpf_skb_load_bytes(skb, l4 + 13, tcp, 1) < 0)
			return 0;
		return 1;
	}
	__u8 h[8];
	if (ip->protocol != IPPROTO_ICMP || bpf_skb_load_bytes(skb, l4, h, 8) < 0)
		return 0;
	if (h[0] == ICMP_ECHOREPLY) {
		rk->eport = *(__be16 *)(h + 4);
		rk->rport = 0;
		return 1;
	}
	if (!icmp_is_error(h[0]))
		return 0;
	struct iphdr in;
	if (bpf_skb_load_bytes(skb, l4 + 8, &in, sizeof(in)) < 0 || in.ihl < 5 || in.saddr != ip->daddr)
		return 0;
	__u32 il4 = l4 + 8 + in.ihl * 4;
	rk->remote = in.daddr;
	rk->proto = in.protocol;
	if (bpf_skb_load_bytes(skb, il4, p, 8) < 0)
		return 0;
	if (in.protocol == IPPROTO_TCP || in.protocol == IPPROTO_UDP) {
		rk->eport = p[0];
		rk->rport = p[1];
		return 2;
	}
	if (in.protocol == IPPROTO_ICMP && ((__u8 *)p)[0] == ICMP_ECHO) {
		rk->eport = p[2];
		rk->rport = 0;
		return 2;
	}
	return 0;
}

/* snat_in translates what a gateway brought for a SNAT address and port
 * back to its connection's port address and port. Returns 1 when it did,
 * 0 for a packet of no connection here, -1 for a malformed one. */
__attribute__((noinline)) int snat_in(struct __sk_buff *skb, struct pctx *c)
{
	if (!c)
		return -1;
	struct iphdr ip;
	__u32 l4 = l4_of(skb, &ip);
	if (!l4)
		return -1;
	struct frag_key k = frag_key_of(c->vpc, &ip, FRAG_IN);
	if (later_frag(&ip)) {
		/* its first fragment's connection (frag.h) */
		__be32 to = frag_recall(&k);
		if (!to)
			return 0;
		if (nat_rewrite(skb, ip.daddr, to, 0) < 0)
			return -1;
		c->target = to;
		count(STAT_SNAT_IN);
		return 1;
	}
	struct snat_rkey rk = {};
	__u8 tcp = 0;
	int kind = snat_rkey_in(skb, &ip, l4, &rk, &tcp);
	if (!kind)
		return 0;
	struct snat_rval *r = bpf_map_lookup_elem(&snat_rev_v1, &rk);
	if (!r || r->vpc != c->vpc)
		return 0;
	__u8 closing = kind == 1 && (tcp & (TCP_FIN | TCP_RST)) ? SNAT_F_CLOSING : 0;
	snat_touch(&r->seen_ns, &r->flags, bpf_ktime_get_ns(), closing);
	__be32 to = r->addr;
	__be16 port = r->port;
	if (nat_rewrite(skb, ip.daddr, to, 0) < 0)
		return -1;
	if (kind == 2) {
		if (nat_icmp_inner_port(skb, l4, rk.eport, port) < 0)
			return -1;
	} else if (nat_port(skb, l4, ip.protocol, ip.protocol == IPPROTO_ICMP ? 4 : 2, rk.eport, port) < 0) {
		return -1;
	}
	if (first_frag(&ip))
		frag_remember(&k, to);
	c->target = to;
	count(STAT_SNAT_IN);
	return 1;
}

/* On a gateway: the block of SNAT address addr that port (network
 * order) falls in, with the host of its port, or NULL. */
static __always_inline struct gw_eip *gw_snat_find(__be32 addr, __be16 port)
{
	__u32 *shift = bpf_map_lookup_elem(&gw_snat_addrs_v1, &addr);
	if (!shift)
		return NULL;
	struct gw_snat_key k = {.addr = addr, .lo = bpf_ntohs(port) & ~((1U << (*shift & 15)) - 1)};
	return bpf_map_lookup_elem(&gw_snat_v1, &k);
}

/* gw_snat_in: the block what the uplink received is for, or NULL. */
static __always_inline struct gw_eip *gw_snat_in(struct __sk_buff *skb)
{
	struct iphdr ip;
	__u32 l4 = l4_of(skb, &ip);
	if (!l4)
		return NULL;
	if (later_frag(&ip))
		return gw_frag(&ip, FRAG_IN, NULL);
	struct snat_rkey rk = {};
	__u8 tcp;
	if (!snat_rkey_in(skb, &ip, l4, &rk, &tcp))
		return NULL;
	return gw_frag(&ip, FRAG_IN, gw_snat_find(ip.daddr, rk.eport));
}

/* gw_snat_out: the block a host sent from, or NULL. */
static __always_inline struct gw_eip *gw_snat_out(struct __sk_buff *skb)
{
	struct iphdr ip;
	__u32 l4 = l4_of(skb, &ip);
	if (!l4)
		return NULL;
	if (later_frag(&ip))
		return gw_frag(&ip, FRAG_OUT, NULL);
	__be16 p[3];
	if (bpf_skb_load_bytes(skb, l4, p, 6) < 0)
		return NULL;
	if (ip.protocol == IPPROTO_TCP || ip.protocol == IPPROTO_UDP)
		return gw_frag(&ip, FRAG_OUT, gw_snat_find(ip.saddr, p[0]));
	if (ip.protocol == IPPROTO_ICMP && ((__u8 *)p)[0] == ICMP_ECHO)
		return gw_frag(&ip, FRAG_OUT, gw_snat_find(ip.saddr, p[2]));
	return NULL;
}

#endif
