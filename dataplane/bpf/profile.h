/* Where a packet's time goes, stage by stage (#21): built with
 * COURIER_PROFILE (dvrprof_bpfel.o, dataplane.ProfiledObject), the driver
 * times each stage's call, its verdict's carrying out and the whole
 * program with bpf_ktime_get_ns, into stage_prof, and an empty start and
 * end in its own slot: the clock's own cost, for the reader to take off.
 * make bench's spine section loads such copies beside the running
 * programs and reports the table (tests/bench/spine.go): this machine's
 * PMU is not the guest's to read, so bpftool's profile cannot tell it.
 * The production object is built without it and pays nothing: with a
 * switch read at run time instead, the verifier removed the branches but
 * left their loads on every packet's path. */
#ifndef COURIER_PROFILE_H
#define COURIER_PROFILE_H

#include "common.h"
#include "stages.h"

/* Slots after the stages' own. */
#define PROF_FINISH STAGE_COUNT       /* carrying a verdict out (finish) */
#define PROF_WHOLE (STAGE_COUNT + 1)  /* the whole program */
#define PROF_CLOCK (STAGE_COUNT + 2)  /* a start and an end, nothing between */
#define PROF_SLOTS (STAGE_COUNT + 3)
/* Where a slot's start time waits for its end: the whole program's and
 * the current step's (stages and finish do not nest). */
#define PROF_T_WHOLE 0
#define PROF_T_STEP 1

#ifdef COURIER_PROFILE

struct prof_slot {
	__u64 ns;
	__u64 runs;
};

/* Per CPU, so that nothing is shared; the start times live here too,
 * as the stages' frames leave no stack to spare. Not pinned. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PROF_SLOTS);
	__type(key, __u32);
	__type(value, struct prof_slot);
} stage_prof SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} prof_start_ns SEC(".maps");

static __always_inline void prof_start(__u32 t)
{
	__u64 *v = bpf_map_lookup_elem(&prof_start_ns, &t);
	if (v)
		*v = bpf_ktime_get_ns();
}

static __always_inline void prof_end(__u32 t, __u32 slot)
{
	__u64 now = bpf_ktime_get_ns();
	__u64 *start = bpf_map_lookup_elem(&prof_start_ns, &t);
	struct prof_slot *s = bpf_map_lookup_elem(&stage_prof, &slot);
	if (!start || !s)
		return;
	s->ns += now - *start;
	s->runs++;
}

/* prof_clock times an empty start and end. */
static __always_inline void prof_clock(void)
{
	prof_start(PROF_T_STEP);
	prof_end(PROF_T_STEP, PROF_CLOCK);
}

#else

static __always_inline void prof_start(__u32 t) {}
static __always_inline void prof_end(__u32 t, __u32 slot) {}
static __always_inline void prof_clock(void) {}

#endif

#endif
