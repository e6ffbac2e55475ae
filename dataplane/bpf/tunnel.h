/* Sending into and reading from the collect-metadata VXLAN device. */
#ifndef COURIER_TUNNEL_H
#define COURIER_TUNNEL_H

#include "common.h"
#include "config.h"
#include "scratch.h"

struct tunnel_rec {
	__u32 vtep; /* remote, host byte order */
	__u32 vni;
	__u32 gbp;   /* VXLAN GBP field (sg.h) */
	__u32 local; /* received: the outer destination (0: this host's VTEP) */
};

/* The VXLAN option the kernel carries for a GBP-enabled device. */
struct vxlan_md {
	__u32 gbp;
};

/* Tests and traces only (cfg_test, cfg_trace): the key of the packet
 * under test, and the key the program set on its way out. Not pinned:
 * each loaded copy of the programs has its own. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tunnel_rec);
} tunnel_in SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tunnel_rec);
} tunnel_out SEC(".maps");

/* The VTEPs this host takes VXLAN from: every chassis's (hostd writes
 * them from the southbound's Chassis rows), host byte order. The device
 * takes any VNI and group identity from anyone who reaches its port, so
 * without this whatever shares the hosts' segment could put a packet
 * into any VPC. 0.0.0.0, never a VTEP, marks the list as in force: a
 * data plane driven without a southbound (tests, an upgrade before its
 * first Apply) has none and takes from anyone. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, __u8);
} vteps_v1 SEC(".maps");

/* vtep_known: vtep may send here. One flow's packets come from one
 * sender: a CPU remembers the last it found in the list (its scratch
 * slot: the sender and cfg_vtep_gen, one 8-byte store, never torn), which
 * holds until Apply changes the list. The generation is read before the
 * lookup, so that a change during it is not remembered as older. The
 * marker is read only for a sender not in the list; 0.0.0.0 is its key,
 * no sender's (Linux takes a 0.0.0.0 source to a broadcast address). */
static __always_inline int vtep_known(__u32 vtep)
{
	__u32 marker = 0;
	if (!vtep)
		return !bpf_map_lookup_elem(&vteps_v1, &marker);
	__u64 now = (__u64)cfg_vtep_gen << 32 | vtep;
	__u64 *seen = scratch_of(SCRATCH_VTEP);
	if (seen && *seen == now)
		return 1;
	if (bpf_map_lookup_elem(&vteps_v1, &vtep)) {
		if (seen)
			*seen = now;
		return 1;
	}
	return !bpf_map_lookup_elem(&vteps_v1, &marker);
}

/* set_tunnel makes the next redirect to the VXLAN device go to vtep with
 * vni and, when gbp is not 0, that Group Based Policy field; the kernel
 * picks the UDP source port from the inner flow hash. */
static __always_inline int set_tunnel(struct __sk_buff *skb, __u32 vtep, __u32 vni, __u32 gbp)
{
	struct bpf_tunnel_key key = {};
	key.remote_ipv4 = vtep;
	/* The device's own local address does not apply to a key's packet:
	 * without this the route's source would, and the receivers take
	 * VXLAN only from VTEPs. */
	key.local_ipv4 = cfg_local_vtep;
	key.tunnel_id = vni;
	key.tunnel_ttl = cfg_tunnel_ttl;
	if (cfg_test || cfg_trace) {
		__u32 zero = 0;
		struct tunnel_rec r = {.vtep = vtep, .vni = vni, .gbp = gbp};
		bpf_map_update_elem(&tunnel_out, &zero, &r, BPF_ANY);
	}
	int err = bpf_skb_set_tunnel_key(skb, &key, sizeof(key), BPF_F_ZERO_CSUM_TX);
	if (err < 0 || !gbp)
		return err;
	struct vxlan_md md = {.gbp = gbp};
	return bpf_skb_set_tunnel_opt(skb, &md, sizeof(md));
}

/* get_tunnel reads the VNI, the sending host and the GBP field (0 if
 * none) of a received packet. -1: no key; -2: not sent to this host's
 * VTEP but to another of its addresses, a broadcast or a multicast
 * group, where its VXLAN socket takes it too and no host sends. */
static __always_inline int get_tunnel(struct __sk_buff *skb, __u32 *vtep, __u32 *vni, __u32 *gbp)
{
	__u32 local;
	if (cfg_test || cfg_trace) {
		__u32 zero = 0;
		struct tunnel_rec *r = bpf_map_lookup_elem(&tunnel_in, &zero);
		if (!r)
			return -1;
		*vtep = r->vtep;
		*vni = r->vni;
		*gbp = r->gbp;
		local = r->local ? r->local : cfg_local_vtep;
	} else {
		struct bpf_tunnel_key key = {};
		if (bpf_skb_get_tunnel_key(skb, &key, sizeof(key), 0) < 0)
			return -1;
		*vtep = key.remote_ipv4;
		*vni = key.tunnel_id;
		local = key.local_ipv4;
		struct vxlan_md md = {};
		*gbp = bpf_skb_get_tunnel_opt(skb, &md, sizeof(md)) == sizeof(md) ? md.gbp : 0;
	}
	if (cfg_local_vtep && local != cfg_local_vtep)
		return -2;
	return 0;
}

#endif
