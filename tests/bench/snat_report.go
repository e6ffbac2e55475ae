package bench

import (
	"fmt"
	"strconv"
	"strings"
)

// snatPairs are the ratios compare takes, of Paths by index: SNAT
// against VM to VM (the same hops without NAT: Courier's NAT's own
// cost), against the kernel's overlay to a MASQUERADE gateway (the same
// hops, the kernel's NAT: #15's target, snatTargetPair), and against
// the one-hop MASQUERADE router (a reference); that overlay against the
// one-hop router (what the kernel's overlay hop costs); and the router's
// MASQUERADE against its routing without NAT (the kernel NAT's own
// cost).
var snatPairs = []struct {
	key      string
	num, den int
}{{"snat_vs_vm", 1, 0}, {snatTargetPair, 1, 2}, {"snat_vs_masquerade", 1, 3},
	{"overlay_masquerade_vs_masquerade", 2, 3}, {"masquerade_vs_routed", 3, 4}}

// snatTargetPair is the pair whose connection rate is #15's target.
const snatTargetPair = "snat_vs_overlay_masquerade"

// compare fills those ratios, medians and round by round (a rate over
// the rate, a latency's inverse over the inverse), and names what misses
// #15's targets: SNAT's connection rate at least the overlay MASQUERADE
// gateway's, and no snat_exhausted drop.
func (s *SNATResult) compare() {
	for _, pr := range snatPairs {
		if max(pr.num, pr.den) >= len(s.Paths) {
			continue
		}
		for _, m := range snatMetrics {
			num, den := s.Paths[pr.num], s.Paths[pr.den]
			if m.lower {
				num, den = den, num
			}
			b := den.Stats[m.key].Med
			if b == 0 {
				continue
			}
			k := pr.key + "_" + m.key
			r := num.Stats[m.key].Med / b
			s.Ratios[k] = r
			s.RoundRatios[k] = roundRatios(num.Raw[m.key], den.Raw[m.key])
			if m.gate && pr.key == snatTargetPair && r < snatConnTarget {
				s.BelowTarget = append(s.BelowTarget, fmt.Sprintf("%s: %.2f (target ≥ %.2f)", k, r, snatConnTarget))
			}
		}
	}
	if s.ExhaustedTotal > 0 {
		s.BelowTarget = append(s.BelowTarget, fmt.Sprintf("snat_exhausted drops: %d (target 0)", s.ExhaustedTotal))
	}
}

// parseConntrackStat sums /proc/net/stat/nf_conntrack's columns (a
// header of names, then a line of hexadecimal values per CPU) by name.
func parseConntrackStat(out string) (map[string]uint64, error) {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 2 {
		return nil, fmt.Errorf("conntrack statistics not understood: %q", firstLine(out))
	}
	names := strings.Fields(lines[0])
	sum := map[string]uint64{}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) != len(names) {
			return nil, fmt.Errorf("conntrack statistics: %d values for %d names: %q", len(f), len(names), l)
		}
		for i, v := range f {
			n, err := strconv.ParseUint(v, 16, 64)
			if err != nil {
				return nil, fmt.Errorf("conntrack statistics: %q: %v", v, err)
			}
			if names[i] != "entries" { // a gauge, repeated on every line
				sum[names[i]] += n
			}
		}
	}
	return sum, nil
}

