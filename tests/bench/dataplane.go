package bench

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/courier-sdn/courier/dataplane"
	"github.com/courier-sdn/courier/internal/lab"
	"github.com/courier-sdn/courier/pipeline"
)

// Stat is min, median and max over rounds.
type Stat struct {
	Min float64 `json:"min"`
	Med float64 `json:"median"`
	Max float64 `json:"max"`
}

func stat(v []float64) Stat {
	if len(v) == 0 {
		return Stat{}
	}
	s := append([]float64{}, v...)
	sort.Float64s(s)
	return Stat{Min: s[0], Med: s[len(s)/2], Max: s[len(s)-1]}
}

// PathResult is one forwarding path measured over the rounds.
type PathResult struct {
	Name    string `json:"name"`
	Gbps1   Stat   `json:"tcp_1_stream_gbps"`
	Gbps4   Stat   `json:"tcp_4_streams_gbps"`
	RTTMean Stat   `json:"rtt_mean_us"`
	RTTP99  Stat   `json:"rtt_p99_us"`
	// Every round's value, in order.
	Raw1     []float64 `json:"raw_tcp_1_stream_gbps"`
	Raw4     []float64 `json:"raw_tcp_4_streams_gbps"`
	RawMean  []float64 `json:"raw_rtt_mean_us"`
	RawP99   []float64 `json:"raw_rtt_p99_us"`
	client   string
	serverNS string
	dst      string
}

// DataplaneResult compares Courier with the kernel's own paths.
type DataplaneResult struct {
	Rounds int           `json:"rounds"`
	Paths  []*PathResult `json:"paths"`
	// Ratios are Courier over the Linux bridge + VXLAN baseline, and
	// across vxnets over within one (medians).
	Ratios map[string]float64 `json:"ratios"`
	// ProgramNs is the per-packet cost of port_ingress through
	// BPF_PROG_RUN, by path, and of a program that only returns
	// ("baseline": the harness's own cost, clock reads included).
	ProgramNs map[string]float64 `json:"program_ns"`
}

