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
	return TimeRunsCold(prog, ifindex, pkt, runs, nil)
}

// TimeRunsCold is TimeRuns with evict written (a byte in every 64)
// before each run, outside the kernel's timing: the caches then hold
// less of what the program touches, as in real traffic, where each
// packet's payload is copied between one run and the next (#21). One
// packet repeated on one CPU otherwise finds every map entry it needs
// cached, and times the programs at a fraction of their cost there.
func TimeRunsCold(prog *ebpf.Program, ifindex int, pkt []byte, runs int, evict []byte) (time.Duration, uint32, error) {
	if evict != nil {
		// Written on one CPU, run on another, the buffer would evict
		// nothing the run needs: the thread stays on one CPU.
		restore, err := onOneCPU()
		if err != nil {
			return 0, 0, err
		}
		defer restore()
	}
	ctx := make([]byte, 192) // struct __sk_buff; ifindex at offset 40
	binary.LittleEndian.PutUint32(ctx[40:], uint32(ifindex))
	out := make([]byte, len(pkt)+256)
	durs := make([]time.Duration, 0, runs)
	var verdict uint32
	for i := 0; i < runs; i++ {
		for j := 0; j < len(evict); j += 64 {
			evict[j]++
		}
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

// onOneCPU binds the calling goroutine's thread to the first CPU it may
// run on, until the returned function restores its CPUs.
func onOneCPU() (func(), error) {
	runtime.LockOSThread()
	var old, one unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	for cpu := 0; cpu < len(old)*64; cpu++ {
		if old.IsSet(cpu) {
			one.Set(cpu)
			break
		}
	}
	if err := unix.SchedSetaffinity(0, &one); err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	return func() {
		unix.SchedSetaffinity(0, &old)
		runtime.UnlockOSThread()
	}, nil
}
