/* What each port's DHCP answers say (stage_dhcp.h), prepared by hostd
 * from the southbound: the port's address and the options block of its
 * answers. Lease options come first in the block, 18 bytes, so that an
 * answer to INFORM (which must not carry them) blanks them with PADs. */
#ifndef COURIER_DHCP_H
#define COURIER_DHCP_H

#include "common.h"

#define DHCP_OPTS 256
#define DHCP_LEASE_OPTS 18

struct dhcp_port {
	__be32 ip;
	__u8 opts[DHCP_OPTS];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32); /* ifindex */
	__type(value, struct dhcp_port);
} dhcp_v1 SEC(".maps");

#endif
