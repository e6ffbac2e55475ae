/* Trace records: courier-trace's copy of the programs (cfg_trace) writes
 * one per stage it runs, and user space prints them by name
 * (pipeline/trace.go). In the production programs this is dead code the
 * verifier removes. */
#ifndef COURIER_TRACE_H
#define COURIER_TRACE_H

#include "common.h"
#include "config.h"

#define TRACE_MAX 16

struct trace_rec {
	__u8 stage;   /* STAGE_* */
	__u8 verdict; /* V_* */
	__u8 hit;     /* HIT_*: what decided */
	__u8 pad;
	__u16 reason; /* DROP_*, when dropped */
	__u16 next;   /* the next stage, when V_NEXT */
	__u32 flags;  /* TRF_*: what the stage did besides */
	__u32 ifindex; /* a local port: where it goes, or where it came from */
	__u32 vtep;    /* a host: where it goes, host byte order */
	__u32 vni;     /* the VNI it goes with */
	__be32 addr;   /* the address the stage resolved */
	__u8 mac[6];   /* the MAC it resolved to */
	__u16 pad2;
};

struct trace_buf {
	__u32 n;
	__u32 pad;
	struct trace_rec rec[TRACE_MAX];
};

/* Not pinned: each copy of the programs has its own. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct trace_buf);
} trace_recs SEC(".maps");

#endif
