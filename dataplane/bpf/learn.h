/* Learning, in band (DESIGN.md §4).
 *
 * A learn message is a VXLAN packet between hosts, carrying instead of a
 * VM's frame:
 *
 *   Ethernet (14 bytes): dst 00:00:00:00:00:00, src 00:00:00:00:00:00,
 *                        ethertype 0x88B5 (IEEE local experimental)
 *   struct learn_msg (24 bytes, network byte order):
 *     u8  version   1
 *     u8  op        1 learn: ip lives at vtep, in vxnet vni, with mac
 *                   2 forget: drop what you know of ip
 *                   3 unknown: no port has ip (from a hub); drop what
 *                     you send to it for a moment
 *                   4 probe: are you there? (to a hub; vtep: the sender)
 *                   5 probe reply (from a hub; vtep: the hub)
 *     u16 reserved  0
 *     u32 vni       the destination's vxnet
 *     u32 ip        the destination
 *     u8  mac[6]    its MAC (learn)
 *     u16 reserved  0
 *     u32 vtep      its host (learn)
 *
 * The outer VXLAN VNI is any vxnet of the destination's VPC (the
 * receiver finds the VPC from it); the outer source address is the
 * sender of the message. A host installs a learned entry only if that
 * source is one of the VPC's hubs, and applies a forget only if it comes
 * from a hub or from the very host its entry points to, so a stray
 * message can at worst send traffic through a hub, never elsewhere.
 * Unknown and probe replies, too, count only from the VPC's hubs.
 *
 * Probes: hostd sends one to each hub its VPCs use every 100 ms or so;
 * the hub's tunnel program answers in the kernel (a hub whose data plane
 * forwards is alive, whatever its hostd does), and the reply stamps
 * hub_seen. pick_hub (hubs.h) skips a hub silent for longer than
 * cfg_hub_down_ns, so new flows stop going to a dead hub long before
 * southd, judging heartbeats, replaces it.
 */
#ifndef COURIER_LEARN_H
#define COURIER_LEARN_H

#include "common.h"

#define LEARN_VERSION 1
#define LEARN_OP_LEARN 1
#define LEARN_OP_FORGET 2
#define LEARN_OP_UNKNOWN 3
#define LEARN_OP_PROBE 4
#define LEARN_OP_PROBE_REPLY 5

struct learn_msg {
	__u8 version;
	__u8 op;
	__u16 reserved;
	__be32 vni;
	__be32 ip;
	__u8 mac[6];
	__u16 reserved2;
	__be32 vtep;
};

/* Hub side: when each sender was last told about each destination. */
struct learn_rl_key {
	__u32 sender; /* host byte order */
	__u32 vpc;
	__be32 ip;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct learn_rl_key);
	__type(value, __u64);
} learn_rl_v1 SEC(".maps");

#endif