// Dataplane runs the data plane benchmark: four paths between VMs on two
// hosts, measured interleaved, rounds times.
func Dataplane(env Env, rounds int, seconds int) (*DataplaneResult, error) {
	prefix := fmt.Sprintf("bd%d-", os.Getpid()%10000)
	l, err := lab.New(prefix, netip.MustParsePrefix("192.168.90.0/24"))
	if err != nil {
		return nil, err
	}
	defer l.Destroy()
	pinRoot := "/sys/fs/bpf/courier-bench-" + prefix
	defer os.RemoveAll(pinRoot)
	hosts := map[string]*lab.Host{}
	for i, h := range []string{"r1", "r2", "b1", "b2", "c1", "c2"} {
		if hosts[h], err = l.AddHost(h, i+1); err != nil {
			return nil, err
		}
	}
	res := &DataplaneResult{Rounds: rounds, Ratios: map[string]float64{}, ProgramNs: map[string]float64{}}
	routed, err := buildRouted(l, hosts["r1"], hosts["r2"])
	if err != nil {
		return nil, fmt.Errorf("routed path: %w", err)
	}
	bridged, err := buildBridged(l, hosts["b1"], hosts["b2"])
	if err != nil {
		return nil, fmt.Errorf("bridge path: %w", err)
	}
	same, cross, dps, err := buildCourier(l, hosts["c1"], hosts["c2"], pinRoot)
	if err != nil {
		return nil, fmt.Errorf("courier paths: %w", err)
	}
	defer func() {
		for h, d := range dps {
			lab.Do(hosts[h].NS, d.Destroy)
		}
	}()
	res.Paths = []*PathResult{routed, bridged, same, cross}
	var servers []*exec.Cmd
	for _, p := range res.Paths {
		srv := exec.Command("ip", "netns", "exec", p.serverNS, "iperf3", "-s", "-p", "5201")
		if err := srv.Start(); err != nil {
			return nil, err
		}
		servers = append(servers, srv)
	}
	defer func() {
		for _, s := range servers {
			s.Process.Kill()
			s.Wait()
		}
	}()
	time.Sleep(500 * time.Millisecond)
	for _, p := range res.Paths { // warm up (ARP, learning) before measuring
		lab.Exec(p.client, "ping", "-c", "3", "-i", "0.2", p.dst)
	}
	for r := 0; r < rounds; r++ {
		for _, p := range res.Paths {
			env.Log.Info("data plane benchmark", "round", r+1, "path", p.Name)
			g1, err := iperf(p.client, p.dst, 1, seconds)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", p.Name, err)
			}
			g4, err := iperf(p.client, p.dst, 4, seconds)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", p.Name, err)
			}
			mean, p99, err := pingRTT(p.client, p.dst, 2000)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", p.Name, err)
			}
			p.Raw1, p.Raw4 = append(p.Raw1, g1), append(p.Raw4, g4)
			p.RawMean, p.RawP99 = append(p.RawMean, mean), append(p.RawP99, p99)
		}
	}
	for _, p := range res.Paths {
		p.Gbps1, p.Gbps4, p.RTTMean, p.RTTP99 = stat(p.Raw1), stat(p.Raw4), stat(p.RawMean), stat(p.RawP99)
	}
	b, c, d := bridged, same, cross
	res.Ratios["same_vxnet_vs_bridge_tcp1"] = c.Gbps1.Med / b.Gbps1.Med
	res.Ratios["same_vxnet_vs_bridge_tcp4"] = c.Gbps4.Med / b.Gbps4.Med
	res.Ratios["cross_vxnet_vs_bridge_tcp1"] = d.Gbps1.Med / b.Gbps1.Med
	res.Ratios["cross_vxnet_vs_bridge_tcp4"] = d.Gbps4.Med / b.Gbps4.Med
	res.Ratios["same_vxnet_vs_bridge_rtt_p99"] = c.RTTP99.Med / b.RTTP99.Med
	res.Ratios["cross_vxnet_vs_bridge_rtt_p99"] = d.RTTP99.Med / b.RTTP99.Med
	res.Ratios["cross_vs_same_vxnet_tcp1"] = d.Gbps1.Med / c.Gbps1.Med
	res.Ratios["cross_vs_same_vxnet_rtt_mean"] = d.RTTMean.Med / c.RTTMean.Med
	if err := programCost(res, dps["c1"], hosts["c1"], l.VMs["ca"]); err != nil {
		return nil, err
	}
	return res, nil
}

func iperf(clientNS, dst string, streams, seconds int) (float64, error) {
	out, err := lab.Exec(clientNS, "iperf3", "-c", dst, "-p", "5201", "-t", strconv.Itoa(seconds), "-P", strconv.Itoa(streams), "-J")
	if err != nil {
		return 0, fmt.Errorf("iperf3: %v: %s", err, firstLine(out))
	}
	var r struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		return 0, fmt.Errorf("iperf3 output: %v", err)
	}
	return r.End.SumReceived.BitsPerSecond / 1e9, nil
}

