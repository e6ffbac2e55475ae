package dataplane

import (
	"fmt"
	"net"
	"net/netip"
	"sort"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/courier-sdn/courier/pipeline"
)

// StatNames name the counters of the stats map, in order (pipeline's
// Counters, which also number them for the C code).
var StatNames = pipeline.CounterNames()

func sumPerCPU(m *ebpf.Map, n int) ([]uint64, error) {
	out := make([]uint64, n)
	for i := 0; i < n; i++ {
		var vals []uint64
		if err := m.Lookup(uint32(i), &vals); err != nil {
			return nil, err
		}
		for _, v := range vals {
			out[i] += v
		}
	}
	return out, nil
}

// Counters returns the packet counters by name, summed over CPUs.
func (d *Datapath) Counters() (map[string]uint64, error) {
	vals, err := sumPerCPU(d.objs.StatsV1, len(StatNames))
	if err != nil {
		return nil, err
	}
	out := map[string]uint64{}
	for i, n := range StatNames {
		out[n] = vals[i]
	}
	return out, nil
}

// Drops returns drop counts by reason name.
func (d *Datapath) Drops() (map[string]uint64, error) {
	max := 0
	for _, r := range pipeline.DropReasons {
		if r.ID > max {
			max = r.ID
		}
	}
	vals, err := sumPerCPU(d.objs.DropsV1, max+1)
	if err != nil {
		return nil, err
	}
	out := map[string]uint64{}
	for _, r := range pipeline.DropReasons {
		out[r.Name] = vals[r.ID]
	}
	return out, nil
}

// LearnLatency returns the histogram of first-miss-to-installed-entry
// latencies: bucket i counts [2^i, 2^(i+1)) microseconds (bucket 0 from 0).
func (d *Datapath) LearnLatency() ([]uint64, error) {
	return sumPerCPU(d.objs.LearnLatencyV1, 24)
}

// CacheEntry is one learned direct path.
type CacheEntry struct {
	VPC  uint32
	IP   netip.Addr
	VTEP netip.Addr
	VNI  uint32
	MAC  net.HardwareAddr
	Age  time.Duration // since the last learn message
	Idle time.Duration // since the last packet
	Hits uint64
}

func monotonic() uint64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return uint64(ts.Nano())
}

// Cache lists the learned paths, sorted by VPC and IP.
func (d *Datapath) Cache() ([]CacheEntry, error) {
	entries, err := d.cacheT().dump()
	if err != nil {
		return nil, err
	}
	now := monotonic()
	var out []CacheEntry
	for k, v := range entries {
		out = append(out, CacheEntry{VPC: k.Vpc, IP: fromBE32(k.Ip), VTEP: fromHost32(v.Vtep), VNI: v.Vni,
			MAC: append(net.HardwareAddr{}, v.Mac[:]...), Age: time.Duration(now - v.LearnedNs),
			Idle: time.Duration(now - v.UsedNs), Hits: v.Hits})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].VPC != out[j].VPC {
			return out[i].VPC < out[j].VPC
		}
		return out[i].IP.Less(out[j].IP)
	})
	return out, nil
}

// ExpireCache removes entries idle for longer than idle and returns how
// many it removed: the LRU only evicts under pressure.
func (d *Datapath) ExpireCache(idle time.Duration) (int, error) {
	entries, err := d.cacheT().dump()
	if err != nil {
		return 0, err
	}
	now := monotonic()
	n := 0
	for k, v := range entries {
		if time.Duration(now-v.UsedNs) > idle && time.Duration(now-v.LearnedNs) > idle {
			if d.cacheT().delete(k) == nil {
				n++
			}
		}
	}
	return n, nil
}

// Dump renders the tables for courier-dpctl.
type Dump struct {
	Ports    []string
	Vxnets   []string
	VPCs     []string
	Routes   []string
	Hubs     []string
	Locals   []string
	EIPs     []string // a host's EIPs and gateways, a gateway's EIPs (eip.go)
	Bindings int
}

