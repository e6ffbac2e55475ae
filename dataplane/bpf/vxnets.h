/* Vxnets (by VNI) and VPCs (by tunnel key), with the flags the logical
 * flows of their stages compile to (hostd/lflow.go). */
#ifndef COURIER_VXNETS_H
#define COURIER_VXNETS_H

#include "common.h"

/* The flags (VX_F_*, VPC_F_*) are numbered in stages.h, from the
 * pipeline package. */

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