// pingRTT measures back-to-back (adaptive) pings: the path's latency
// rather than the CPU's wake-up time.
func pingRTT(clientNS, dst string, n int) (mean, p99 float64, err error) {
	out, err := lab.Exec(clientNS, "ping", "-A", "-n", "-c", strconv.Itoa(n), dst)
	if err != nil {
		return 0, 0, fmt.Errorf("ping: %v", err)
	}
	var rtts []float64
	for _, line := range strings.Split(out, "\n") {
		i := strings.Index(line, "time=")
		if i < 0 {
			continue
		}
		f := strings.Fields(line[i+5:])
		if v, err := strconv.ParseFloat(f[0], 64); err == nil {
			rtts = append(rtts, v*1000)
		}
	}
	if len(rtts) < n/2 {
		return 0, 0, fmt.Errorf("ping: %d of %d answered", len(rtts), n)
	}
	sort.Float64s(rtts)
	sum := 0.0
	for _, v := range rtts {
		sum += v
	}
	return sum / float64(len(rtts)), rtts[len(rtts)*99/100], nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func sh(ns string, cmds ...string) error {
	for _, c := range cmds {
		if out, err := lab.Exec(ns, strings.Fields(c)...); err != nil {
			return fmt.Errorf("%s: %v: %s", c, err, out)
		}
	}
	return nil
}

// (a) VM to VM routed by the hosts over the underlay, no overlay.
func buildRouted(l *lab.Lab, h1, h2 *lab.Host) (*PathResult, error) {
	for i, h := range []*lab.Host{h1, h2} {
		vm := fmt.Sprintf("r%c", 'a'+i)
		if _, err := l.AddVM(vm, h, lab.VMConfig{Port: vm, MAC: net.HardwareAddr{2, 0, 0, 0x20, byte(i), 2},
			Addr: netip.MustParsePrefix(fmt.Sprintf("10.20.%d.2/24", i+1)), Gateway: netip.MustParseAddr(fmt.Sprintf("10.20.%d.1", i+1))}); err != nil {
			return nil, err
		}
		other := []*lab.Host{h2, h1}[i]
		if err := sh(h.NS, fmt.Sprintf("ip addr add 10.20.%d.1/24 dev %s", i+1, l.VMs[vm].HostSide),
			"sysctl -qw net.ipv4.ip_forward=1",
			fmt.Sprintf("ip route add 10.20.%d.0/24 via %s", 2-i, other.VTEP)); err != nil {
			return nil, err
		}
	}
	return &PathResult{Name: "(a) routed underlay, no overlay", client: l.VMs["ra"].NS, serverNS: l.VMs["rb"].NS, dst: "10.20.2.2"}, nil
}

// (b) Linux bridge and a kernel VXLAN device with static FDB entries.
func buildBridged(l *lab.Lab, h1, h2 *lab.Host) (*PathResult, error) {
	macs := []net.HardwareAddr{{2, 0, 0, 0x30, 0, 2}, {2, 0, 0, 0x30, 1, 2}}
	ips := []string{"10.30.0.2", "10.30.0.3"}
	for i, h := range []*lab.Host{h1, h2} {
		vm := fmt.Sprintf("b%c", 'a'+i)
		if _, err := l.AddVM(vm, h, lab.VMConfig{Port: vm, MAC: macs[i], Addr: netip.MustParsePrefix(ips[i] + "/24")}); err != nil {
			return nil, err
		}
		other := []*lab.Host{h2, h1}[i]
		if err := sh(h.NS, "ip link add brv type bridge",
			fmt.Sprintf("ip link add vx100 type vxlan id 100 dstport 4789 local %s nolearning", h.VTEP),
			"ip link set vx100 mtu 1450 master brv up",
			fmt.Sprintf("ip link set %s master brv", l.VMs[vm].HostSide), "ip link set brv up",
			fmt.Sprintf("bridge fdb append %s dev vx100 dst %s", macs[1-i], other.VTEP)); err != nil {
			return nil, err
		}
		if err := sh(l.VMs[vm].NS, fmt.Sprintf("ip neigh replace %s lladdr %s dev eth0 nud permanent", ips[1-i], macs[1-i])); err != nil {
			return nil, err
		}
	}
	return &PathResult{Name: "(b) Linux bridge + kernel VXLAN", client: l.VMs["ba"].NS, serverNS: l.VMs["bb"].NS, dst: ips[1]}, nil
}

// (c) and (d): Courier within a vxnet and across vxnets. Both hosts hold
// every binding (as hubs do), so only the data plane is measured.
func buildCourier(l *lab.Lab, h1, h2 *lab.Host, pinRoot string) (*PathResult, *PathResult, map[string]*dataplane.Datapath, error) {
	type vmDef struct {
		name string
		host *lab.Host
		vni  uint32
		ip   string
		mac  net.HardwareAddr
	}
	gw := net.HardwareAddr{0x0a, 0xc0, 0, 0, 0, 1}
	defs := []vmDef{{"ca", h1, 5001, "10.0.1.11", net.HardwareAddr{2, 0, 0, 0x40, 1, 11}},
		{"cb", h2, 5001, "10.0.1.12", net.HardwareAddr{2, 0, 0, 0x40, 1, 12}},
		{"cc", h2, 5002, "10.0.2.12", net.HardwareAddr{2, 0, 0, 0x40, 2, 12}}}
	cidr := map[uint32]netip.Prefix{5001: netip.MustParsePrefix("10.0.1.0/24"), 5002: netip.MustParsePrefix("10.0.2.0/24")}
	for _, v := range defs {
		c := cidr[v.vni]
		if _, err := l.AddVM(v.name, v.host, lab.VMConfig{Port: v.name, MAC: v.mac,
			Addr: netip.PrefixFrom(netip.MustParseAddr(v.ip), 24), Gateway: c.Addr().Next()}); err != nil {
			return nil, nil, nil, err
		}
	}
	dps := map[string]*dataplane.Datapath{}
	flags := pipeline.AllFlags(pipeline.DPVxnet)
	for _, h := range []*lab.Host{h1, h2} {
		st := &dataplane.State{VPCs: []dataplane.VPC{{ID: 1, GwMAC: gw, Flags: pipeline.AllFlags(pipeline.DPVPC)}},
			Hubs: []dataplane.Hubs{{VPC: 1, VTEPs: []netip.Addr{h1.VTEP, h2.VTEP}}}}
		for vni, c := range cidr {
			st.Vxnets = append(st.Vxnets, dataplane.Vxnet{VNI: vni, VPC: 1, CIDR: c, GwIP: c.Addr().Next(), GwMAC: gw, Flags: flags})
			st.Routes = append(st.Routes, dataplane.Route{VPC: 1, Prefix: c, VNI: vni})
		}
		for _, v := range defs {
			ip := netip.MustParseAddr(v.ip)
			if v.host == h {
				st.Ports = append(st.Ports, dataplane.Port{Ifindex: l.VMs[v.name].Ifindex, Name: v.name, VNI: v.vni, VPC: 1,
					MAC: v.mac, MTU: 1450, Security: true, IPs: []netip.Addr{ip}})
			} else {
				st.Bindings = append(st.Bindings, dataplane.Binding{VPC: 1, IP: ip, VTEP: v.host.VTEP, VNI: v.vni, MAC: v.mac})
			}
		}
		err := lab.Do(h.NS, func() error {
			d, err := dataplane.Load(dataplane.Config{Chassis: h.Name, PinRoot: pinRoot, VTEP: h.VTEP, Hub: true})
			if err != nil {
				return err
			}
			dps[h.Name] = d
			_, err = d.Apply(st)
			return err
		})
		if err != nil {
			return nil, nil, dps, err
		}
	}
	same := &PathResult{Name: "(c) Courier, same vxnet", client: l.VMs["ca"].NS, serverNS: l.VMs["cb"].NS, dst: "10.0.1.12"}
	cross := &PathResult{Name: "(d) Courier, across vxnets", client: l.VMs["ca"].NS, serverNS: l.VMs["cc"].NS, dst: "10.0.2.12"}
	return same, cross, dps, nil
}

// programCost measures port_ingress per packet through BPF_PROG_RUN.
func programCost(res *DataplaneResult, d *dataplane.Datapath, h *lab.Host, vm *lab.VM) error {
	src := net.HardwareAddr{2, 0, 0, 0x40, 1, 11}
	gw := net.HardwareAddr{0x0a, 0xc0, 0, 0, 0, 1}
	cases := map[string][]byte{
		"l2_remote (encapsulate)":               frame(net.HardwareAddr{2, 0, 0, 0x40, 1, 12}, src, "10.0.1.11", "10.0.1.12"),
		"l3_remote (route, TTL-1, encapsulate)": frame(gw, src, "10.0.1.11", "10.0.2.12"),
	}
	noop, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.SchedCLS, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}})
	if err != nil {
		return err
	}
	defer noop.Close()
	return lab.Do(h.NS, func() error {
		per, _, err := dataplane.TimeRuns(noop, vm.Ifindex, cases["l2_remote (encapsulate)"], 20000)
		if err != nil {
			return err
		}
		res.ProgramNs["baseline (a program that only returns)"] = float64(per.Nanoseconds())
		for name, pkt := range cases {
			per, verdict, err := d.ProgramCost("port_ingress", vm.Ifindex, pkt, 20000)
			if err != nil {
				return err
			}
			if verdict != 7 {
				drops, _ := d.Drops()
				return fmt.Errorf("%s: verdict %d, want redirect (drops so far: %v)", name, verdict, nonZero(drops))
			}
			res.ProgramNs[name] = float64(per.Nanoseconds())
		}
		return nil
	})
}

