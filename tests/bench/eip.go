package bench

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/courier-sdn/courier/dataplane"
	"github.com/courier-sdn/courier/tools/sandbox"
)

// EIPs (#15): what the path from the internet to a VM by its EIP costs
// against Courier's own VM-to-VM path across hosts, in one sandbox and
// interleaved rounds; and how long pings from the internet go unanswered
// when one of two gateways dies, each sample in a fresh sandbox.
//
// The EIP path is the internet namespace, a gateway (its uplink's
// program tunnels the packet unchanged to the VM's host), VXLAN, and
// eip_in on the VM's host; the replies leave through eip_out to a
// gateway by flow hash. The VM-to-VM path is a VM on another host, its
// DVR, VXLAN and the same host's DVR. Both end in the same VM, so the
// receiving side is the same; the sandbox's internet reaches the
// gateways by a multipath route (L4 hash), so four streams may use both.
//
// SNAT for VMs without an EIP, its new connections a second and the
// kernel's MASQUERADE baseline of #15 are snat.go's.

// EIPResult is the EIP benchmark's result.
type EIPResult struct {
	Rounds  int `json:"rounds"`
	Seconds int `json:"seconds"`
	// Paths are VM to VM across hosts, then internet to VM by its EIP,
	// by metric key (eipMetrics).
	Paths []*PathResult `json:"paths"`
	// Ratios are the EIP path's share of the VM-to-VM path's
	// performance, medians: a rate over the rate, a latency's inverse
	// over the inverse; RoundRatios the same round by round.
	Ratios      map[string]float64 `json:"ratios"`
	RoundRatios map[string]Stat    `json:"round_ratios"`
	BelowTarget []string           `json:"below_target,omitempty"`
	// UplinkRTT is ping's mean round trip from the internet to gw1's
	// uplink address, µs, each round: the internet's own hop, which
	// the EIP path takes and VM to VM does not.
	UplinkRTT Stat         `json:"internet_to_gateway_rtt_mean_us"`
	LoadAvg   [2]float64   `json:"load_avg_1m"`
	Failover  *EIPFailover `json:"gateway_failover,omitempty"`
}

// EIPFailover is the loss window when a gateway dies: pings every
// IntervalMs from the internet to an EIP served by two gateways, one
// killed (hostd and links) while they run; each sample is the lost
// pings x IntervalMs.
type EIPFailover struct {
	IntervalMs float64 `json:"interval_ms"`
	// LossMs is over the deaths of gateways that carried the pings
	// in, their replies out, or both (FailoverKill.Carried).
	LossMs map[string]Stat `json:"loss_window_ms"`
	// SilenceMs is the same for the longest silence between replies.
	SilenceMs map[string]Stat `json:"longest_silence_ms"`
	Samples   []FailoverKill  `json:"samples"`
}

// FailoverKill is one gateway death.
type FailoverKill struct {
	Gateway string `json:"gateway"`
	// Carried is what the killed gateway carried of the pings before
	// it died: "in", "out" or "in+out".
	Carried string `json:"carried"`
	// Survivor is what the other gateway carried from the death on.
	Survivor string  `json:"survivor"`
	Sent     int     `json:"sent"`
	Lost     int     `json:"lost"`
	Dups     int     `json:"duplicates"`
	LossMs   float64 `json:"loss_window_ms"`
	// SilenceMs is the longest time between two replies in a row.
	SilenceMs float64 `json:"longest_silence_ms"`
	// Recovered: the pings' last second was answered in full.
	Recovered bool `json:"recovered"`
}

// eipMetrics are what each round measures on both paths.
var eipMetrics = []metric{
	{key: "tcp_1_stream_gbps", title: "TCP 1 stream Gbit/s", prec: 2, gate: true},
	{key: "tcp_4_streams_gbps", title: "TCP 4 streams Gbit/s", prec: 2, gate: true},
	{key: "rtt_mean_us", title: "ping RTT mean µs", prec: 0, lower: true, gate: true},
	{key: "rtt_p99_us", title: "ping RTT p99 µs", prec: 0, lower: true},
}

// eipTarget is #15's target: the EIP path at least 0.95 of VM to VM.
const eipTarget = 0.95

const (
	eipAddr     = "203.0.113.5"
	eipVMAddr   = "10.72.1.10"
	eipPeerAddr = "10.72.1.11"
)

