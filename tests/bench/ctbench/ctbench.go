// Package ctbench measures connection tracking in the kernel: Courier's
// own LRU table (ct_v1, dataplane/bpf/ct.h) against the kernel's
// conntrack through its BPF kfuncs, on the same TCP/IPv4 frame through
// BPF_PROG_RUN (bpf/ctbench.c). It decided that Courier keeps its own
// table (DEVELOPERS.md, "Security groups").
//
// The kfunc program fills the conntrack table of the namespace it runs
// in, so every run happens in a namespace of the measurement's own,
// deleted with everything in it by Close: the host's table is never
// touched.
package ctbench

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/courier-sdn/courier/internal/lab"
)

// What a run found, the programs' return values (bpf/ctbench.c).
const (
	Hit  = 1 // tracked already
	New  = 2 // not tracked; tracked now
	Fail = 3 // not tracked and could not be
	Bad  = 4 // not TCP over IPv4
)

// Tracker names one of the measurement's programs.
type Tracker string

const (
	LRU   Tracker = "lru"   // Courier's table
	Kfunc Tracker = "kfunc" // the kernel's conntrack
	Parse Tracker = "parse" // the parsing both share, nothing tracked
)

// Bench is the measurement's programs loaded, and the namespace they
// run in.
type Bench struct {
	NS   string
	objs ctbenchObjects
}

// Open creates namespace <prefix>ct and loads the programs. An
// ebpf.ErrNotSupported error means the kernel lacks the conntrack kfuncs
// (nf_conntrack not loaded, or no BTF).
func Open(prefix string) (*Bench, error) {
	b := &Bench{NS: prefix + "ct"}
	if err := lab.NewNS(b.NS); err != nil {
		return nil, err
	}
	if err := loadCtbenchObjects(&b.objs, nil); err != nil {
		b.Close()
		return nil, fmt.Errorf("load the conntrack measurement: %w", err)
	}
	return b, nil
}

// Close unloads the programs and deletes the namespace, with the
// conntrack entries the kfunc program made there.
func (b *Bench) Close() error {
	err := b.objs.Close()
	if nerr := netns.DeleteNamed(b.NS); nerr != nil && !errors.Is(nerr, os.ErrNotExist) {
		err = errors.Join(err, fmt.Errorf("ip netns del %s: %w", b.NS, nerr))
	}
	return err
}

func (b *Bench) prog(t Tracker) *ebpf.Program {
	switch t {
	case LRU:
		return b.objs.LruTrack
	case Kfunc:
		return b.objs.KfuncTrack
	}
	return b.objs.ParseOnly
}

// Run runs t's program repeat times on frame in the namespace: what the
// last run found and the mean time of a run.
func (b *Bench) Run(t Tracker, frame []byte, repeat int) (ret uint32, per time.Duration, err error) {
	err = lab.Do(b.NS, func() error {
		var rerr error
		ret, per, rerr = b.prog(t).Benchmark(frame, repeat, nil)
		return rerr
	})
	return ret, per, err
}

// SetZone sets the protected port the programs track for: ct_key's
// zone, and the kernel's conntrack zone (16 bits).
func (b *Bench) SetZone(zone uint16) error { return b.objs.Zone.Set(uint32(zone)) }

// SetVary makes every run a new connection (on), or every run the
// frame's own (off).
func (b *Bench) SetVary(on bool) error {
	v := uint32(0)
	if on {
		v = 1
	}
	return b.objs.Vary.Set(v)
}

// LastError is the kernel's error for the last run that returned Fail.
func (b *Bench) LastError() int32 {
	var e int32
	b.objs.LastError.Get(&e)
	return e
}

// KernelEntries is the number of conntrack entries in the namespace.
func (b *Bench) KernelEntries() (int, error) {
	var n int
	err := lab.Do(b.NS, func() error {
		s, err := os.ReadFile("/proc/sys/net/netfilter/nf_conntrack_count")
		if err != nil {
			return err
		}
		n, err = strconv.Atoi(strings.TrimSpace(string(s)))
		return err
	})
	return n, err
}

// KernelFlows lists the namespace's conntrack entries. Equivalent to:
// ip netns exec NS conntrack -L -f ipv4.
func (b *Bench) KernelFlows() ([]*netlink.ConntrackFlow, error) {
	var flows []*netlink.ConntrackFlow
	err := lab.Do(b.NS, func() error {
		var err error
		flows, err = netlink.ConntrackTableList(netlink.ConntrackTable, unix.AF_INET)
		return err
	})
	return flows, err
}
