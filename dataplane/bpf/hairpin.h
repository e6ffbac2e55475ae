/* Hairpin: a VM reaching another VM's EIP (public or physical) of its own
 * VPC is translated on the sending host and routed there as VM to VM: no
 * detour through a gateway, one hop as for the VM's own address.
 *
 * From a sender with an EIP both ends are translated, statelessly, so
 * that each VM sees what it would see through a gateway: the receiver
 * gets the packet from the sender's own EIP, to its own address; its
 * reply, sent to that EIP, is a hairpin on its host in turn and reaches
 * the sender from the address the sender called. Security groups see
 * what the VMs see: sg_egress the packet as the sender sent it (to the
 * EIP, the internet's identity), sg_ingress as the receiver gets it
 * (from the sender's EIP, with no identity: only a rule naming a prefix
 * admits it, as what a gateway brings). The driver translates in
 * between (hairpin_nat).
 *
 * From a sender without an EIP (with SNAT for its VPC or not) only the
 * destination is translated: the receiver sees the sender's private
 * address and identity, VPC-internal traffic, as in OVN's distributed
 * router. Its reply, to that private address, is ordinary VPC traffic
 * and needs state to come back from the EIP the sender called: the
 * sending host keeps, per connection, the EIP it called (hairpin_ct_v1),
 * created by the sender's own egress once sg_egress passed the packet,
 * and the driver translates the reply's source back to the EIP just
 * before the sender's sg_ingress (hairpin_back), whether it comes from a
 * local port or over the tunnel: the sender's conntrack matches its own
 * connection to the EIP, and an ICMP error about it has its quote
 * translated too. Only the host of the sender holds the entry, and only
 * a packet delivered to the sender's own port is translated by it; a
 * new connection the sender opens straight to the receiver on the same
 * tuple drops it (hairpin_forget).
 *
 * vpc_eips_v1 holds every EIP of the VPCs this host takes part in (the
 * southbound's bindings with eip_vpc set, hostd's VPC sessions). */
#ifndef COURIER_HAIRPIN_H
#define COURIER_HAIRPIN_H

#include "pipeline.h"
#include "routes.h"
#include "eip.h"
#include "ct.h"
#include "frag.h"

struct vpc_eip_key {
	__u32 vpc;
	__be32 eip;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct vpc_eip_key);
	__type(value, __be32); /* the port's address */
} vpc_eips_v1 SEC(".maps");

/* A connection a port without an EIP opened to an EIP of its VPC, keyed
 * as its replies carry it: from the receiver (the EIP's port), to the
 * sender. ICMP echo: the identifier as both ports.
 *
 * An LRU hash of 65,536 entries per host (36 bytes of key and value):
 * a full table evicts the least recently used, whose connection's
 * replies then reach the sender untranslated (its conntrack drops them
 * or its stack resets). An entry idle (no packet either way) for
 * cfg_ct_timeout_ns, the security groups' idle timeout (300 s), is
 * taken as gone and replaced by the next connection on its tuple.
 * Pinned as the other _v1 maps: a hostd restart keeps it. */
struct hairpin_key {
	__u32 vpc;
	__be32 raddr; /* the receiver's address (the EIP's port) */
	__be32 saddr; /* the sender's */
	__be16 rport;
	__be16 sport;
	__u8 proto;
	__u8 pad[3];
};

struct hairpin_entry {
	__u64 seen_ns;
	__be32 eip;	  /* what the sender called */
	__u32 ifindex; /* the sender's port: only what is delivered to it is translated */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct hairpin_key);
	__type(value, struct hairpin_entry);
} hairpin_ct_v1 SEC(".maps");

/* When each port (by ifindex, below HAIRPIN_PORTS) last sent or got a
 * packet of a hairpin from a port without an EIP: what is delivered to a
 * port that has none lately skips hairpin_back's parse and lookup: an
 * array's lookup, which the verifier inlines, where every packet
 * delivered to a local port would pay 130 ns more (DEVELOPERS.md). A
 * port of a higher ifindex is always looked up. 512 KB; pinned, as
 * hairpin_ct_v1, whose entries it guards; kept to the second. */
#define HAIRPIN_PORTS 65536

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, HAIRPIN_PORTS);
	__type(key, __u32);
	__type(value, __u64);
} hairpin_ports_v1 SEC(".maps");

/* hairpin_to: what is delivered to port may be a reply to a hairpin of
 * its (then hairpin_back looks), inline in the driver, its call saved. */
static __always_inline int hairpin_to(__u32 port)
{
	if (port >= HAIRPIN_PORTS)
		return 1;
	__u64 *m = bpf_map_lookup_elem(&hairpin_ports_v1, &port);
	return m && *m;
}

/* hairpin_mark notes that port ifindex has a hairpin in use at now (a
 * write a second at most: not one per packet). */
static __always_inline void hairpin_mark(__u32 ifindex, __u64 now)
{
	__u64 *m = bpf_map_lookup_elem(&hairpin_ports_v1, &ifindex);
	if (m && now - *m > 1000000000ULL)
		*m = now;
}

