/* Physical-network EIPs: addresses of the data centre's own network (an
 * External_Network of kind physical), bound 1:1 to ports and served by the
 * port's host itself, with no gateway on the path. The network is on the
 * hosts' underlay segment: its servers ARP for an EIP, and the host of its
 * port answers on its underlay NIC (phys_ingress) and translates what
 * comes in to the port's address, statelessly (eip.h's nat_rewrite), then
 * delivers it through the port's ingress security groups. What the port
 * sends outside its VPC leaves from the underlay NIC (eip_out marks it
 * DEST_PHYS; the driver translates the source after sg_egress and calls
 * phys_send), the kernel resolving the destination's MAC on that segment
 * (bpf_redirect_neigh).
 *
 * One host answers for an address at a time. An entry of phys_local_v1
 * counts only while its port's interface is on this host: phys_live_v1 is
 * a device map, from which the kernel removes an interface the moment it
 * is unregistered here (deleted, or moved to another namespace), before
 * any other host can have it; hostd adds the entry back only once the
 * southbound binds the port here. A move therefore silences the old host
 * before the new one can answer, whatever either hostd is doing, and the
 * new host announces the address (gratuitous ARP, hostd/phys.go).
 *
 * Maps: phys_local_v1 (EIP -> the port's address, VPC and ifindex),
 * phys_ports_v1 (ifindex -> its physical EIP), phys_deny_v1 (this host's
 * underlay addresses, which no port reaches, nor vteps_v1's), phys_live_v1 (the ports'
 * interfaces), phys_cfg_v1 (the underlay NIC and its MAC). */
#ifndef COURIER_PHYS_H
#define COURIER_PHYS_H

#include <linux/if_packet.h>

#include "pipeline.h"
#include "mtu.h"
#include "eip.h"
#include "endpoints.h"
#include "tunnel.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __be32); /* physical EIP */
	__type(value, struct eip_local);
} phys_local_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);    /* ifindex */
	__type(value, __be32); /* its physical EIP */
} phys_ports_v1 SEC(".maps");

/* Where no port with a physical EIP sends, beside the hosts' VTEPs
 * (vteps_v1, tunnel.h): this host's underlay NIC's own addresses and its
 * networks' broadcast addresses. The network shares the hosts' segment,
 * and a host's collect-metadata VXLAN device takes any VNI from whoever
 * reaches it: a tenant sending to it could put any VNI and group on a
 * VXLAN packet. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC); /* empty on most hosts */
	__type(key, __be32);
	__type(value, __u8);
} phys_deny_v1 SEC(".maps");

/* The ports' interfaces, by ifindex; the kernel deletes an entry when its
 * interface leaves this namespace. */
struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u32);
} phys_live_v1 SEC(".maps");

struct phys_cfg {
	__u32 ifindex; /* the underlay NIC; 0: no physical EIP is served */
	__u8 mac[6];   /* its MAC */
	__u16 mtu;     /* the VMs': longer packets for them are cut or refused (mtu.h); 0: none */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct phys_cfg);
} phys_cfg_v1 SEC(".maps");

/* phys_serving is the entry of a physical EIP this host serves now: its
 * port's interface is still here. */
static __always_inline struct eip_local *phys_serving(__be32 addr)
{
	struct eip_local *e = bpf_map_lookup_elem(&phys_local_v1, &addr);
	if (!e)
		return NULL;
	__u32 ifindex = e->ifindex;
	if (!bpf_map_lookup_elem(&phys_live_v1, &ifindex))
		return NULL;
	return e;
}

/* phys_arp answers a request for a served EIP with the underlay NIC's
 * MAC, back out of the NIC; anything else is the host's. */
static __always_inline int phys_arp(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct arp_eth *arp = (void *)(eth + 1);
	if ((void *)(arp + 1) > data_end)
		return TC_ACT_OK;
	if (arp->op != bpf_htons(ARPOP_REQUEST) || arp->ptype != bpf_htons(ETH_P_IP) || arp->hlen != 6 || arp->plen != 4)
		return TC_ACT_OK;
	__be32 tpa = arp->tpa, spa = arp->spa;
	if (spa == tpa || !phys_serving(tpa))
		return TC_ACT_OK; /* another's announcement, or not ours */
	__u32 zero = 0;
	struct phys_cfg *cfg = bpf_map_lookup_elem(&phys_cfg_v1, &zero);
	if (!cfg || !cfg->ifindex)
		return TC_ACT_OK;
	__u8 req[6];
	__builtin_memcpy(req, arp->sha, 6);
	__builtin_memcpy(eth->h_dest, req, 6);
	__builtin_memcpy(eth->h_source, cfg->mac, 6);
	arp->op = bpf_htons(ARPOP_REPLY);
	__builtin_memcpy(arp->tha, req, 6);
	arp->tpa = spa;
	__builtin_memcpy(arp->sha, cfg->mac, 6);
	arp->spa = tpa;
	count(STAT_ARP_REPLY);
	test_record(skb->ifindex, 0);
	return bpf_redirect(skb->ifindex, 0);
}

/* phys_mtu: what comes in for a served EIP longer than the VMs' MTU
 * leaves as its first fragment, its rest coming around (0), or is
 * answered with fragmentation needed from the EIP itself, as if from
 * the VM's own link (mtu.h); a rest come around is cut first. Returns 0
 * to go on, or the verdict. */
