/* Vxnets (by VNI) and VPCs (by tunnel key), and the flags the logical
 * flows of each stage compile to (hostd/lflow.go). */
#ifndef COURIER_VXNETS_H
#define COURIER_VXNETS_H

#include "common.h"

/* vxnet flags */
#define VX_F_PSEC_MAC 0x01     /* port_sec: drop(spoof_mac) */
#define VX_F_PSEC_IP 0x02      /* port_sec: drop(spoof_ip) */
#define VX_F_ARP_GW 0x04       /* arp_rsp: answer the gateway */
#define VX_F_ARP_PROXY 0x08    /* arp_rsp: answer known addresses */
#define VX_F_ARP_MISS_HUB 0x10 /* arp_rsp: unknown addresses to a hub */
#define VX_F_L2_ROUTE 0x20     /* l2_lookup: frames for the gateway MAC are routed */
#define VX_F_L2_OUTPUT 0x40    /* l2_lookup: deliver known destinations */
#define VX_F_L2_MISS_HUB 0x80  /* l2_lookup: unknown destinations to a hub */
#define VX_F_GW_PING 0x100     /* l2_lookup: the gateway answers pings */

struct vxnet {
	__u32 vpc;
	__be32 net;  /* network address */
	__be32 mask;
	__be32 gw_ip;
	__u8 gw_mac[6];
	__u16 pad;
	__u32 flags;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32); /* VNI */
	__type(value, struct vxnet);
} vxnets_v1 SEC(".maps");

/* VPC flags */
#define VPC_F_TTL 0x1          /* ip_route: drop(ttl_exceeded) */
#define VPC_F_DST_LOCAL 0x2    /* dst_lookup: deliver local destinations */
#define VPC_F_DST_KNOWN 0x4    /* dst_lookup: deliver known remote ones */
#define VPC_F_DST_MISS_HUB 0x8 /* dst_lookup: unknown ones to a hub */

struct vpc {
	__u8 gw_mac[6];
	__u16 pad;
	__u32 flags;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32); /* VPC tunnel key */
	__type(value, struct vpc);
} vpcs_v1 SEC(".maps");

#endif
