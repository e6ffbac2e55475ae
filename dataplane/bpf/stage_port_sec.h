/* STAGE_PORT_SEC: admit a frame from a VM port. A bound port, untagged,
 * within its MTU, from the port's MAC; ARP from the port's own addresses,
 * IPv4 from them too, and headers that hold together. A port with unknown
 * addresses may use free addresses of its own vxnet only; each new one is
 * reported to hostd, which, with southd, decides whether the port may
 * hold it. */
#ifndef COURIER_STAGE_PORT_SEC_H
#define COURIER_STAGE_PORT_SEC_H

#include "pipeline.h"
#include "endpoints.h"
#include "events.h"
#include "mtu.h"

/* usable_addr: a host address of the vxnet other than its gateway. */
static __always_inline int usable_addr(struct vxnet *vx, __be32 a)
{
	return (a & vx->mask) == vx->net && a != vx->net && a != (vx->net | ~vx->mask) && a != vx->gw_ip;
}

/* unknown_src checks a source address of a port with unknown addresses:
 * usable in its vxnet and not held by another port of this host. An
 * address it holds already (southd accepted it) needs no report. Returns
 * 0 or a drop reason. */
static __always_inline int unknown_src(struct pctx *c, __be32 src)
{
	if (!usable_addr(&c->vx, src))
		return DROP_SPOOF_IP;
	struct ep_key k = {.vpc = c->port.vpc, .ip = src};
	struct local_ep *l = bpf_map_lookup_elem(&local_eps_v1, &k);
	if (l)
		return l->ifindex == c->ifindex ? 0 : DROP_SPOOF_IP;
	report(EV_ADDR_SEEN, c->ifindex, src, c->port.vni, c->port.mac);
	c->tflags |= TRF_REPORT;
	return 0;
}

/* is_dhcp_request: UDP from port 68 to 67, whole (not a fragment), to
 * where l2_lookup hands it to the host's DHCP answer: broadcast or the
 * vxnet's gateway. A client without an address sends nothing else; any
 * other datagram from 0.0.0.0 would be forwarded as it came. */
static __always_inline int is_dhcp_request(struct pctx *c, struct iphdr *ip, void *data_end)
{
	/* The destination first: l2_lookup asks for every packet. */
	if (ip->daddr != 0xffffffff && ip->daddr != c->vx.gw_ip)
		return 0;
	__u8 *udp = (void *)ip + ip->ihl * 4;
	if (ip->protocol != IPPROTO_UDP || (void *)(udp + 4) > data_end)
		return 0;
	if (ip->frag_off & bpf_htons(0x3fff)) /* MF or an offset */
		return 0;
	return udp[0] == 0 && udp[1] == 68 && udp[2] == 0 && udp[3] == 67;
}

/* clamp_mss lowers the MSS option of a TCP SYN to what the port's MTU
 * carries, so that TCP works whatever MTU the VM thinks it has. Only an
 * MSS option that comes first is seen, as every common stack (Linux,
 * Windows, the BSDs) sends it: walking all options in the kernel costs
 * the verifier more than the odd SYN is worth, and path MTU discovery
 * (icmp_err) covers that one. */
static __always_inline void clamp_mss(struct __sk_buff *skb, struct pctx *c, __u32 ihl)
{
	__u32 off = ETH_HLEN + ihl;
	if (ihl > 60)
		return;
	/* Only a SYN is touched: its flags are read in place first, so that
	 * the stream's other packets cost no helper call. */
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__u8 *fl = data + off + 13;
	if ((void *)(fl + 1) <= data_end && !(*fl & 0x02))
		return;
	__u8 th[24];
	if (bpf_skb_load_bytes(skb, off, th, sizeof(th)) < 0 || !(th[13] & 0x02) || (th[12] >> 4) < 6)
		return;
	if (th[20] != 2 || th[21] != 4)
		return;
	__be16 old = *(__be16 *)&th[22];
	__u16 max = c->port.mtu - 40;
	if (bpf_ntohs(old) <= max)
		return;
	__be16 new = bpf_htons(max);
	if (bpf_skb_store_bytes(skb, off + 22, &new, 2, 0) == 0 && bpf_l4_csum_replace(skb, off + 16, old, new, 2) == 0) {
		count(STAT_MSS_CLAMPED);
		c->tflags |= TRF_MSS_CLAMP;
	}
}

/* src_addr: what the port may send from src (ADDR_F_*, 0: nothing),
 * its first fixed address known from its entry, any other looked up. */
static __always_inline __u32 src_addr(struct pctx *c, __be32 src)
{
	if (src && src == c->port.ip)
		return ADDR_F_FIXED;
	return port_addr(c->ifindex, src);
}