static __always_inline int phys_mtu(struct __sk_buff *skb)
{
	__u32 zero = 0;
	struct phys_cfg *cfg = bpf_map_lookup_elem(&phys_cfg_v1, &zero);
	if (!cfg || !cfg->mtu)
		return 0;
	if (skb->mark == FRAG_REST_MARK && frag_rest(skb, cfg->mtu) < 0) {
		count_drop(DROP_MTU_EXCEEDED);
		return TC_ACT_SHOT;
	}
	if (!too_big(skb, cfg->mtu, bpf_htons(ETH_P_IP)))
		return 0;
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr *ip = (void *)(long)skb->data + ETH_HLEN;
	if ((void *)(ip + 1) > data_end)
		return TC_ACT_SHOT;
	return mtu_exceeded(skb, cfg->mtu, ip->daddr);
}

#define PHYS_DELIVER 0x100 /* not a TC verdict: deliver c's packet through sg_ingress */

/* phys_from_underlay: an ARP request for a served EIP is answered; an
 * IPv4 packet addressed to this NIC for one is translated to its port's
 * address and readied (c) for the port's ingress security groups.
 * Anything else, VXLAN first of all (one comparison), is the host's. A
 * global function: its frame is not on the pipeline's stack. */
__attribute__((noinline)) int phys_from_underlay(struct __sk_buff *skb, struct pctx *c)
{
	if (!c) /* the verifier checks a global function alone: c is never NULL */
		return TC_ACT_OK;
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(eth + 1) > data_end)
		return TC_ACT_OK;
	if (eth->h_proto == bpf_htons(ETH_P_ARP))
		return phys_arp(skb);
	if (eth->h_proto != bpf_htons(ETH_P_IP) || (void *)(ip + 1) > data_end)
		return TC_ACT_OK;
	__be32 daddr = ip->daddr;
	if (daddr == bpf_htonl(cfg_local_vtep))
		return TC_ACT_OK;
	/* Only frames for this NIC, as the gateway's uplink (gateway.h): a
	 * segment flooding a frame meant for the old host's MAC must not
	 * have it delivered twice. */
	if (skb->pkt_type != PACKET_HOST)
		return TC_ACT_OK;
	struct eip_local *e = phys_serving(daddr);
	if (!e)
		return TC_ACT_OK;
	int v = phys_mtu(skb);
	if (v)
		return v;
	struct ep_key k = {.vpc = e->vpc, .ip = e->addr};
	struct local_ep *l = bpf_map_lookup_elem(&local_eps_v1, &k);
	c->vpc = e->vpc;
	if (!l || !vpc_of(c)) {
		count_drop(DROP_NO_PORT);
		return TC_ACT_SHOT;
	}
	__be32 to = e->addr;
	if (nat_rewrite(skb, daddr, to, 0) < 0) {
		count_drop(DROP_MALFORMED);
		return TC_ACT_SHOT;
	}
	if (bpf_skb_store_bytes(skb, 0, l->mac, 6, 0) < 0 || bpf_skb_store_bytes(skb, 6, c->vx.vpce.gw_mac, 6, 0) < 0) {
		count_drop(DROP_MALFORMED);
		return TC_ACT_SHOT;
	}
	c->vni = l->vni;
	c->dvni = l->vni;
	c->target = to;
	c->sg_done = 1; /* only the port's ingress groups: nothing sent it from a port */
	local_dest(&c->d, l);
	return PHYS_DELIVER;
}

/* phys_send sends what a port with a physical EIP addresses outside its
 * VPC (eip_out, after sg_egress) out of the underlay NIC from its EIP,
 * to the destination itself on the physical network's segment. */
__attribute__((noinline)) int phys_send(struct __sk_buff *skb, struct pctx *c)
{
	if (!c) /* the verifier checks a global function alone: c is never NULL */
		return TC_ACT_SHOT;
	if (nat_rewrite(skb, c->snat_from, c->snat_to, 1) < 0) {
		count_drop(DROP_MALFORMED);
		return TC_ACT_SHOT;
	}
	count(STAT_REMOTE_TX);
	test_record(c->d.ifindex, 0);
	struct bpf_redir_neigh nh = {.nh_family = 2 /* AF_INET */, .ipv4_nh = c->target};
	return bpf_redirect_neigh(c->d.ifindex, &nh, sizeof(nh), 0);
}

/* phys_route: eip_out's branch for a port whose EIP is physical. */
static __always_inline int phys_route(struct __sk_buff *skb, struct pctx *c, __be32 eip)
{
	__u32 zero = 0;
	struct phys_cfg *cfg = bpf_map_lookup_elem(&phys_cfg_v1, &zero);
	if (!cfg || !cfg->ifindex)
		return drop_for(c, DROP_NO_GATEWAY);
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return drop_for(c, DROP_MALFORMED);
	/* Broadcast and multicast reach every host's VXLAN socket at once
	 * (it listens on every address, and takes both): refused, with the
	 * hosts' own addresses and this host's subnets' broadcast. */
	__be32 dst = ip->daddr;
	__u32 host = bpf_ntohl(dst); /* vteps_v1's order */
	if (dst == 0xffffffff || (dst & bpf_htonl(0xf0000000)) == bpf_htonl(0xe0000000) ||
	    bpf_map_lookup_elem(&vteps_v1, &host) || bpf_map_lookup_elem(&phys_deny_v1, &dst))
		return drop_for(c, DROP_PHYS_UNDERLAY);
	c->hit = HIT_EIP;
	c->snat_from = ip->saddr;
	c->snat_to = eip;
	c->target = ip->daddr; /* on the segment: its own next hop */
	if (routed_hop(skb, c, eth, ip, NULL) < 0)
		return drop_for(c, DROP_MALFORMED);
	struct dest d = {.kind = DEST_PHYS, .ifindex = cfg->ifindex};
	c->d = d;
	return V_OUTPUT;
}

SEC("tc")
int phys_ingress(struct __sk_buff *skb)
{
	struct pctx c = {};
	int v = phys_from_underlay(skb, &c);
	if (v != PHYS_DELIVER)
		return v;
	return run_pipeline(skb, &c, STAGE_SG_INGRESS);
}

#endif
