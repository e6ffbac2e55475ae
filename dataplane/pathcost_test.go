package dataplane

import (
	"fmt"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// TestVMPathCost logs what a VM-to-VM packet costs per packet on each of
// its paths, sending and receiving, by the kernel's own timing of single
// BPF_PROG_RUN runs: a median of 2,000 runs per round, rounds
// interleaved over the paths, min / median / max of the rounds. The
// paths are the benchmark's (#21): within a vxnet and across vxnets, to
// a remote host (from a hub's bindings, as in make bench) and to a local
// port. A measurement, not a check: it runs only when asked,
// COURIER_MEASURE=1 go test ./dataplane -run TestVMPathCost -v;
// COURIER_MEASURE_ROUNDS sets the rounds (default 9), so that a long run
// can be profiled (perf record -a -g).
func TestVMPathCost(t *testing.T) {
	if os.Getenv("COURIER_MEASURE") == "" {
		t.Skip("a measurement: set COURIER_MEASURE=1")
	}
	rounds := 9
	if n, err := strconv.Atoi(os.Getenv("COURIER_MEASURE_ROUNDS")); err == nil && n > 0 {
		rounds = n
	}
	f := newFixture(t, true)
	d := f.d
	tcp := func(src, dst string, dmac, smac []byte) []byte {
		return append(ethHdr(dmac, smac, 0x0800), ipPacket(ip4(src), ip4(dst), protoTCP, tcpSeg(40000, 80, "0123456789"), 0)...)
	}
	cases := []struct {
		name, prog string
		ifindex    int
		src        netip.Addr // tunnel_ingress: the sending host
		vni        uint32
		pkt        []byte
	}{
		{"port: l2 remote (encapsulate)", "port_ingress", f.p1, netip.Addr{}, 0, tcp("10.0.1.5", "10.0.1.7", remMAC1, vm1MAC)},
		{"port: l3 remote (route, encapsulate)", "port_ingress", f.p1, netip.Addr{}, 0, tcp("10.0.1.5", "10.0.2.7", gwMAC, vm1MAC)},
		{"port: l2 local", "port_ingress", f.p1, netip.Addr{}, 0, tcp("10.0.1.5", "10.0.1.6", vm3MAC, vm1MAC)},
		{"port: l3 local", "port_ingress", f.p1, netip.Addr{}, 0, tcp("10.0.1.5", "10.0.2.5", gwMAC, vm1MAC)},
		{"tunnel: to a local port, same vxnet", "tunnel_ingress", d.vxlan, peerA, 5001, tcp("10.0.1.7", "10.0.1.5", vm1MAC, remMAC1)},
		{"tunnel: to a local port, routed", "tunnel_ingress", d.vxlan, peerB, 5001, tcp("10.0.2.7", "10.0.1.5", vm1MAC, gwMAC)},
	}
	samples := make([][]float64, len(cases))
	for r := 0; r < rounds; r++ {
		for i, c := range cases {
			if c.prog == "tunnel_ingress" {
				if err := d.objs.TunnelIn.Put(uint32(0), dvrTunnelRec{Vtep: host32(c.src), Vni: c.vni}); err != nil {
					t.Fatal(err)
				}
			}
			var cost time.Duration
			var verdict uint32
			var err error
			within(func() { cost, verdict, err = d.ProgramCost(c.prog, c.ifindex, c.pkt, 2000) })
			if err != nil || verdict != actRedirect {
				t.Fatalf("%s: verdict %d, %v (drops %v)", c.name, verdict, err, drops(t, d))
			}
			samples[i] = append(samples[i], float64(cost.Nanoseconds()))
		}
	}
	for i, c := range cases {
		s := samples[i]
		sort.Float64s(s)
		t.Logf("%-38s %s ns", c.name, fmt.Sprintf("%4.0f / %4.0f / %4.0f", s[0], s[len(s)/2], s[len(s)-1]))
	}
}

// TestRunsCountsEachProgram: Runs reads each program's own counts, which
// the benchmark divides by connections and pings (#21): with the kernel's
// statistics on, five sends and three receives show as such.
func TestRunsCountsEachProgram(t *testing.T) {
	f := newFixture(t, true)
	d := f.d
	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		t.Skipf("no program statistics: %v", err)
	}
	defer stats.Close()
	tcp := func(src, dst string, dmac, smac []byte) []byte {
		return append(ethHdr(dmac, smac, 0x0800), ipPacket(ip4(src), ip4(dst), protoTCP, tcpSeg(40000, 80, "0123456789"), 0)...)
	}
	before, err := d.Runs()
	if err != nil {
		t.Fatal(err)
	}
	within(func() {
		_, _, err = d.ProgramCost("port_ingress", f.p1, tcp("10.0.1.5", "10.0.1.7", remMAC1, vm1MAC), 5)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.objs.TunnelIn.Put(uint32(0), dvrTunnelRec{Vtep: host32(peerA), Vni: 5001}); err != nil {
		t.Fatal(err)
	}
	within(func() {
		_, _, err = d.ProgramCost("tunnel_ingress", d.vxlan, tcp("10.0.1.7", "10.0.1.5", vm1MAC, remMAC1), 3)
	})
	if err != nil {
		t.Fatal(err)
	}
	after, err := d.Runs()
	if err != nil {
		t.Fatal(err)
	}
	// The fixture's VMs may send a stray packet of their own (IPv6) to
	// port_ingress; nothing else reaches tunnel_ingress.
	port := after["port_ingress"].RunCount - before["port_ingress"].RunCount
	tun := after["tunnel_ingress"].RunCount - before["tunnel_ingress"].RunCount
	if port < 5 || port > 20 || tun != 3 {
		t.Fatalf("port_ingress ran %d times, tunnel_ingress %d: want 5 (give or take a stray packet) and 3", port, tun)
	}
	if after["tunnel_ingress"].Runtime <= before["tunnel_ingress"].Runtime {
		t.Fatalf("tunnel_ingress's run time did not grow: %v -> %v", before["tunnel_ingress"].Runtime, after["tunnel_ingress"].Runtime)
	}
}

// TestTimeRunsColdWritesBetweenRuns: the eviction buffer is written
// once per run, a byte in every 64, the runs still run the program, and
// the thread gets its CPUs back.
func TestTimeRunsColdWritesBetweenRuns(t *testing.T) {
	f := newFixture(t, true)
	pkt := append(ethHdr(remMAC1, vm1MAC, 0x0800), ipPacket(ip4("10.0.1.5"), ip4("10.0.1.7"), protoTCP, tcpSeg(40000, 80, "x"), 0)...)
	evict := make([]byte, 4096)
	var verdict uint32
	var err error
	var before, after unix.CPUSet
	within(func() {
		unix.SchedGetaffinity(0, &before)
		_, verdict, err = TimeRunsCold(f.d.objs.PortIngress, f.p1, pkt, 10, evict)
		unix.SchedGetaffinity(0, &after)
	})
	if err != nil || verdict != actRedirect {
		t.Fatalf("verdict %d, %v; want redirect", verdict, err)
	}
	if before != after {
		t.Errorf("the thread's CPUs %v, want them back as before (%v)", after, before)
	}
	if evict[0] != 10 || evict[4032] != 10 || evict[1] != 0 || evict[4095] != 0 {
		t.Fatalf("evict[0]=%d [4032]=%d [1]=%d [4095]=%d, want 10, 10, 0, 0", evict[0], evict[4032], evict[1], evict[4095])
	}
}