/* hairpin_route: eip_out's first branch: a destination that is an EIP
 * of the port's VPC is routed to the EIP's port (TTL-1, from the gateway
 * MAC, on to dst_lookup), to be translated once sg_egress passed it: the
 * destination always, the source to own, the port's own EIP, if it has
 * one (0: none). Returns the verdict, or -1 when the destination is no
 * EIP of the VPC. */
static __always_inline int hairpin_route(struct __sk_buff *skb, struct pctx *c, __be32 own)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return -1;
	struct vpc_eip_key k = {.vpc = c->vpc, .eip = ip->daddr};
	__be32 *to = bpf_map_lookup_elem(&vpc_eips_v1, &k);
	if (!to)
		return -1;
	__be32 dst = *to;
	struct route *rt = route_lookup(c->vpc, dst);
	if (!rt)
		return -1;
	c->hit = HIT_EIP;
	c->target = rt->nexthop ? rt->nexthop : dst;
	c->dvni = rt->vni;
	c->snat_from = ip->saddr;
	c->snat_to = own;
	c->dnat_to = dst;
	if (routed_hop(skb, c, eth, ip, c->vx.vpce.gw_mac) < 0)
		return drop_for(c, DROP_MALFORMED);
	return next_stage(c, STAGE_DST_LOOKUP);
}

/* hairpin_live: e is an entry still in use at now. */
static __always_inline int hairpin_live(const struct hairpin_entry *e, __u64 now)
{
	return now - e->seen_ns < cfg_ct_timeout_ns;
}

/* hairpin_track notes the connection of a hairpin from a port without an
 * EIP, to the EIP it called, keyed as the reply will come (t is the
 * packet before its translation). A live entry of another port is left
 * alone: a port sending from an address not its own cannot take over
 * another's connection. */
static __always_inline void hairpin_track(struct pctx *c, struct tuple *t)
{
	if (cfg_trace) /* a trace changes nothing */
		return;
	struct hairpin_key k = {.vpc = c->vpc, .raddr = c->dnat_to, .saddr = t->saddr, .rport = t->dport, .sport = t->sport, .proto = t->proto};
	__u64 now = bpf_ktime_get_ns();
	hairpin_mark(c->ifindex, now);
	struct hairpin_entry *e = bpf_map_lookup_elem(&hairpin_ct_v1, &k);
	if (e && e->ifindex == c->ifindex && e->eip == t->daddr) {
		e->seen_ns = now;
		return;
	}
	if (e && hairpin_live(e, now))
		return;
	struct hairpin_entry n = {.seen_ns = now, .eip = t->daddr, .ifindex = c->ifindex};
	bpf_map_update_elem(&hairpin_ct_v1, &k, &n, BPF_ANY);
}

/* hairpin_nat translates a hairpin once sg_egress passed it: the
 * destination EIP to its port's address; the source to the sender's EIP
 * if it has one (the receiver then takes it as from outside, with no
 * identity), else kept, the connection noted for its replies. Returns 0,
 * or -1 (malformed). A global function: its frame is not on the stages'. */
__attribute__((noinline)) int hairpin_nat(struct __sk_buff *skb, struct pctx *c)
{
	if (!c) /* the verifier checks a global function alone: c is never NULL */
		return -1;
	struct tuple t = tuple_of(skb);
	__be16 frag;
	if (!t.ok || bpf_skb_load_bytes(skb, ETH_HLEN + __builtin_offsetof(struct iphdr, frag_off), &frag, 2) < 0)
		return -1;
	if (!c->snat_to && !(frag & bpf_htons(IP_OFFSET_MASK))) /* a later fragment has no ports: its first noted them */
		hairpin_track(c, &t);
	if (nat_rewrite(skb, t.daddr, c->dnat_to, 0) < 0)
		return -1;
	if (c->snat_to) {
		if (nat_rewrite(skb, c->snat_from, c->snat_to, 1) < 0)
			return -1;
		c->gbp = 0;
	}
	c->dnat_to = 0;
	c->snat_to = 0;
	return 0;
}

/* hairpin_forget: a new connection a port opens straight to an address
 * of its VPC (a TCP SYN, or one sg_egress just began tracking) drops an
 * entry of that port on its tuple, left by a hairpin to the receiver's
 * EIP, so that the new connection's replies are not taken for the old
 * one's. The driver calls it for a port hairpin_to says may have one. A
 * global function: its frame is not on the stages'. */
__attribute__((noinline)) int hairpin_forget(struct __sk_buff *skb, struct pctx *c)
{
	if (!c || cfg_trace)
		return 0;
	struct tuple t = tuple_of(skb);
	int syn = t.proto == IPPROTO_TCP && (t.tcp_flags & (TCP_SYN | 0x10)) == TCP_SYN;
	if (!t.ok || !(syn || (c->tflags & TRF_CT_NEW)))
		return 0;
	struct hairpin_key k = {.vpc = c->vpc, .raddr = t.daddr, .saddr = t.saddr, .rport = t.dport, .sport = t.sport, .proto = t.proto};
	struct hairpin_entry *e = bpf_map_lookup_elem(&hairpin_ct_v1, &k);
	if (e && e->ifindex == c->ifindex)
		bpf_map_delete_elem(&hairpin_ct_v1, &k);
	return 0;
}

