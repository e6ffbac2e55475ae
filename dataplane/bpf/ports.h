/* VM ports: the host side of each VM's veth, or its tap, keyed by ifindex. */
#ifndef COURIER_PORTS_H
#define COURIER_PORTS_H

#include "common.h"
#include "vxnets.h"

#define PORT_F_SECURITY 0x1 /* enforce the port's MAC and addresses */
#define PORT_F_UNKNOWN 0x2  /* addresses unknown: report what it uses */
#define PORT_F_TAP 0x4      /* a tap (a hypervisor's guest), not a veth: endpoints.h */
/* A live migration's destination, prepared, its guest not yet resumed
 * here: the guest's first announcement out of it (QEMU's RARP, or an
 * ARP) is reported to hostd, which binds the port here (EV_RESUMED). */
#define PORT_F_MIGRATING 0x8
/* The entry carries its vxnet's (port_entry.vx). */
#define PORT_F_VXNET 0x10

struct port {
	__u32 vni;        /* its vxnet */
	__u32 vpc;        /* its VPC's tunnel key */
	__u8 mac[6];
	__u16 mtu;        /* frames longer than mtu + ETH_HLEN are dropped */
	__u32 flags;
	__u32 tunnel_key; /* the port's key in its vxnet (for tracing) */
	/* Its first fixed address (0: none), also in port_addrs: what it
	 * sends from it is admitted without that lookup, ~30 ns on every
	 * packet a port sends (AMD EPYC with SRSO, TestVMPathCost, #21). */
	__be32 ip;
};

/* A port's entry in ports_v3: the port, and a copy of its vxnet's entry
 * (vxnets_v2, PORT_F_VXNET), so that port_sec, on every packet a port
 * sends, looks up one entry where it looked up two: the vxnet's hash
 * lookup was one more bucket and element to bring into the cache, and a
 * call (#21). Both are compiled from the same State (maps.go): a vxnet
 * whose entry changes has its ports' copies rewritten right after it
 * (refreshPortCopies), as a VPC's has its vxnets'. Without the flag
 * (the vxnet is not there) port_sec looks the vxnet up, and drops. */
struct port_entry {
	struct port port;
	struct vxnet vx;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32); /* ifindex */
	__type(value, struct port_entry);
} ports_v3 SEC(".maps");

/* Addresses a port may send from: its fixed IPs and virtual IPs. */
#define ADDR_F_FIXED 0x1
#define ADDR_F_VIP 0x2

struct port_addr_key {
	__u32 ifindex;
	__be32 ip;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct port_addr_key);
	__type(value, __u32); /* ADDR_F_* */
} port_addrs_v1 SEC(".maps");

static __always_inline __u32 port_addr(__u32 ifindex, __be32 ip)
{
	struct port_addr_key k = {.ifindex = ifindex, .ip = ip};
	__u32 *f = bpf_map_lookup_elem(&port_addrs_v1, &k);
	return f ? *f : 0;
}

#endif
