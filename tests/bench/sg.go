package bench

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/courier-sdn/courier/dataplane"
	"github.com/courier-sdn/courier/internal/lab"
	"github.com/courier-sdn/courier/pipeline"
)

// SGVariant is one VPC of the security group benchmark: a pair of VMs on
// two hosts, with no groups (an open VPC) or in one group of Rules rules.
type SGVariant struct {
	Name    string `json:"name"`
	Rules   int    `json:"rules"`
	Gbps1   Stat   `json:"tcp_1_stream_gbps"`
	Gbps4   Stat   `json:"tcp_4_streams_gbps"`
	RTTMean Stat   `json:"rtt_mean_us"`
	RTTP99  Stat   `json:"rtt_p99_us"`
	// Every round's value, in order.
	Raw1                  []float64 `json:"raw_tcp_1_stream_gbps"`
	Raw4                  []float64 `json:"raw_tcp_4_streams_gbps"`
	RawMean               []float64 `json:"raw_rtt_mean_us"`
	RawP99                []float64 `json:"raw_rtt_p99_us"`
	ConnPerSec            Stat      `json:"conn_per_sec"`
	RawConn               []float64 `json:"raw_conn_per_sec"`
	EstablishedN          float64   `json:"established_ns"` // port_ingress per packet, BPF_PROG_RUN
	client, serverNS, dst string
	// The client port, for BPF_PROG_RUN.
	clientIfindex int
	mac, peerMAC  net.HardwareAddr
	ip, peerIP    netip.Addr
}

// SGResult compares paths with security groups of 10 and 1,000 rules
// against the same path with none, measured interleaved in one run.
type SGResult struct {
	Rounds   int                `json:"rounds"`
	Variants []*SGVariant       `json:"variants"`
	Ratios   map[string]float64 `json:"ratios"`
}

// New connections go to the data plane section's connection-per-request
// server (crrServer), sgConnWorker at a time.
const (
	sgConnPort   = crrPort
	sgConnWorker = 4
)

// SecurityGroups runs the security group data plane benchmark.
func SecurityGroups(env Env, rounds, seconds int) (*SGResult, error) {
	prefix := fmt.Sprintf("bs%d-", os.Getpid()%10000)
	l, err := lab.New(prefix, netip.MustParsePrefix("192.168.91.0/24"))
	if err != nil {
		return nil, err
	}
	defer l.Destroy()
	pinRoot := "/sys/fs/bpf/courier-bench-" + prefix
	defer os.RemoveAll(pinRoot)
	h1, err := l.AddHost("s1", 1)
	if err != nil {
		return nil, err
	}
	h2, err := l.AddHost("s2", 2)
	if err != nil {
		return nil, err
	}
	res := &SGResult{Rounds: rounds, Ratios: map[string]float64{},
		Variants: []*SGVariant{{Name: "no security groups (open VPC)"}, {Name: "one group, 10 rules", Rules: 10},
			{Name: "one group, 1,000 rules", Rules: 1000}}}
	dps, err := buildSG(l, h1, h2, pinRoot, res.Variants)
	defer func() {
		for h, d := range dps {
			lab.Do(l.Hosts[h].NS, d.Destroy)
		}
	}()
	if err != nil {
		return nil, err
	}
	stop, err := sgServers(res.Variants)
	defer stop()
	if err != nil {
		return nil, err
	}
	for _, v := range res.Variants {
		if _, err := lab.Exec(v.client, "ping", "-c", "3", "-i", "0.2", v.dst); err != nil {
			return nil, fmt.Errorf("%s: no ping before measuring: %v", v.Name, err)
		}
	}
	for r := 0; r < rounds; r++ {
		for _, v := range res.Variants {
			env.Log.Info("security group benchmark", "round", r+1, "variant", v.Name)
			if err := v.measure(seconds); err != nil {
				return nil, fmt.Errorf("%s: %w", v.Name, err)
			}
		}
	}
	base := res.Variants[0]
	for _, v := range res.Variants {
		v.Gbps1, v.Gbps4, v.RTTMean, v.RTTP99 = stat(v.Raw1), stat(v.Raw4), stat(v.RawMean), stat(v.RawP99)
		v.ConnPerSec = stat(v.RawConn)
		if v.Rules == 0 {
			continue
		}
		k := fmt.Sprintf("%d_rules_vs_none_", v.Rules)
		res.Ratios[k+"tcp1"] = v.Gbps1.Med / base.Gbps1.Med
		res.Ratios[k+"tcp4"] = v.Gbps4.Med / base.Gbps4.Med
		res.Ratios[k+"rtt_p99"] = v.RTTP99.Med / base.RTTP99.Med
		res.Ratios[k+"conn_per_sec"] = v.ConnPerSec.Med / base.ConnPerSec.Med
	}
	if err := sgProgramCost(res, dps["s1"], h1); err != nil {
		return nil, err
	}
	return res, nil
}