/* hairpin_reply_key gives the key of what the packet at ETH_HLEN is a
 * reply to, from the receiver: its 5-tuple reversed, or for an ICMP error
 * from the receiver the connection it quotes. Returns 0, or -1 when it is
 * neither (an ICMP message other than an echo reply or an error, an error
 * about another address, too short). */
static __always_inline int hairpin_reply_key(struct __sk_buff *skb, struct hairpin_key *k)
{
	struct iphdr ip;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)) < 0 || ip.ihl < 5 || (bpf_ntohs(ip.frag_off) & IP_OFFSET_MASK))
		return -1;
	__u32 l4 = ETH_HLEN + ip.ihl * 4;
	__be16 ports[2];
	k->proto = ip.protocol;
	if (ip.protocol == IPPROTO_TCP || ip.protocol == IPPROTO_UDP) {
		if (bpf_skb_load_bytes(skb, l4, ports, 4) < 0)
			return -1;
		k->raddr = ip.saddr, k->saddr = ip.daddr, k->rport = ports[0], k->sport = ports[1];
		return 0;
	}
	if (ip.protocol != IPPROTO_ICMP)
		return -1;
	__u8 type;
	if (bpf_skb_load_bytes(skb, l4, &type, 1) < 0)
		return -1;
	if (type == 0) { /* echo reply */
		if (bpf_skb_load_bytes(skb, l4 + 4, ports, 2) < 0)
			return -1;
		k->raddr = ip.saddr, k->saddr = ip.daddr, k->rport = ports[0], k->sport = ports[0];
		return 0;
	}
	if (type != ICMP_DEST_UNREACH && type != ICMP_TIME_EXCEEDED && type != ICMP_PARAMETERPROB)
		return -1;
	struct iphdr in;
	if (bpf_skb_load_bytes(skb, l4 + 8, &in, sizeof(in)) < 0 || in.ihl < 5 || in.daddr != ip.saddr || in.saddr != ip.daddr)
		return -1;
	k->proto = in.protocol;
	k->raddr = in.daddr, k->saddr = in.saddr;
	__u32 il4 = l4 + 8 + in.ihl * 4;
	if (in.protocol == IPPROTO_ICMP) { /* about an echo request: its identifier */
		if (bpf_skb_load_bytes(skb, il4 + 4, ports, 2) < 0)
			return -1;
		k->rport = k->sport = ports[0];
		return 0;
	}
	if (bpf_skb_load_bytes(skb, il4, ports, 4) < 0)
		return -1;
	k->sport = ports[0], k->rport = ports[1];
	return 0;
}

/* hairpin_back translates a reply to a hairpin from a port without an
 * EIP back, before the sender's sg_ingress: its source (and an ICMP
 * error's quoted destination) from the receiver's address to the EIP the
 * sender called, with no identity. Only for a connection the sender's
 * own egress noted (hairpin_track), delivered to the sender's own port.
 * The driver calls it only for a port hairpin_to says may have one.
 * Returns 1 translated, 0 not a hairpin's reply, -1 malformed. A global
 * function: its frame is not on the stages'. */
__attribute__((noinline)) int hairpin_back(struct __sk_buff *skb, struct pctx *c)
{
	if (!c) /* the verifier checks a global function alone: c is never NULL */
		return -1;
	__u32 port = c->d.ifindex;
	__u64 *m = port < HAIRPIN_PORTS ? bpf_map_lookup_elem(&hairpin_ports_v1, &port) : NULL;
	__u64 now = bpf_ktime_get_ns();
	if (m && now - *m >= cfg_ct_timeout_ns)
		return 0; /* none lately */
	struct iphdr ip;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)) < 0)
		return 0;
	struct frag_key fk = frag_key_of(c->vpc, &ip, FRAG_HAIRPIN);
	if (later_frag(&ip)) {
		/* no ports: the EIP its first fragment came back from (frag.h) */
		__be32 eip = frag_recall(&fk);
		if (!eip)
			return 0;
		if (nat_rewrite(skb, ip.saddr, eip, 1) < 0)
			return -1;
		c->gbp = 0;
		count(STAT_HAIRPIN_BACK);
		return 1;
	}
	struct hairpin_key k = {.vpc = c->vpc};
	if (hairpin_reply_key(skb, &k) < 0)
		return 0;
	struct hairpin_entry *e = bpf_map_lookup_elem(&hairpin_ct_v1, &k);
	if (!e || e->ifindex != port || !hairpin_live(e, now))
		return 0;
	if (!cfg_trace) {
		e->seen_ns = now;
		hairpin_mark(port, now);
		if (first_frag(&ip))
			frag_remember(&fk, e->eip);
	}
	if (nat_rewrite(skb, k.raddr, e->eip, 1) < 0)
		return -1;
	c->gbp = 0;
	count(STAT_HAIRPIN_BACK);
	return 1;
}

#endif
