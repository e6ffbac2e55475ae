/* Common definitions for Courier's DVR. */
#ifndef COURIER_COMMON_H
#define COURIER_COMMON_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "stages.h"
#include "scratch.h"

#define ETH_P_COURIER_LEARN 0x88B5 /* IEEE local experimental ethertype */
#ifndef ETH_P_RARP
#define ETH_P_RARP 0x8035 /* what QEMU announces a migrated guest with */
#endif
#define ARPOP_REQUEST 1
#define ARPOP_REPLY 2

/* ARP for Ethernet and IPv4, as it appears after the Ethernet header. */
struct arp_eth {
	__be16 htype;
	__be16 ptype;
	__u8 hlen;
	__u8 plen;
	__be16 op;
	__u8 sha[ETH_ALEN];
	__be32 spa;
	__u8 tha[ETH_ALEN];
	__be32 tpa;
} __attribute__((packed));

static __always_inline int mac_eq(const __u8 *a, const __u8 *b)
{
	return ((__u32 *)a)[0] == ((__u32 *)b)[0] && ((__u16 *)a)[2] == ((__u16 *)b)[2];
}

static __always_inline void mac_copy(__u8 *dst, const __u8 *src)
{
	((__u32 *)dst)[0] = ((__u32 *)src)[0];
	((__u16 *)dst)[2] = ((__u16 *)src)[2];
}

/* csum16 is the Internet checksum of len bytes at p (len even, at most
 * 1024), 0 if they run past end. Summed in host order, stored as read. */
static __always_inline __u16 csum16(void *p, void *end, __u32 len)
{
	__u32 sum = 0;
	__u16 *w = p;
	for (__u32 i = 0; i < 512 && i * 2 < len; i++) {
		if ((void *)(w + 1) > end)
			return 0;
		sum += *w++;
	}
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

#endif
