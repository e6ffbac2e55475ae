/* Per-CPU scratch space for what a program's stack (512 bytes, which the
 * stages' calls share) cannot hold: one map with a slot per user, in
 * place of a map each. The kernel lets a program use at most 64 maps,
 * and tunnel_ingress, which reaches every stage, was at 62. A slot is
 * its user's alone, as its map was: two users on one packet's path do
 * not share bytes. Not pinned (no _vN in its name), as none of the five
 * was: nothing in it outlives a load of the programs, and but for
 * SCRATCH_VTEP (a cache its user checks) nothing outlives a packet. */
#ifndef COURIER_SCRATCH_H
#define COURIER_SCRATCH_H

#define SCRATCH_SIZE 512

enum scratch_slot {
	SCRATCH_CT,      /* sg.h: a new connection's entry (struct ct_entry) */
	SCRATCH_SG_WALK, /* sg.h: the rule walk's state (struct sg_walk) */
	SCRATCH_SNAT,    /* snat.h: struct snat_scratch */
	SCRATCH_DHCP,    /* stage_dhcp.h: the answer being built */
	SCRATCH_FIB,     /* encap.h: bpf_fib_lookup's parameters */
	SCRATCH_VTEP,    /* tunnel.h: the sender last admitted, a __u64 (outlives a packet) */
	SCRATCH_SLOTS,
};

struct scratch {
	__u8 b[SCRATCH_SIZE];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SCRATCH_SLOTS);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch SEC(".maps");

/* scratch_of is this CPU's slot, or NULL (never, for a slot below
 * SCRATCH_SLOTS; the verifier wants the check). Each user asserts that
 * its struct fits. */
static __always_inline void *scratch_of(__u32 slot)
{
	return bpf_map_lookup_elem(&scratch, &slot);
}

#endif
