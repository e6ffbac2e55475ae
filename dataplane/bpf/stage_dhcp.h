/* STAGE_DHCP: a port's DHCP is answered on its own host, in the kernel,
 * and never leaves it: DISCOVER gets an OFFER and REQUEST an ACK of the
 * port's declared address (a REQUEST for another gets a NAK), INFORM an
 * ACK without lease, RELEASE and DECLINE are taken note of; the options
 * are those hostd prepared (dhcp.h). The reply is built in place of the
 * request, at a fixed size: BOOTP's 236 bytes, the magic cookie, the
 * message type and server identifier, and the port's options block. */
#ifndef COURIER_STAGE_DHCP_H
#define COURIER_STAGE_DHCP_H

#include "pipeline.h"
#include "dhcp.h"

#define BOOTP_LEN 236
#define DHCP_HDRS (ETH_HLEN + 20 + 8)
#define DHCP_REPLY_OPTS (3 + 6 + DHCP_OPTS)
#define DHCP_REPLY_LEN (DHCP_HDRS + BOOTP_LEN + 4 + DHCP_REPLY_OPTS)
#define DHCP_COOKIE bpf_htonl(0x63825363)

enum {
	DHCPDISCOVER = 1, DHCPOFFER, DHCPREQUEST, DHCPDECLINE, DHCPACK, DHCPNAK, DHCPRELEASE, DHCPINFORM,
};

struct dhcp_req {
	__u32 xid;
	__u16 flags;
	__be32 ciaddr;
	__u8 chaddr[6];
	__u8 type;
	__be32 requested; /* option 50 */
	__be32 server;    /* option 54 */
};

/* The request's options, copied for dhcp_opt to walk: bpf_loop checks
 * its callback once, where an unrolled walk of 64 options of any length
 * is more than the verifier explores. */
struct dhcp_scratch {
	__u8 b[512];
};

_Static_assert(sizeof(struct dhcp_scratch) <= SCRATCH_SIZE, "the answer is built in SCRATCH_DHCP");

struct dhcp_walk {
	__u32 off, len;
	__u32 type;
	__be32 requested, server;
};

static long dhcp_opt(__u64 i, void *ctx)
{
	struct dhcp_walk *w = ctx;
	struct dhcp_scratch *s = scratch_of(SCRATCH_DHCP);
	__u32 off = w->off;
	if (!s || off > 300 || off + 2 > w->len)
		return 1;
	__u8 kind = s->b[off];
	if (kind == 255)
		return 1;
	if (kind == 0) {
		w->off = off + 1;
		return 0;
	}
	__u8 len = s->b[off + 1];
	if (off + 2 + len > w->len)
		return 1;
	if (kind == 53 && len == 1)
		w->type = s->b[off + 2];
	else if (kind == 50 && len == 4)
		__builtin_memcpy(&w->requested, &s->b[off + 2], 4);
	else if (kind == 54 && len == 4)
		__builtin_memcpy(&w->server, &s->b[off + 2], 4);
	w->off = off + 2 + len;
	return 0;
}

/* dhcp_parse reads what the answer needs from the request. */
static __always_inline int dhcp_parse(struct __sk_buff *skb, struct dhcp_req *r)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr *ip = data + ETH_HLEN;
	if ((void *)(ip + 1) > data_end || ip->ihl != 5)
		return -1;
	__u8 *b = data + DHCP_HDRS;
	if ((void *)(b + BOOTP_LEN + 4) > data_end || b[0] != 1 || b[1] != 1 || b[2] != 6)
		return -1;
	if (*(__be32 *)(b + BOOTP_LEN) != DHCP_COOKIE)
		return -1;
	r->xid = *(__u32 *)(b + 4);
	r->flags = *(__u16 *)(b + 10);
	r->ciaddr = *(__be32 *)(b + 12);
	__builtin_memcpy(r->chaddr, b + 28, 6);
	struct dhcp_scratch *s = scratch_of(SCRATCH_DHCP);
	if (!s)
		return -1;
	__u32 start = DHCP_HDRS + BOOTP_LEN + 4;
	if (skb->len <= start)
		return -1;
	__u32 n = skb->len - start;
	if (n > 312)
		n = 312;
	/* n is 1..312; said in a way the verifier can follow (1..512) and
	 * clang cannot undo: it would pass a copy without the bound. */
	__u32 m = n - 1;
	asm volatile("%[m] &= 0x1ff" : [m] "+r"(m));
	n = m + 1;
	if (bpf_skb_load_bytes(skb, start, s->b, n) < 0)
		return -1;
	struct dhcp_walk w = {.len = n};
	bpf_loop(64, dhcp_opt, &w, 0);
	r->type = w.type;
	r->requested = w.requested;
	r->server = w.server;
	return r->type ? 0 : -1;
}