func (v *SGVariant) measure(seconds int) error {
	g1, err := iperf(v.client, v.dst, 1, seconds)
	if err != nil {
		return err
	}
	g4, err := iperf(v.client, v.dst, 4, seconds)
	if err != nil {
		return err
	}
	mean, p99, err := pingRTT(v.client, v.dst, 2000)
	if err != nil {
		return err
	}
	cps, err := connRate(v.client, v.dst, time.Duration(seconds)*time.Second/2)
	if err != nil {
		return err
	}
	v.Raw1, v.Raw4 = append(v.Raw1, g1), append(v.Raw4, g4)
	v.RawMean, v.RawP99 = append(v.RawMean, mean), append(v.RawP99, p99)
	v.RawConn = append(v.RawConn, cps)
	return nil
}

// sgRules is a group of n rules (n ≥ 4) whose new connections walk them
// all: egress UDP rules that match nothing the benchmark sends, then what
// it needs (egress anything; ingress TCP to iperf3's and the connection
// server's ports, ICMP).
func sgRules(n int) []dataplane.SGRule {
	var rs []dataplane.SGRule
	for i := 0; i < n-4; i++ {
		p := uint16(10000 + i)
		rs = append(rs, dataplane.SGRule{Group: 1, Proto: 17, PortMin: p, PortMax: p, Prefix: netip.MustParsePrefix("10.99.0.0/16")})
	}
	return append(rs, dataplane.SGRule{Group: 1},
		dataplane.SGRule{Group: 1, Ingress: true, Proto: 6, PortMin: 5201, PortMax: 5201, Prefix: netip.MustParsePrefix("10.0.0.0/8")},
		dataplane.SGRule{Group: 1, Ingress: true, Proto: 6, PortMin: sgConnPort, PortMax: sgConnPort, Prefix: netip.MustParsePrefix("10.0.0.0/8")},
		dataplane.SGRule{Group: 1, Ingress: true, Proto: 1, Prefix: netip.MustParsePrefix("10.0.0.0/8")})
}

