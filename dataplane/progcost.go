package dataplane

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"sort"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/courier-sdn/courier/pipeline"
)

// ProgramCost runs port_ingress or tunnel_ingress on pkt, as if received
// on ifindex, runs times through BPF_PROG_TEST_RUN with a repeat of one,
// and returns the median of the kernel's own timing of each run together
// with the last verdict. The calling thread must be in the data plane's
// network namespace.
//
// Each run gets a fresh copy of pkt. The kernel's repeat loop would reuse
// one buffer, and a routed packet is rewritten by its first run (its
// source MAC becomes the gateway's), so every later run would measure a
// port-security drop instead of the path. The kernel's figure for one
// run includes a clock read or two (tens of nanoseconds).
func (d *Datapath) ProgramCost(program string, ifindex int, pkt []byte, runs int) (time.Duration, uint32, error) {
	prog := d.objs.PortIngress
	if program == "tunnel_ingress" {
		prog = d.objs.TunnelIngress
	}
	return TimeRuns(prog, ifindex, pkt, runs)
}

// TimeRuns is ProgramCost for any tc program, so that a trivial program
// timed the same way can serve as the baseline.
func TimeRuns(prog *ebpf.Program, ifindex int, pkt []byte, runs int) (time.Duration, uint32, error) {
	ctx := make([]byte, 192) // struct __sk_buff; ifindex at offset 40
	binary.LittleEndian.PutUint32(ctx[40:], uint32(ifindex))
	out := make([]byte, len(pkt)+256)
	durs := make([]time.Duration, 0, runs)
	var verdict uint32
	for i := 0; i < runs; i++ {
		// union bpf_attr, the test member (include/uapi/linux/bpf.h).
		var attr struct {
			progFD, retval, sizeIn, sizeOut uint32
			dataIn, dataOut                 uint64
			repeat, duration                uint32
			ctxSizeIn, ctxSizeOut           uint32
			ctxIn, ctxOut                   uint64
			flags, cpu, batch               uint32
			_                               uint32
		}
		attr.progFD = uint32(prog.FD())
		attr.sizeIn, attr.sizeOut = uint32(len(pkt)), uint32(len(out))
		attr.dataIn = uint64(uintptr(unsafe.Pointer(&pkt[0])))
		attr.dataOut = uint64(uintptr(unsafe.Pointer(&out[0])))
		attr.repeat = 1
		attr.ctxSizeIn = uint32(len(ctx))
		attr.ctxIn = uint64(uintptr(unsafe.Pointer(&ctx[0])))
		_, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_PROG_TEST_RUN, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
		runtime.KeepAlive(pkt)
		runtime.KeepAlive(out)
		runtime.KeepAlive(ctx)
		if errno != 0 {
			return 0, 0, fmt.Errorf("BPF_PROG_TEST_RUN: %w", errno)
		}
		verdict = attr.retval
		durs = append(durs, time.Duration(attr.duration))
	}
	if len(durs) == 0 {
		return 0, verdict, nil
	}
	sort.Slice(durs, func(i, j int) bool { return durs[i] < durs[j] })
	return durs[len(durs)/2], verdict, nil
}

// Runs says how often port_ingress and tunnel_ingress ran, and for how
// long in all, by name: the kernel's counts of every run, the real path's
// and BPF_PROG_TEST_RUN's alike. They grow only while the kernel's
// statistics are on (ebpf.EnableStats, or the sysctl
// kernel.bpf_stats_enabled), so take two readings around what to count.
func (d *Datapath) Runs() (map[string]ebpf.ProgramStats, error) {
	out := map[string]ebpf.ProgramStats{}
	for name, p := range map[string]*ebpf.Program{"port_ingress": d.objs.PortIngress, "tunnel_ingress": d.objs.TunnelIngress} {
		s, err := p.Stats()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out[name] = *s
	}
	return out, nil
}

// StepTime is what a profiled copy of the programs (ProfiledObject,
// bpf/profile.h) measured of one step of the pipeline: how
// often it ran and its mean time per run, the clock's own cost taken
// off.
type StepTime struct {
	// Step is a stage's name, or "finish": carrying out the verdict
	// (encapsulation, redirection, counting).
	Step   string
	Runs   uint64
	MeanNS float64
}

// ReadProfile reads a profiled copy's times since the last read, and
// clears them: the steps in the pipeline's order (those that ran), how
// many times the programs ran, and what the clock costs per reading
// (already taken off each step's mean).
func ReadProfile(coll *ebpf.Collection) (steps []StepTime, programs uint64, clockNS float64, err error) {
	m := coll.Maps["stage_prof"]
	if m == nil {
		return nil, 0, 0, fmt.Errorf("these programs have no stage profile (stage_prof): not ProfiledObject's")
	}
	n := len(pipeline.Stages)
	if int(m.MaxEntries()) != n+3 {
		return nil, 0, 0, fmt.Errorf("stage_prof has %d slots, want %d: another build's programs", m.MaxEntries(), n+3)
	}
	sums := make([]dvrprofProfSlot, n+3)
	zero := make([]dvrprofProfSlot, ebpf.MustPossibleCPU())
	for i := range sums {
		var per []dvrprofProfSlot
		if err := m.Lookup(uint32(i), &per); err != nil {
			return nil, 0, 0, fmt.Errorf("stage_prof[%d]: %w", i, err)
		}
		for _, p := range per {
			sums[i].Ns += p.Ns
			sums[i].Runs += p.Runs
		}
		if err := m.Put(uint32(i), zero); err != nil {
			return nil, 0, 0, fmt.Errorf("clear stage_prof[%d]: %w", i, err)
		}
	}
	mean := func(s dvrprofProfSlot) float64 { return float64(s.Ns) / float64(max(s.Runs, 1)) }
	clockNS = mean(sums[n+2])
	for i, s := range sums[:n+1] {
		if s.Runs == 0 {
			continue
		}
		name := "finish"
		for _, st := range pipeline.Stages {
			if st.ID == i {
				name = st.Name
			}
		}
		steps = append(steps, StepTime{Step: name, Runs: s.Runs, MeanNS: mean(s) - clockNS})
	}
	return steps, sums[n+1].Runs, clockNS, nil
}