// frame is an Ethernet/IPv4/UDP frame with a 64-byte payload.
func frame(dst, src net.HardwareAddr, sip, dip string) []byte {
	b := make([]byte, 14+20+8+64)
	copy(b[0:6], dst)
	copy(b[6:12], src)
	binary.BigEndian.PutUint16(b[12:], 0x0800)
	ip := b[14:34]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], 20+8+64)
	ip[8], ip[9] = 64, 17
	s, d := netip.MustParseAddr(sip).As4(), netip.MustParseAddr(dip).As4()
	copy(ip[12:16], s[:])
	copy(ip[16:20], d[:])
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
	binary.BigEndian.PutUint16(b[34:], 40000)
	binary.BigEndian.PutUint16(b[36:], 7)
	binary.BigEndian.PutUint16(b[38:], 8+64)
	return b
}

func (d *DataplaneResult) markdown(b *strings.Builder) {
	fmt.Fprintf(b, "## Data plane (two hosts, one VM each side, %d interleaved rounds; min / median / max)\n\n", d.Rounds)
	fmt.Fprintf(b, "| path | TCP 1 stream Gbit/s | TCP 4 streams Gbit/s | RTT mean µs | RTT p99 µs |\n|---|---|---|---|---|\n")
	f := func(s Stat, prec int) string {
		return fmt.Sprintf("%.*f / %.*f / %.*f", prec, s.Min, prec, s.Med, prec, s.Max)
	}
	for _, p := range d.Paths {
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s |\n", p.Name, f(p.Gbps1, 2), f(p.Gbps4, 2), f(p.RTTMean, 0), f(p.RTTP99, 0))
	}
	fmt.Fprintf(b, "\nRatios of medians (Courier over the Linux bridge + VXLAN baseline measured in this run):\n\n")
	keys := make([]string, 0, len(d.Ratios))
	for k := range d.Ratios {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(b, "- %s: %.2f\n", k, d.Ratios[k])
	}
	fmt.Fprintf(b, "\nport_ingress per packet (median of 20,000 single BPF_PROG_TEST_RUN runs, kernel-timed; the baseline is the same harness around a program that only returns):\n\n")
	keys = keys[:0]
	for k := range d.ProgramNs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(b, "- %s: %.0f ns\n", k, d.ProgramNs[k])
	}
	fmt.Fprintf(b, "\nTargets: (c) and (d) at least 95%% of (b)'s throughput and no worse than its latency; (d) equal to (c) within noise. Rounds are interleaved; compare the min–max ranges, not only the medians.\n\n")
}

func nonZero(m map[string]uint64) map[string]uint64 {
	out := map[string]uint64{}
	for k, v := range m {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}