// buildSG gives every variant its VPC (one vxnet) with a client VM on h1
// and a server VM on h2. Both hosts hold every binding, as hubs do.
func buildSG(l *lab.Lab, h1, h2 *lab.Host, pinRoot string, vs []*SGVariant) (map[string]*dataplane.Datapath, error) {
	gw := net.HardwareAddr{0x0a, 0xc0, 0, 0, 0, 1}
	states := map[*lab.Host]*dataplane.State{h1: {}, h2: {}}
	for i, v := range vs {
		vpc, vni := uint32(i+1), uint32(6001+i)
		cidr := netip.MustParsePrefix(fmt.Sprintf("10.%d.1.0/24", 60+i))
		flags := pipeline.AllFlags(pipeline.DPVPC)
		if v.Rules == 0 {
			flags &^= pipeline.VPCSGEgress | pipeline.VPCSGIngress
		}
		vms := []struct {
			name string
			host *lab.Host
			ip   netip.Addr
			mac  net.HardwareAddr
		}{{fmt.Sprintf("g%da", i), h1, cidr.Addr().Next().Next(), net.HardwareAddr{2, 0, 0, 0x60, byte(i), 2}},
			{fmt.Sprintf("g%db", i), h2, cidr.Addr().Next().Next().Next(), net.HardwareAddr{2, 0, 0, 0x60, byte(i), 3}}}
		for _, m := range vms {
			if _, err := l.AddVM(m.name, m.host, lab.VMConfig{Port: m.name, MAC: m.mac,
				Addr: netip.PrefixFrom(m.ip, 24), Gateway: cidr.Addr().Next()}); err != nil {
				return nil, err
			}
		}
		v.client, v.serverNS, v.dst = l.VMs[vms[0].name].NS, l.VMs[vms[1].name].NS, vms[1].ip.String()
		for h, st := range states {
			st.VPCs = append(st.VPCs, dataplane.VPC{ID: vpc, GwMAC: gw, Flags: flags})
			st.Hubs = append(st.Hubs, dataplane.Hubs{VPC: vpc, VTEPs: []netip.Addr{h1.VTEP, h2.VTEP}})
			st.Vxnets = append(st.Vxnets, dataplane.Vxnet{VNI: vni, VPC: vpc, CIDR: cidr, GwIP: cidr.Addr().Next(), GwMAC: gw,
				Flags: pipeline.AllFlags(pipeline.DPVxnet)})
			st.Routes = append(st.Routes, dataplane.Route{VPC: vpc, Prefix: cidr, VNI: vni})
			var id uint32
			if v.Rules > 0 {
				id = 1
				st.SG = append(st.SG, dataplane.SGVPC{VPC: vpc, Identities: map[uint32][]uint32{1: {1}}, Rules: sgRules(v.Rules)})
			}
			for _, m := range vms {
				if m.host == h {
					st.Ports = append(st.Ports, dataplane.Port{Ifindex: l.VMs[m.name].Ifindex, Name: m.name, VNI: vni, VPC: vpc,
						MAC: m.mac, MTU: 1450, Security: true, IPs: []netip.Addr{m.ip}, Identity: id})
				} else {
					st.Bindings = append(st.Bindings, dataplane.Binding{VPC: vpc, IP: m.ip, VTEP: m.host.VTEP, VNI: vni, MAC: m.mac})
				}
			}
		}
		v.clientIfindex = l.VMs[vms[0].name].Ifindex
		v.mac, v.ip = vms[0].mac, vms[0].ip
		v.peerIP, v.peerMAC = vms[1].ip, vms[1].mac
	}
	dps := map[string]*dataplane.Datapath{}
	for _, h := range []*lab.Host{h1, h2} {
		err := lab.Do(h.NS, func() error {
			d, err := dataplane.Load(dataplane.Config{Chassis: h.Name, PinRoot: pinRoot, VTEP: h.VTEP, Hub: true})
			if err != nil {
				return err
			}
			dps[h.Name] = d
			_, err = d.Apply(states[h])
			return err
		})
		if err != nil {
			return dps, fmt.Errorf("host %s: %w", h.Name, err)
		}
	}
	return dps, nil
}

// sgServers starts iperf3 and the connection server in every variant's
// server VM.
func sgServers(vs []*SGVariant) (func(), error) {
	var cmds []*exec.Cmd
	var lns []net.Listener
	stop := func() {
		for _, c := range cmds {
			c.Process.Kill()
			c.Wait()
		}
		for _, ln := range lns {
			ln.Close()
		}
	}
	for _, v := range vs {
		srv := exec.Command("ip", "netns", "exec", v.serverNS, "iperf3", "-s", "-p", "5201")
		if err := srv.Start(); err != nil {
			return stop, err
		}
		cmds = append(cmds, srv)
		ln, err := crrServer(v.serverNS)
		if err != nil {
			return stop, err
		}
		lns = append(lns, ln)
	}
	time.Sleep(500 * time.Millisecond)
	return stop, nil
}

// connRate is new TCP connections a second from clientNS to dst: each
// connects, sends a request, reads the answer and closes with a RST (no
// TIME_WAIT to run out of ports over the rounds), from sgConnWorker
// connections at a time, for d.
func connRate(clientNS, dst string, d time.Duration) (float64, error) {
	addr := fmt.Sprintf("%s:%d", dst, sgConnPort)
	var mu sync.Mutex
	total, failed := 0, 0
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < sgConnWorker; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, bad, err := connLoop(clientNS, addr, start.Add(d))
			mu.Lock()
			total, failed = total+n, failed+bad
			if firstErr == nil {
				firstErr = err
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	took := time.Since(start).Seconds()
	if failed > 0 || total == 0 {
		return 0, fmt.Errorf("%d of %d connections failed: %v", failed, total+failed, firstErr)
	}
	return float64(total) / took, nil
}

func connLoop(ns, addr string, until time.Time) (ok, failed int, firstErr error) {
	err := lab.Do(ns, func() error {
		b := make([]byte, rrSize)
		for time.Now().Before(until) {
			if err := oneRequest(addr, b); err != nil {
				failed++
				if firstErr == nil {
					firstErr = err
				}
				continue
			}
			ok++
		}
		return nil
	})
	if err != nil {
		return ok, failed, err
	}
	return ok, failed, firstErr
}

func oneRequest(addr string, b []byte) error {
	c, err := net.DialTimeout("tcp4", addr, 2*time.Second)
	if err != nil {
		return err
	}
	tc := c.(*net.TCPConn)
	defer func() { tc.SetLinger(0); tc.Close() }()
	tc.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := tc.Write(b); err != nil {
		return err
	}
	if _, err := io.ReadFull(tc, b); err != nil && !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return err
	}
	return nil
}