func (s *SNATResult) markdown(b *strings.Builder) {
	fmt.Fprintf(b, "## SNAT (#15): a VM without EIP to the internet, against VM to VM and the kernel's MASQUERADE behind an overlay (%d interleaved rounds; min / median / max)\n\n", s.Rounds)
	fmt.Fprintf(b, "One sandbox: two hosts (hv1 a hub), two gateways, the VPC translated by SNAT to %s (blocks of %d ports). "+
		"The client is always a VM on hv1: to a VM on hv2 (its DVR, VXLAN), and to the internet namespace by SNAT (snat_out on hv1, VXLAN to a gateway by flow hash, its uplink; back by the gateway, snat_in). "+
		"The target's baseline is the kernel's counterpart of #15's anchor, OVN's centralised SNAT, with as many hops as SNAT: a client namespace (made as the sandbox's VMs are, veth, MTU 1450) on a host namespace's Linux bridge, "+
		"kernel VXLAN across a fabric (as the sandbox's underlay) to a gateway namespace that ends it on a bridge holding the client's default gateway and forwards with nftables masquerade and conntrack out of its uplink, "+
		"linked point to point into the same internet namespace as the sandbox's gateways, to the same servers. "+
		"References, not targets: the same masquerade on a router next to the client (no VXLAN, no gateway hop; the baseline until 2026-12-03, which charged SNAT's overlay hop to its NAT), "+
		"and that router routing a second client without NAT. Each round starts with another path. Load average (1 min) %.2f before, %.2f after.\n\n",
		snatAddr, s.BlockSize, s.LoadAvg[0], s.LoadAvg[1])
	if len(s.BelowTarget) == 0 {
		fmt.Fprintf(b, "**All targets met**: SNAT's connection rate at least %.2f of the overlay MASQUERADE gateway's (medians), no snat_exhausted drop.\n\n", snatConnTarget)
	} else {
		fmt.Fprintf(b, "**BELOW TARGET** (medians of this run):\n\n")
		for _, t := range s.BelowTarget {
			fmt.Fprintf(b, "- %s\n", t)
		}
		fmt.Fprintln(b)
	}
	pathTable(b, s.Paths, snatMetrics)
	fmt.Fprintf(b, "\nTCP: iperf3, %d s a run; ping: -A, 2000 echoes; conn/req: %d workers in the client's namespace, each connecting, sending and receiving 64 bytes and closing after the server, %d s. "+
		"Failed and slow (over 1 s: a SYN sent again) requests, by round:\n\n", s.Seconds, s.Workers, s.Seconds)
	for _, p := range s.Paths {
		fmt.Fprintf(b, "- %s: failed %s, slow %s\n", p.Name, ints(p.Raw["conn_errors"]), ints(p.Raw["conn_slow"]))
	}
	fmt.Fprintf(b, "\nRatios (a rate over the rate; for a latency, the inverse), medians and round by round (min / median / max): SNAT against VM to VM, the same hops without NAT (Courier's NAT's own cost); "+
		"against the overlay MASQUERADE gateway, the same hops with the kernel's NAT (#15's target on conn/s; throughput and RTT reported); against the one-hop MASQUERADE router (a reference); "+
		"the overlay gateway against the one-hop router (what the kernel's overlay hop costs); the one-hop router's MASQUERADE against its routing without NAT (the kernel NAT's own cost):\n\n")
	for _, pr := range snatPairs {
		for _, m := range snatMetrics {
			k := pr.key + "_" + m.key
			if r, ok := s.Ratios[k]; ok {
				rr := s.RoundRatios[k]
				fmt.Fprintf(b, "- %s: %.2f (round by round %.2f / %.2f / %.2f)\n", k, r, rr.Min, rr.Med, rr.Max)
			}
		}
	}
	fmt.Fprintf(b, "\nhv1's snat_exhausted drops: %d over the run (%d connections mapped, snat_new); during each round's SNAT connection rate: %s. "+
		"The VM's blocks after each round: %s. The kernel NATs' (overlay gateway and one-hop router) conntrack insert_failed + drop: %d (nf_conntrack_max %d; Courier's SNAT maps hold 262,144).\n",
		s.ExhaustedTotal, s.SNATNew, uints(s.Exhausted), intList(s.Blocks), s.ConntrackFailures, s.ConntrackMax)
	fmt.Fprintf(b, "\nTargets (#15): SNAT's new connections a second at least the kernel's MASQUERADE's behind the same overlay hop (%.2f); no snat_exhausted drop below port-space exhaustion "+
		"(one client to one server reuses its ports, so the VM never holds more connections than its ephemeral range, about 28,000, under its 64 blocks' 65,536 ports). "+
		"Throughput and RTT, and every ratio against the one-hop router, are reported, not gated. Per-packet cost of the NAT stages: `COURIER_MEASURE=1 go test ./dataplane -run 'TestSNATPathCost|TestEIPPathCost' -v` (DEVELOPERS.md).\n\n", snatConnTarget)
}

func ints(v []float64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.FormatFloat(x, 'f', 0, 64)
	}
	return strings.Join(s, ", ")
}

func uints(v []uint64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.FormatUint(x, 10)
	}
	return strings.Join(s, ", ")
}

func intList(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ", ")
}
