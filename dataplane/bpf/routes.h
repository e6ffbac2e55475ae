/* VPC routing: one longest-prefix-match trie for every VPC, keyed by
 * (VPC, destination). A connected vxnet routes to its VNI; a static route
 * to a next hop inside one of the VPC's vxnets. */
#ifndef COURIER_ROUTES_H
#define COURIER_ROUTES_H

#include "common.h"

struct route_key {
	__u32 prefixlen; /* 32 (the VPC) + the IPv4 prefix length */
	__u32 vpc;       /* big endian, so that it is the leading bits */
	__be32 ip;
};

struct route {
	__u32 vni;      /* the vxnet of the destination or next hop */
	__be32 nexthop; /* 0: the destination itself (connected) */
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct route_key);
	__type(value, struct route);
} routes_v1 SEC(".maps");

static __always_inline struct route *route_lookup(__u32 vpc, __be32 dst)
{
	struct route_key k = {.prefixlen = 64, .vpc = bpf_htonl(vpc), .ip = dst};
	return bpf_map_lookup_elem(&routes_v1, &k);
}

#endif