// sgProgramCost times port_ingress for a packet of an established
// connection (tracked by its first run) at each variant's client port.
func sgProgramCost(res *SGResult, d *dataplane.Datapath, h *lab.Host) error {
	return lab.Do(h.NS, func() error {
		for _, v := range res.Variants {
			pkt := tcpFrame(v.peerMAC, v.mac, v.ip, v.peerIP, 43000, 5201)
			if _, _, err := d.ProgramCost("port_ingress", v.clientIfindex, pkt, 1); err != nil {
				return err
			}
			per, verdict, err := d.ProgramCost("port_ingress", v.clientIfindex, pkt, 20000)
			if err != nil {
				return err
			}
			if verdict != 7 {
				drops, _ := d.Drops()
				return fmt.Errorf("%s: verdict %d, want redirect (drops: %v)", v.Name, verdict, nonZero(drops))
			}
			v.EstablishedN = float64(per.Nanoseconds())
		}
		return nil
	})
}

func (s *SGResult) markdown(b *strings.Builder) {
	fmt.Fprintf(b, "## Security groups (two hosts, one VM pair per VPC, %d interleaved rounds; min / median / max)\n\n", s.Rounds)
	fmt.Fprintf(b, "| VPC | TCP 1 stream Gbit/s | TCP 4 streams Gbit/s | RTT mean µs | RTT p99 µs | new TCP connections/s | established packet ns |\n|---|---|---|---|---|---|---|\n")
	f := func(st Stat, prec int) string {
		return fmt.Sprintf("%.*f / %.*f / %.*f", prec, st.Min, prec, st.Med, prec, st.Max)
	}
	for _, v := range s.Variants {
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %.0f |\n", v.Name, f(v.Gbps1, 2), f(v.Gbps4, 2), f(v.RTTMean, 0), f(v.RTTP99, 0), f(v.ConnPerSec, 0), v.EstablishedN)
	}
	fmt.Fprintf(b, "\nRatios of medians (with groups over without, in this run):\n\n")
	for _, k := range slices.Sorted(maps.Keys(s.Ratios)) {
		fmt.Fprintf(b, "- %s: %.2f\n", k, s.Ratios[k])
	}
	fmt.Fprintf(b, "\nA new connection (%d at a time: connect, a 64-byte request and answer, RST) walks the client's egress rules and the server's ingress rules once, then is tracked; \"established packet\" is port_ingress for a tracked packet through BPF_PROG_RUN (median of 20,000 single runs; a program that only returns costs about 40 ns in the data plane section).\n", sgConnWorker)
	fmt.Fprintf(b, "Targets: throughput with 1,000 rules at least 0.95× no groups; the established packet's cost the same whatever the rules.\n\n")
	for _, k := range []string{"1000_rules_vs_none_tcp1", "1000_rules_vs_none_tcp4"} {
		if r, ok := s.Ratios[k]; ok && r < 0.95 {
			fmt.Fprintf(b, "**Below target:** %s = %.2f (want ≥ 0.95).\n\n", k, r)
		}
	}
}

// tcpFrame is an Ethernet/IPv4/TCP ACK without payload.
func tcpFrame(dst, src net.HardwareAddr, sip, dip netip.Addr, sport, dport uint16) []byte {
	b := frame(dst, src, sip.String(), dip.String())[:14+20+20]
	ip := b[14:34]
	binary.BigEndian.PutUint16(ip[2:], 40)
	ip[9] = 6
	ip[10], ip[11] = 0, 0
	binary.BigEndian.PutUint16(ip[10:], ^onesSum(ip))
	tcp := b[34:]
	clear(tcp)
	binary.BigEndian.PutUint16(tcp[0:], sport)
	binary.BigEndian.PutUint16(tcp[2:], dport)
	tcp[12], tcp[13] = 5<<4, 0x10
	return b
}

func onesSum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return uint16(sum)
}
