/* Where addresses live, keyed by (VPC, IP): on this host (local_eps), in
 * the full bindings of the VPCs a hub serves (hub_eps), or learned from a
 * hub (the LRU cache). A host's state grows with its ports and its active
 * peers, not with the VPC. */
#ifndef COURIER_ENDPOINTS_H
#define COURIER_ENDPOINTS_H

#include "common.h"
#include "config.h"

struct ep_key {
	__u32 vpc;
	__be32 ip;
};

/* A VM interface is the host side of a veth or a hypervisor's tap.
 * bpf_redirect_peer reaches a veth's peer (the VM) directly; a tap has no
 * peer, and what is sent out of it (bpf_redirect to its egress) is what
 * its guest receives. LEP_F_TAP says which; it took the slot of what was
 * padding, so an entry written before it (0) is a veth. */
#define LEP_F_TAP 0x1

struct local_ep {
	__u32 ifindex; /* host side of the VM's veth, or its tap */
	__u32 vni;
	__u8 mac[6];
	__u16 flags; /* LEP_F_* */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct ep_key);
	__type(value, struct local_ep);
} local_eps_v1 SEC(".maps");

struct remote_ep {
	__u32 vtep; /* the host, host byte order */
	__u32 vni;
	__u8 mac[6];
	__u16 pad;
};

/* Hubs only: every binding of the VPCs the hub serves. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 131072);
	__type(key, struct ep_key);
	__type(value, struct remote_ep);
} hub_eps_v1 SEC(".maps");

struct cached_ep {
	__u32 vtep;
	__u32 vni;
	__u8 mac[6];
	__u16 pad;
	__u64 learned_ns; /* when the last learn message for it arrived */
	__u64 used_ns;    /* last packet sent with it */
	__u64 hits;
};

/* Learned direct paths. LRU: under pressure the least used go; hostd also
 * ages out entries idle for long. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct ep_key);
	__type(value, struct cached_ep);
} cache_v1 SEC(".maps");

/* Destinations a hub said it does not know, and until when (ns) they
 * are dropped here (unknown_ttl) rather than sent to a hub again: one VM
 * sending to an address nobody has costs the hubs one packet per
 * interval, not one per packet. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct ep_key);
	__type(value, __u64);
} unknown_v1 SEC(".maps");

static __always_inline int known_unknown(__u32 vpc, __be32 ip)
{
	struct ep_key k = {.vpc = vpc, .ip = ip};
	__u64 *until = bpf_map_lookup_elem(&unknown_v1, &k);
	if (!until)
		return 0;
	if (bpf_ktime_get_ns() < *until)
		return 1;
	if (!cfg_trace)
		bpf_map_delete_elem(&unknown_v1, &k);
	return 0;
}

/* First miss per destination, for the learning latency histogram. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct ep_key);
	__type(value, __u64);
} miss_ts_v1 SEC(".maps");

#endif