// EIP runs the EIP benchmark: rounds interleaved rounds of seconds-long
// iperf3 runs on both paths, then kills gateways in fresh sandboxes.
func EIP(ctx context.Context, env Env, rounds, seconds, kills int) (*EIPResult, error) {
	res := &EIPResult{Rounds: rounds, Seconds: seconds, Ratios: map[string]float64{}, RoundRatios: map[string]Stat{}}
	res.LoadAvg[0] = loadAvg()
	if err := eipThroughput(ctx, env, res); err != nil {
		return nil, err
	}
	res.compare()
	fo := &EIPFailover{IntervalMs: 10}
	for i := 0; i < kills; i++ {
		env.Log.Info("EIP benchmark: gateway death", "sample", i+1)
		k, err := eipGatewayDeath(ctx, env, fo.IntervalMs, i%2)
		if err != nil {
			return nil, fmt.Errorf("gateway death %d: %w", i+1, err)
		}
		fo.Samples = append(fo.Samples, *k)
	}
	fo.summarize()
	res.Failover = fo
	res.LoadAvg[1] = loadAvg()
	return res, nil
}

// summarize fills LossMs from the samples, by what the dead carried.
func (f *EIPFailover) summarize() {
	loss, silence := map[string][]float64{}, map[string][]float64{}
	for _, k := range f.Samples {
		loss[k.Carried] = append(loss[k.Carried], k.LossMs)
		silence[k.Carried] = append(silence[k.Carried], k.SilenceMs)
	}
	f.LossMs, f.SilenceMs = map[string]Stat{}, map[string]Stat{}
	for c := range loss {
		f.LossMs[c], f.SilenceMs[c] = stat(loss[c]), stat(silence[c])
	}
}

// eipSandbox starts a sandbox of hosts hosts (hv1 a hub) and two
// gateways, with a VM "vm" on hv1 bound to the EIP and, with a second
// host, a VM "peer" on hv2 in the same vxnet.
func eipSandbox(ctx context.Context, env Env, tag string, hosts int) (*sandbox.Sandbox, func(), error) {
	sb, _, done, err := benchSandboxWith(ctx, env, tag, sandbox.Options{Hosts: hosts, Hubs: 1, Gateways: 2})
	if err != nil {
		return nil, nil, err
	}
	args := []string{"--db", sb.NB(), "--timeout", "30s", "--wait=hv",
		"vpc-add", "e", "--open", "--", "vxnet-add", "e", "ew", "10.72.1.0/24",
		"--", "port-add", "ew", "vm", "02:00:00:72:01:0a", eipVMAddr,
		"--", "eip-add", sandbox.InternetName, eipAddr, "--port", "vm"}
	if hosts > 1 {
		args = append(args, "--", "port-add", "ew", "peer", "02:00:00:72:01:0b", eipPeerAddr)
	}
	if out, err := exec.CommandContext(ctx, filepath.Join(env.BinDir, "courier-nbctl"), args...).CombinedOutput(); err != nil {
		done()
		return nil, nil, fmt.Errorf("courier-nbctl: %v: %s", err, out)
	}
	vms := map[string]string{"vm": "hv1"}
	if hosts > 1 {
		vms["peer"] = "hv2"
	}
	for port, host := range vms {
		if err := sb.AddVM(ctx, host, port); err != nil {
			done()
			return nil, nil, err
		}
	}
	// The gateways learn where the EIP is from the southbound: wait
	// until the internet reaches it.
	if err := awaitPing(sb.InternetNS(), eipAddr, 20*time.Second); err != nil {
		done()
		return nil, nil, err
	}
	return sb, done, nil
}

