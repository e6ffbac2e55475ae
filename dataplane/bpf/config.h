/* Configuration fixed when hostd loads the programs (one load per host):
 * rewritten constants, not a matrix of #ifdefs. The verifier prunes the
 * branches they disable. Three exceptions, cfg_underlay_ifindex,
 * cfg_route_gen and cfg_vtep_gen, which hostd changes while the programs
 * run (cfg_encap keeps the pruning). */
#ifndef COURIER_CONFIG_H
#define COURIER_CONFIG_H

#include "common.h"

/* This host's underlay (VTEP) address, host byte order. */
volatile const __u32 cfg_local_vtep = 0;
/* ifindex of the collect-metadata VXLAN device. */
volatile const __u32 cfg_vxlan_ifindex = 0;
/* Non-zero: the programs encapsulate what they can (hostd without
 * --kernel-encap). A constant, so that with it off the verifier prunes
 * the encapsulation, which cfg_underlay_ifindex below cannot. */
volatile const __u8 cfg_encap = 0;
/* ifindex of the underlay device the programs encapsulate out of
 * (encap.h); 0: the VXLAN device encapsulates every packet. Not a
 * constant (.bss): hostd follows an underlay interface that is replaced
 * (Datapath.FollowUnderlay) without reloading the programs. */
volatile __u32 cfg_underlay_ifindex = 0;
/* Changed by hostd when the host's routes change (Datapath.RoutesChanged):
 * the route lookups encap.h keeps are then looked up again. */
volatile __u32 cfg_route_gen = 0;
/* Changed by Apply whenever vteps_v1 changes (dataplane/vteps.go): the
 * sender each CPU remembers admitting (tunnel.h, vtep_known) holds only
 * within one value. */
volatile __u32 cfg_vtep_gen = 0;
/* How long encap.h keeps a route lookup without a change of
 * cfg_route_gen: it bounds what the kernel changes without a route
 * message (a path MTU learned from an ICMP error, an interface's MTU)
 * and a hostd that is not running. */
volatile const __u64 cfg_route_keep_ns = 1000000000ULL;
/* The host's local port range (net.ipv4.ip_local_port_range), which the
 * device draws UDP source ports from (udp_flow_src_port). */
volatile const __u32 cfg_sport_min = 32768;
volatile const __u32 cfg_sport_max = 60999;
/* Non-zero on a hub: holds full bindings of the VPCs it serves,
 * forwards unknown destinations and teaches senders. */
volatile const __u8 cfg_hub = 0;
/* A cached entry older than this sends its next packet through a hub,
 * which answers with a fresh learn message; judged by the coarse clock
 * (lookup.h), so up to a tick late. */
volatile const __u64 cfg_refresh_ns = 30ULL * 1000000000ULL;
/* A hub tells a given sender about a given destination at most this
 * often. */
volatile const __u64 cfg_learn_interval_ns = 20ULL * 1000000ULL;
/* Per port: packets sent to hubs (unknown destinations), a GCRA meter:
 * each costs cfg_hub_cost_ns, and up to cfg_hub_burst_ns of cost may be
 * taken ahead of time. 0: no limit. */
volatile const __u64 cfg_hub_cost_ns = 0;
volatile const __u64 cfg_hub_burst_ns = 0;
/* Per port: address announcements passed to hostd, likewise. */
volatile const __u64 cfg_announce_cost_ns = 0;
volatile const __u64 cfg_announce_burst_ns = 0;
/* Per port: ICMP errors sent back to it, likewise. */
volatile const __u64 cfg_icmp_cost_ns = 0;
volatile const __u64 cfg_icmp_burst_ns = 0;
/* How long a destination a hub said is unknown is dropped here instead
 * of being sent to a hub again. */
volatile const __u64 cfg_unknown_ttl_ns = 500ULL * 1000000ULL;
/* A hub that has not answered a liveness probe for this long is skipped
 * when another of the VPC's hubs answers. */
volatile const __u64 cfg_hub_down_ns = 300ULL * 1000000ULL;
/* A tracked connection idle this long is forgotten (sg.h). */
volatile const __u64 cfg_ct_timeout_ns = 300ULL * 1000000000ULL;
/* A tracked TCP connection that saw a FIN is forgotten this long after. */
volatile const __u64 cfg_ct_closing_ns = 10ULL * 1000000000ULL;
/* Outer TTL of encapsulated packets. */
volatile const __u8 cfg_tunnel_ttl = 64;

/* Tests only (BPF_PROG_RUN cannot attach tunnel metadata to a packet):
 * read the tunnel key of received packets from the tunnel_in map, and
 * record the one set on sent packets in tunnel_out. */
volatile const __u8 cfg_test = 0;

/* courier-trace's copy of the programs (never hostd's): run against the
 * production maps, change nothing (no counter, no cache entry, no budget,
 * no event, no learn message, no clone sent) and write one record per
 * stage into trace_recs. It reads the tunnel key from tunnel_in, as tests
 * do. The verifier removes every use of it from the production programs,
 * whose copy has it 0. */
volatile const __u8 cfg_trace = 0;

#endif
