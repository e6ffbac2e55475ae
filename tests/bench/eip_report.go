package bench

import (
	"fmt"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/courier-sdn/courier/internal/lab"
)

// compare fills the EIP path's share of the VM-to-VM path's performance
// (Paths[1] against Paths[0]) for every metric, and names each gated
// one below eipTarget.
func (e *EIPResult) compare() {
	if len(e.Paths) < 2 {
		return
	}
	vm, eip := e.Paths[0], e.Paths[1]
	for _, m := range eipMetrics {
		num, den := eip, vm
		if m.lower { // a latency: the VM path's over the EIP path's
			num, den = vm, eip
		}
		base := den.Stats[m.key].Med
		if base == 0 {
			continue
		}
		k := "eip_vs_vm_" + m.key
		r := num.Stats[m.key].Med / base
		e.Ratios[k] = r
		e.RoundRatios[k] = roundRatios(num.Raw[m.key], den.Raw[m.key])
		if m.gate && r < eipTarget {
			e.BelowTarget = append(e.BelowTarget, fmt.Sprintf("%s: %.2f (target ≥ %.2f)", k, r, eipTarget))
		}
	}
}

// pingResult is what ping printed: how many it sent and received, and
// the sequence numbers answered.
type pingResult struct {
	Sent, Received, Dups int
	Answered             map[int]bool
	// At is when each answered one's reply came (ping -D), in seconds.
	At map[int]float64
}

// parsePing reads iputils ping's output (without -q): a line per reply
// ("... icmp_seq=N ..."; duplicates ignored) and the summary.
func parsePing(out string) pingResult {
	r := pingResult{Answered: map[int]bool{}, At: map[int]float64{}}
	r.Sent, r.Received = lab.PingSummary(out)
	for _, line := range strings.Split(out, "\n") {
		i := strings.Index(line, "icmp_seq=")
		if i < 0 || !strings.Contains(line, "bytes from") {
			continue
		}
		if strings.Contains(line, "DUP!") {
			r.Dups++
			continue
		}
		f := strings.Fields(line[i+len("icmp_seq="):])
		if len(f) == 0 {
			continue
		}
		n, err := strconv.Atoi(f[0])
		if err != nil {
			continue
		}
		r.Answered[n] = true
		var at float64
		if _, err := fmt.Sscanf(line, "[%f]", &at); err == nil {
			r.At[n] = at
		}
	}
	return r
}

// longestSilenceMs is the longest time between two replies in a row,
// by their timestamps: the blackout plus one interval, however late the
// sender's timer ran.
func (r pingResult) longestSilenceMs() float64 {
	seqs := make([]int, 0, len(r.At))
	for n := range r.At {
		seqs = append(seqs, n)
	}
	sort.Ints(seqs)
	var most float64
	for i := 1; i < len(seqs); i++ {
		most = max(most, (r.At[seqs[i]]-r.At[seqs[i-1]])*1000)
	}
	return most
}

// answeredTail tells whether the last n pings sent were all answered.
func (r pingResult) answeredTail(n int) bool {
	if r.Sent < n {
		return false
	}
	for s := r.Sent - n + 1; s <= r.Sent; s++ {
		if !r.Answered[s] {
			return false
		}
	}
	return true
}

// pingDuring sends count pings, one every intervalMs, from namespace ns
// to dst, runs action at after, and returns ping's output once the
// last ping is answered or given up (1 s).
func pingDuring(ns, dst string, intervalMs float64, count int, after time.Duration, action func() error) (string, error) {
	p := exec.Command("ip", "netns", "exec", ns, "ping", "-n", "-D", "-c", strconv.Itoa(count),
		"-i", strconv.FormatFloat(intervalMs/1000, 'f', 3, 64), "-W", "1", dst)
	var out strings.Builder
	p.Stdout, p.Stderr = &out, &out
	if err := p.Start(); err != nil {
		return "", err
	}
	time.Sleep(after)
	if err := action(); err != nil {
		p.Process.Kill()
		p.Wait()
		return "", err
	}
	p.Wait() // ping exits 1 when any is lost
	return out.String(), nil
}