// copyState says whether a port's entry carries its vxnet's (ports.h)
// and whether the copy is the vxnet's entry as it is: "current",
// "stale" (port_sec acts on an entry the vxnets' map no longer has, as
// it may for a moment within an Apply, and until the next one if an
// Apply failed or hostd died between the vxnets' write and the ports')
// or "none" (port_sec looks the vxnet up).
func copyState(e dvrPortEntry, vxnets map[uint32]dvrVxnet) string {
	if e.Port.Flags&portVxnet == 0 {
		return "none"
	}
	if vx, ok := vxnets[e.Port.Vni]; ok && vx == e.Vx {
		return "current"
	}
	return "stale"
}

// Dump lists the configuration maps in readable form.
func (d *Datapath) Dump() (*Dump, error) {
	c, err := d.dumpCompiled()
	if err != nil {
		return nil, err
	}
	out := &Dump{Bindings: len(c.hubEps)}
	for k, v := range c.ports {
		out.Ports = append(out.Ports, fmt.Sprintf("ifindex %d: %s vxnet-copy %s", k, v.Port, copyState(v, c.vxnets)))
	}
	for k, v := range c.vxnets {
		out.Vxnets = append(out.Vxnets, fmt.Sprintf("vni %d: %s", k, v))
	}
	for k, v := range c.vpcs {
		line := fmt.Sprintf("vpc %d: gateway %s flags %s", k, macString(v.GwMac), pipeline.FlagNames(pipeline.DPVPC, v.Flags))
		if v.Dflags&vpcDRouteBound != 0 {
			line += fmt.Sprintf(" route-by-binding %s/%d", fromBE32(v.SpanNet), v.SpanLen)
		}
		out.VPCs = append(out.VPCs, line)
	}
	for k, v := range c.routes {
		vpc := k.Vpc>>24 | (k.Vpc>>8)&0xff00 | (k.Vpc<<8)&0xff0000 | k.Vpc<<24
		p := netip.PrefixFrom(fromBE32(k.Ip), int(k.Prefixlen)-32)
		via := "connected"
		if v.Nexthop != 0 {
			via = "via " + fromBE32(v.Nexthop).String()
		}
		out.Routes = append(out.Routes, fmt.Sprintf("vpc %d %s -> vni %d %s", vpc, p, v.Vni, via))
	}
	for k, v := range c.hubs {
		out.Hubs = append(out.Hubs, fmt.Sprintf("vpc %d: %s", k, hubsString(v)))
	}
	for k, v := range c.locals {
		out.Locals = append(out.Locals, fmt.Sprintf("vpc %d %s: ifindex %d vni %d mac %s", k.Vpc, fromBE32(k.Ip), v.Ifindex, v.Vni, macString(v.Mac)))
	}
	out.EIPs = append(append(c.eip.lines(), c.phys.lines()...), c.snat.lines()...)
	for _, s := range [][]string{out.Ports, out.Vxnets, out.VPCs, out.Routes, out.Hubs, out.Locals, out.EIPs} {
		sort.Strings(s)
	}
	return out, nil
}

// TaughtAbout lists, for each of keys, the senders this hub told about
// it lately (a binding, or that it had none), in one pass over the map.
func (d *Datapath) TaughtAbout(keys map[BindingKey]bool) (map[BindingKey][]netip.Addr, error) {
	out := map[BindingKey][]netip.Addr{}
	if len(keys) == 0 {
		return out, nil
	}
	var k dvrLearnRlKey
	var v uint64
	it := d.objs.LearnRlV1.Iterate()
	for it.Next(&k, &v) {
		bk := BindingKey{VPC: k.Vpc, IP: fromBE32(k.Ip)}
		if keys[bk] {
			out[bk] = append(out[bk], fromHost32(k.Sender))
		}
	}
	return out, it.Err()
}

// Bindings lists a hub's table of the VPCs it serves, sorted by VPC and
// IP.
func (d *Datapath) Bindings() ([]Binding, error) {
	entries, err := d.hubEpsT().dump()
	if err != nil {
		return nil, err
	}
	out := make([]Binding, 0, len(entries))
	for k, v := range entries {
		out = append(out, Binding{VPC: k.Vpc, IP: fromBE32(k.Ip), VTEP: fromHost32(v.Vtep), VNI: v.Vni,
			MAC: append(net.HardwareAddr{}, v.Mac[:]...)})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].VPC != out[j].VPC {
			return out[i].VPC < out[j].VPC
		}
		return out[i].IP.Less(out[j].IP)
	})
	return out, nil
}