// eipThroughput measures both paths in one sandbox of two hosts.
func eipThroughput(ctx context.Context, env Env, res *EIPResult) error {
	sb, done, err := eipSandbox(ctx, env, "eip", 2)
	if err != nil {
		return err
	}
	defer done()
	if err := awaitPing(sb.VMNS("peer"), eipVMAddr, 10*time.Second); err != nil {
		return err
	}
	srv := exec.Command("ip", "netns", "exec", sb.VMNS("vm"), "iperf3", "-s", "-p", strconv.Itoa(iperfPort))
	if err := srv.Start(); err != nil {
		return fmt.Errorf("iperf3 server: %w", err)
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	time.Sleep(300 * time.Millisecond)
	vm := &PathResult{Name: "VM to VM across hosts", client: sb.VMNS("peer"), serverNS: sb.VMNS("vm"), dst: eipVMAddr}
	eip := &PathResult{Name: "internet to VM by its EIP (2 gateways)", client: sb.InternetNS(), serverNS: sb.VMNS("vm"), dst: eipAddr}
	res.Paths = []*PathResult{vm, eip}
	var uplink []float64
	for r := 0; r < res.Rounds; r++ {
		for _, p := range res.Paths {
			env.Log.Info("EIP benchmark", "round", r+1, "path", p.Name)
			if err := measureEIP(p, res.Seconds); err != nil {
				return fmt.Errorf("%s: %w", p.Name, err)
			}
		}
		mean, _, err := pingRTT(sb.InternetNS(), sb.State.Internet.Gateways["gw1"], 2000)
		if err != nil {
			return fmt.Errorf("internet to gw1's uplink: %w", err)
		}
		uplink = append(uplink, mean)
	}
	res.UplinkRTT = stat(uplink)
	for _, p := range res.Paths {
		p.Stats = map[string]Stat{}
		for k, v := range p.Raw {
			p.Stats[k] = stat(v)
		}
	}
	return nil
}

// measureEIP runs every EIP metric once on p.
func measureEIP(p *PathResult, seconds int) error {
	if p.Raw == nil {
		p.Raw = map[string][]float64{}
	}
	for _, s := range []struct {
		n   int
		key string
	}{{1, "tcp_1_stream_gbps"}, {4, "tcp_4_streams_gbps"}} {
		g, err := iperf(p.client, p.dst, s.n, seconds)
		if err != nil {
			return err
		}
		p.Raw[s.key] = append(p.Raw[s.key], g)
	}
	mean, p99, err := pingRTT(p.client, p.dst, 2000)
	if err != nil {
		return err
	}
	p.Raw["rtt_mean_us"] = append(p.Raw["rtt_mean_us"], mean)
	p.Raw["rtt_p99_us"] = append(p.Raw["rtt_p99_us"], p99)
	return nil
}

// eipGatewayDeath pings the EIP every interval from the internet in a
// fresh sandbox of one host and two gateways, kills the gateway that
// carried the pings one way (dir 0 in, 1 out) with courier-sandbox
// host-down (hostd killed, its uplink and underlay down on both sides,
// as TestEIPStreamSurvivesAGatewayDeath does), and counts the pings lost.
func eipGatewayDeath(ctx context.Context, env Env, intervalMs float64, dir int) (*FailoverKill, error) {
	sb, done, err := eipSandbox(ctx, env, "eipgw", 1)
	if err != nil {
		return nil, err
	}
	defer done()
	gws := []string{"gw1", "gw2"}
	before, err := gatewayCounters(sb, gws)
	if err != nil {
		return nil, err
	}
	k := &FailoverKill{}
	var atKill map[string][2]uint64
	// 4 s of pings, the gateway killed after the first.
	out, err := pingDuring(sb.InternetNS(), eipAddr, intervalMs, int(4000/intervalMs), time.Second, func() error {
		if atKill, err = gatewayCounters(sb, gws); err != nil {
			return err
		}
		k.Gateway, k.Carried = carrier(gws, before, atKill, dir)
		if k.Gateway == "" {
			return fmt.Errorf("no gateway counted the pings")
		}
		_, err := sb.HostDown(k.Gateway)
		return err
	})
	if err != nil {
		return nil, err
	}
	end, err := gatewayCounters(sb, gws)
	if err != nil {
		return nil, err
	}
	for _, g := range gws {
		if g != k.Gateway {
			k.Survivor = fmt.Sprintf("%s: %d in, %d out", g, end[g][0]-atKill[g][0], end[g][1]-atKill[g][1])
		}
	}
	pr := parsePing(out)
	if pr.Sent == 0 {
		return nil, fmt.Errorf("ping from the internet sent nothing: %s", firstLine(out))
	}
	k.Sent, k.Lost, k.Dups = pr.Sent, pr.Sent-pr.Received, pr.Dups
	k.LossMs, k.SilenceMs = float64(k.Lost)*intervalMs, pr.longestSilenceMs()
	k.Recovered = pr.answeredTail(int(1000 / intervalMs))
	return k, nil
}

// gatewayCounters reads each gateway's gw_down (tunnelled to hosts) and
// gw_up (sent up its uplink) counters.
func gatewayCounters(sb *sandbox.Sandbox, gws []string) (map[string][2]uint64, error) {
	out := map[string][2]uint64{}
	for _, g := range gws {
		d, err := dataplane.OpenPinned(sb.State.PinRoot, g)
		if err != nil {
			return nil, err
		}
		c, err := d.Counters()
		d.ClosePinned()
		if err != nil {
			return nil, err
		}
		out[g] = [2]uint64{c["gw_down"], c["gw_up"]}
	}
	return out, nil
}

// carrier is the gateway whose counter for dir (0 in, 1 out) grew the
// most between before and after, and which ways it carried ("in",
// "out", "in+out"); "" if none grew.
func carrier(gws []string, before, after map[string][2]uint64, dir int) (gw, carried string) {
	var most uint64
	for _, g := range gws {
		if d := after[g][dir] - before[g][dir]; d > most {
			most, gw = d, g
		}
	}
	if gw == "" {
		return "", ""
	}
	in, out := after[gw][0] > before[gw][0], after[gw][1] > before[gw][1]
	switch {
	case in && out:
		carried = "in+out"
	case in:
		carried = "in"
	default:
		carried = "out"
	}
	return gw, carried
}