static __always_inline int port_sec_arp(struct __sk_buff *skb, struct pctx *c)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct arp_eth *arp = data + ETH_HLEN;
	if ((void *)(arp + 1) > data_end)
		return drop_for(c, DROP_MALFORMED);
	if (arp->htype != bpf_htons(1) || arp->ptype != bpf_htons(ETH_P_IP) || arp->hlen != 6 || arp->plen != 4)
		return drop_for(c, DROP_MALFORMED);
	__be32 spa = arp->spa;
	__u32 af = src_addr(c, spa);
	if ((c->port.flags & PORT_F_SECURITY) && (c->vx.flags & VX_F_PSEC_IP)) {
		__u8 sha[6];
		__builtin_memcpy(sha, arp->sha, 6);
		if (!mac_eq(sha, c->port.mac))
			return drop_for(c, DROP_SPOOF_MAC);
		if (spa != 0 && !af && !(c->port.flags & PORT_F_UNKNOWN))
			return drop_for(c, DROP_SPOOF_IP);
	}
	if (spa != 0 && !af && (c->port.flags & PORT_F_UNKNOWN)) {
		int why = unknown_src(c, spa);
		if (why)
			return drop_for(c, why);
	}
	if (af)
		c->hit = HIT_PORT_ADDR;
	return next_stage(c, STAGE_ARP_RSP);
}

static __always_inline int port_sec_ipv4(struct __sk_buff *skb, struct pctx *c)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr *ip = data + ETH_HLEN;
	if ((void *)(ip + 1) > data_end)
		return drop_for(c, DROP_MALFORMED);
	if (ip->version != 4 || ip->ihl < 5 || data + ETH_HLEN + ip->ihl * 4 > data_end)
		return drop_for(c, DROP_MALFORMED);
	__be32 src = ip->saddr;
	if (src_addr(c, src)) {
		c->hit = HIT_PORT_ADDR;
	} else if (c->port.flags & PORT_F_UNKNOWN) {
		int why = src ? unknown_src(c, src) : is_dhcp_request(c, ip, data_end) ? 0 : DROP_SPOOF_IP;
		if (why)
			return drop_for(c, why);
	} else if (src == 0 && is_dhcp_request(c, ip, data_end)) {
		/* a DHCP client before it has an address */
	} else if ((c->port.flags & PORT_F_SECURITY) && (c->vx.flags & VX_F_PSEC_IP)) {
		return drop_for(c, DROP_SPOOF_IP);
	}
	if ((c->vx.flags & VX_F_MSS_CLAMP) && ip->protocol == IPPROTO_TCP)
		clamp_mss(skb, c, ip->ihl * 4);
	return next_stage(c, STAGE_L2_LOOKUP);
}

__attribute__((noinline)) int stage_port_sec(struct __sk_buff *skb, struct pctx *c)
{
	if (!c) /* the verifier checks a global function alone: c is never NULL */
		return V_DROP;
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return drop_for(c, DROP_MALFORMED);
	__u32 ifindex = c->ifindex;
	struct port_entry *e = bpf_map_lookup_elem(&ports_v3, &ifindex);
	if (!e)
		return drop_for(c, DROP_NO_PORT);
	struct port *port = &e->port;
	c->port = *port;
	c->hit = HIT_PORT;
	__be16 proto = eth->h_proto;
	if (skb->vlan_present || proto == bpf_htons(0x8100) || proto == bpf_htons(0x88A8))
		return drop_for(c, DROP_VLAN);
	__u32 vni = port->vni;
	if (port->flags & PORT_F_VXNET) {
		c->vx = e->vx;
	} else {
		struct vxnet *vx = bpf_map_lookup_elem(&vxnets_v2, &vni);
		if (!vx)
			return drop_for(c, DROP_UNKNOWN_VNI);
		c->vx = *vx;
	}
	c->vni = vni;
	c->dvni = vni;
	c->vpc = port->vpc;
	if (too_big(skb, port->mtu, proto)) {
		/* The host side's MTU lets a VM that ignores the overlay's
		 * send more; it learns the path MTU from the error. */
		c->reason = DROP_OVERSIZE;
		return proto == bpf_htons(ETH_P_IP) ? next_stage(c, STAGE_ICMP_ERR) : V_DROP;
	}
	if ((port->flags & PORT_F_SECURITY) && (c->vx.flags & VX_F_PSEC_MAC) && !mac_eq(eth->h_source, port->mac))
		return drop_for(c, DROP_SPOOF_MAC);
	/* Only a port hostd flagged as migrating here reports its guest's
	 * resumption, by RARP or ARP: from any other port, RARP is dropped
	 * below and an ARP only goes on, so a guest cannot take a binding
	 * by announcing itself. */
	if ((port->flags & PORT_F_MIGRATING) && (proto == bpf_htons(ETH_P_RARP) || proto == bpf_htons(ETH_P_ARP)))
		report(EV_RESUMED, ifindex, 0, vni, port->mac);
	if (proto == bpf_htons(ETH_P_ARP))
		return port_sec_arp(skb, c);
	if (proto == bpf_htons(ETH_P_IP))
		return port_sec_ipv4(skb, c);
	if (proto == bpf_htons(ETH_P_IPV6))
		return drop_for(c, DROP_IPV6);
	return drop_for(c, DROP_UNSUPPORTED_PROTO);
}

#endif