// awaitPing pings dst from ns until it answers, for up to timeout.
func awaitPing(ns, dst string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		out, err := lab.Exec(ns, "ping", "-n", "-c", "1", "-W", "1", dst)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s does not answer from %s within %s: %s", dst, ns, timeout, firstLine(out))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (e *EIPResult) markdown(b *strings.Builder) {
	fmt.Fprintf(b, "## EIPs (#15): the internet to a VM by its EIP, against VM to VM (%d interleaved rounds; min / median / max)\n\n", e.Rounds)
	fmt.Fprintf(b, "One sandbox: two hosts (hv1 a hub), two gateways, the internet namespace reaching 203.0.113.0/24 by a multipath route with a next hop on its point-to-point link to each (L4 hash). "+
		"Both paths end in the same VM on hv1: from a VM on hv2 (its DVR, VXLAN), and from the internet by the VM's EIP (a gateway tunnels it unchanged, eip_in translates it on hv1; replies leave by eip_out to a gateway). "+
		"Load average (1 min) %.2f before, %.2f after.\n\n", e.LoadAvg[0], e.LoadAvg[1])
	if len(e.BelowTarget) == 0 {
		fmt.Fprintf(b, "**All targets met**: the EIP path at least %.2f of VM to VM (medians).\n\n", eipTarget)
	} else {
		fmt.Fprintf(b, "**BELOW TARGET** (the EIP path's share of VM to VM, medians of this run):\n\n")
		for _, s := range e.BelowTarget {
			fmt.Fprintf(b, "- %s\n", s)
		}
		fmt.Fprintln(b)
	}
	pathTable(b, e.Paths, eipMetrics)
	fmt.Fprintf(b, "\nTCP: iperf3, %d s a run; ping: -A, 2000 echoes. The EIP path's share of VM to VM (a rate over the rate; for a latency, VM to VM's over the EIP path's), medians and round by round (min / median / max):\n\n", e.Seconds)
	for _, m := range eipMetrics {
		k := "eip_vs_vm_" + m.key
		if r, ok := e.Ratios[k]; ok {
			rr := e.RoundRatios[k]
			fmt.Fprintf(b, "- %s: %.2f (round by round %.2f / %.2f / %.2f)\n", k, r, rr.Min, rr.Med, rr.Max)
		}
	}
	u := e.UplinkRTT
	fmt.Fprintf(b, "\nThe internet's own hop (its link to a gateway), which the EIP path crosses and VM to VM does not: ping from the internet to gw1's uplink address, mean %.0f / %.0f / %.0f µs", u.Min, u.Med, u.Max)
	if len(e.Paths) == 2 && e.Paths[1].Stats["rtt_mean_us"].Med > u.Med {
		fmt.Fprintf(b, "; without it, the EIP path's mean RTT would be about %.2f of VM to VM's (medians; not a target, the gateway's own ICMP answer is in it)",
			e.Paths[0].Stats["rtt_mean_us"].Med/(e.Paths[1].Stats["rtt_mean_us"].Med-u.Med))
	}
	fmt.Fprintf(b, ".\n")
	if f := e.Failover; f != nil {
		f.markdown(b)
	}
	fmt.Fprintf(b, "\nTarget: the EIP path at least %.2f of the VM-to-VM path (#15). "+
		"SNAT for VMs without an EIP, its new connections a second and the kernel's MASQUERADE are the snat section's; "+
		"the NAT stages' per-packet cost is in DEVELOPERS.md (TestEIPPathCost, TestSNATPathCost), not here.\n\n", eipTarget)
}

func (f *EIPFailover) markdown(b *strings.Builder) {
	fmt.Fprintf(b, "\n### Loss window when a gateway dies\n\nIn a fresh sandbox each time (one host, two gateways), a ping every %.0f ms from the internet to the EIP; "+
		"after 1 s a gateway is taken down with courier-sandbox host-down (its hostd killed, then its uplink and underlay down on both sides), as in TestEIPStreamSurvivesAGatewayDeath: alternately the one that carried the pings in and the one that carried the replies out. "+
		"Lost pings x %.0f ms, min / median / max:\n\n", f.IntervalMs, f.IntervalMs)
	for _, c := range []string{"in", "out", "in+out"} {
		if s, ok := f.LossMs[c]; ok {
			q := f.SilenceMs[c]
			fmt.Fprintf(b, "- **the gateway that carried them %s: %.0f / %.0f / %.0f ms** (longest silence between replies %.0f / %.0f / %.0f ms)\n",
				c, s.Min, s.Med, s.Max, q.Min, q.Med, q.Max)
		}
	}
	fmt.Fprintf(b, "\n| death | gateway killed | it carried | the other from then on, packets | sent | lost | duplicates | loss window ms | longest silence between replies ms | last second answered |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for i, k := range f.Samples {
		fmt.Fprintf(b, "| %d | %s | %s | %s | %d | %d | %d | %.0f | %.0f | %v |\n", i+1, k.Gateway, k.Carried, k.Survivor, k.Sent, k.Lost, k.Dups, k.LossMs, k.SilenceMs, k.Recovered)
	}
	fmt.Fprintf(b, "\nThe longest silence is read from the replies' timestamps (ping -D): the blackout plus one interval, also when the sender's timer runs late on a loaded machine, which lost pings x %.0f ms does not see. "+
		"A long silence with nothing lost is that timer alone: the sender stalled, anywhere in the 4 s, and the replies on either side of the gap have consecutive sequence numbers and sub-millisecond round trips.\n", f.IntervalMs)
	fmt.Fprintf(b, "\nOut: the host passes over a gateway silent to its probes (every 100 ms; silent for 300 ms, DefaultHubDownAfter). "+
		"In: the internet reaches each gateway over a link of its own with the multipath route's next hop on it, so the dead gateway's link going down marks its next hop dead at once "+
		"(`ignore_routes_with_linkdown`), and the flows hashed to it move to the survivor, which serves every EIP: what is lost is what was in flight. "+
		"That is an upstream that sees the failure as a link going down, at once; one that relies on BFD adds its detection time (typically 3 x 50-300 ms), and one with neither keeps hashing flows to the dead next hop until its neighbour entry fails. "+
		"Before (bench/results/2026-12-02T18-36-47Z.md) the internet was one bridge: the dead gateway's next hop stayed, the bridge flooded its frames to the survivor, and the survivor's uplink program took frames for any MAC, so the inbound window read 0 ms for the wrong reason; "+
		"the program now takes only frames addressed to it (TestGatewayTakesOnlyFramesForItsOwnMAC).\n")
}
