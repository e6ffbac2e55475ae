/* Vxnets (by VNI) and VPCs (by tunnel key), with the flags the logical
 * flows of their stages compile to (hostd/lflow.go). */
#ifndef COURIER_VXNETS_H
#define COURIER_VXNETS_H

#include "common.h"

/* The flags (VX_F_*, VPC_F_*) are numbered in stages.h, from the
 * pipeline package. */

/* A VPC's entry (vpcs_v2), and the copy of it that every vxnet entry of
 * the VPC carries (vxnet.vpce), so that a packet's path, which has its
 * vxnet's entry in hand from its first stage, needs no lookup of it
 * (vpc_of): a hash lookup cost ~30 ns a packet on AMD EPYC with SRSO
 * (TestVMPathCost, #21). The data plane writes both from the same
 * compiled state (maps.go), so a change of the VPC's flags rewrites its
 * vxnets' entries in the same Apply. */
struct vpc {
	__u8 gw_mac[6];
	__u8 dflags;   /* VPC_D_*: what the data plane derives from the state, beside flags */
	__u8 span_len; /* VPC_D_ROUTE_BOUND: the smallest prefix that holds all its vxnets, */
	__u32 flags;   /* VPC_F_*, from the logical flows */
	__be32 span_net; /* ... at span_net (1 to 32 bits) */
};

/* vxnet.vpce holds the VPC's entry (0: the VPC has none here, and
 * vpc_of looks it up). */
#define VPC_D_ENTRY 0x1
/* The VPC's static routes leave its vxnets to their connected routes (no
 * static route lies inside a vxnet, as northd's CheckRoute refuses), so a
 * destination with a binding, which lies in its vxnet (northd checks
 * ports' and virtual addresses; port_sec an unknown port's), is routed
 * to that vxnet without the routes trie: ip_route's fast path. */
#define VPC_D_ROUTE_BOUND 0x2

struct vxnet {
	__u32 vpc;
	__be32 net;  /* network address */
	__be32 mask;
	__be32 gw_ip;
	__u8 gw_mac[6];
	__u16 pad;
	__u32 flags;
	struct vpc vpce; /* its VPC's entry (dflags VPC_D_ENTRY), copied */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32); /* VNI */
	__type(value, struct vxnet);
} vxnets_v2 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32); /* VPC tunnel key */
	__type(value, struct vpc);
} vpcs_v2 SEC(".maps");

#endif