/* dhcp_reply turns the request into the answer of type, to the VM. */
static __always_inline int dhcp_reply(struct __sk_buff *skb, struct pctx *c, struct dhcp_req *r, struct dhcp_port *dp, __u8 type)
{
	if (bpf_skb_change_tail(skb, DHCP_REPLY_LEN, 0) < 0 || bpf_skb_pull_data(skb, DHCP_REPLY_LEN) < 0)
		return drop_for(c, DROP_MALFORMED);
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	if (data + DHCP_REPLY_LEN > data_end)
		return drop_for(c, DROP_MALFORMED);
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	__u8 *udp = (void *)(ip + 1);
	__u8 *b = udp + 8;
	__be32 yiaddr = type == DHCPACK && r->type == DHCPINFORM ? 0 : dp->ip;
	if (type == DHCPNAK)
		yiaddr = 0;
	/* RFC 2131 4.1: to a client that has its address, unicast to it; to
	 * one that asks for broadcast, and with a NAK, broadcast; else to
	 * its MAC and the address it is given. */
	__be32 dst = yiaddr;
	int bcast = type == DHCPNAK || (r->flags & bpf_htons(0x8000));
	if (r->ciaddr)
		dst = r->ciaddr, bcast = 0;
	if (bcast)
		dst = 0xffffffff;
	__builtin_memset(eth->h_dest, 0xff, 6);
	if (!bcast)
		__builtin_memcpy(eth->h_dest, r->chaddr, 6);
	__builtin_memcpy(eth->h_source, c->vx.gw_mac, 6);
	eth->h_proto = bpf_htons(ETH_P_IP);
	__builtin_memset(ip, 0, 20);
	ip->version = 4;
	ip->ihl = 5;
	ip->tot_len = bpf_htons(DHCP_REPLY_LEN - ETH_HLEN);
	ip->ttl = 64;
	ip->protocol = IPPROTO_UDP;
	ip->saddr = c->vx.gw_ip;
	ip->daddr = dst;
	ip->check = csum16(ip, data_end, 20);
	udp[0] = 0, udp[1] = 67, udp[2] = 0, udp[3] = 68;
	*(__be16 *)(udp + 4) = bpf_htons(DHCP_REPLY_LEN - ETH_HLEN - 20);
	*(__u16 *)(udp + 6) = 0; /* no checksum: allowed over IPv4 */
	__builtin_memset(b, 0, BOOTP_LEN);
	b[0] = 2, b[1] = 1, b[2] = 6;
	*(__u32 *)(b + 4) = r->xid;
	*(__u16 *)(b + 10) = r->flags;
	*(__be32 *)(b + 12) = r->ciaddr;
	*(__be32 *)(b + 16) = yiaddr;
	__builtin_memcpy(b + 28, r->chaddr, 6);
	*(__be32 *)(b + BOOTP_LEN) = DHCP_COOKIE;
	__u8 *o = b + BOOTP_LEN + 4;
	o[0] = 53, o[1] = 1, o[2] = type;
	o[3] = 54, o[4] = 4;
	*(__be32 *)(o + 5) = c->vx.gw_ip;
	__builtin_memcpy(o + 9, dp->opts, DHCP_OPTS);
	if (type == DHCPNAK) {
		__builtin_memset(o + 9, 0, DHCP_OPTS);
		o[9] = 255;
	} else if (r->type == DHCPINFORM) {
		__builtin_memset(o + 9, 0, DHCP_LEASE_OPTS); /* PADs */
	}
	c->hit = HIT_DHCP;
	c->tflags |= TRF_ANSWER;
	c->target = yiaddr;
	count(STAT_DHCP_REPLY);
	return V_REPLY;
}

__attribute__((noinline)) int stage_dhcp(struct __sk_buff *skb, struct pctx *c)
{
	if (!c) /* the verifier checks a global function alone: c is never NULL */
		return V_DROP;
	if (!(c->vx.flags & VX_F_DHCP))
		return drop_for(c, DROP_DHCP_UNSUPPORTED);
	if (bpf_skb_pull_data(skb, 0) < 0)
		return drop_for(c, DROP_MALFORMED);
	struct dhcp_req r = {};
	if (dhcp_parse(skb, &r) < 0)
		return drop_for(c, DROP_MALFORMED);
	if ((c->port.flags & PORT_F_SECURITY) && !mac_eq(r.chaddr, c->port.mac))
		return drop_for(c, DROP_SPOOF_MAC);
	__u32 ifindex = c->ifindex;
	struct dhcp_port *dp = bpf_map_lookup_elem(&dhcp_v1, &ifindex);
	if (!dp || !dp->ip)
		return drop_for(c, DROP_DHCP_NO_ADDRESS);
	switch (r.type) {
	case DHCPDISCOVER:
		return dhcp_reply(skb, c, &r, dp, DHCPOFFER);
	case DHCPREQUEST:
		if (r.server && r.server != c->vx.gw_ip)
			return V_CONSUMED; /* it chose another server */
		if ((r.requested && r.requested != dp->ip) || (!r.requested && r.ciaddr && r.ciaddr != dp->ip))
			return dhcp_reply(skb, c, &r, dp, DHCPNAK);
		return dhcp_reply(skb, c, &r, dp, DHCPACK);
	case DHCPINFORM:
		return dhcp_reply(skb, c, &r, dp, DHCPACK);
	case DHCPRELEASE:
	case DHCPDECLINE:
		return V_CONSUMED;
	}
	return drop_for(c, DROP_DHCP_UNSUPPORTED);
}

#endif
