package bench

import (
	"strings"
	"testing"
)

// statsOf fills a path's statistics from its rounds.
func statsOf(raw map[string][]float64) *PathResult {
	p := &PathResult{Raw: raw, Stats: map[string]Stat{}}
	for k, v := range raw {
		p.Stats[k] = stat(v)
	}
	return p
}

// SNAT's ratios against VM to VM, the overlay MASQUERADE gateway and
// the one-hop router, and the kernel's among themselves; only the
// connection rate against the overlay gateway is a target (not the one
// against the one-hop router, lower here), and any snat_exhausted drop
// misses one.
func TestSNATCompare(t *testing.T) {
	row := func(gbps, rtt, conns float64) map[string][]float64 {
		return map[string][]float64{"tcp_1_stream_gbps": {gbps, gbps}, "tcp_4_streams_gbps": {gbps, gbps},
			"rtt_mean_us": {rtt, rtt}, "rtt_p99_us": {rtt, rtt}, "conn_per_s": {conns, conns * 2}}
	}
	s := &SNATResult{Rounds: 2, Ratios: map[string]float64{}, RoundRatios: map[string]Stat{}, ExhaustedTotal: 3,
		Paths: []*PathResult{statsOf(row(10, 20, 3000)), statsOf(row(8, 25, 3000)), statsOf(row(10, 20, 4000)),
			statsOf(row(16, 10, 5000)), statsOf(row(20, 8, 6250))}}
	s.compare()
	for k, want := range map[string]float64{
		"snat_vs_vm_tcp_1_stream_gbps": 0.8, "snat_vs_vm_rtt_mean_us": 0.8, "snat_vs_vm_conn_per_s": 1,
		"snat_vs_overlay_masquerade_tcp_1_stream_gbps": 0.8, "snat_vs_overlay_masquerade_conn_per_s": 0.75,
		"snat_vs_masquerade_tcp_4_streams_gbps": 0.5, "snat_vs_masquerade_rtt_mean_us": 0.4, "snat_vs_masquerade_conn_per_s": 0.6,
		"overlay_masquerade_vs_masquerade_conn_per_s": 0.8, "overlay_masquerade_vs_masquerade_rtt_p99_us": 0.5,
		"masquerade_vs_routed_conn_per_s": 0.8, "masquerade_vs_routed_rtt_p99_us": 0.8} {
		if got := s.Ratios[k]; got < want-1e-9 || got > want+1e-9 {
			t.Errorf("%s = %v, want %v", k, got, want)
		}
	}
	got := strings.Join(s.BelowTarget, "; ")
	if len(s.BelowTarget) != 2 || !strings.Contains(got, "snat_vs_overlay_masquerade_conn_per_s: 0.75 (target ≥ 1.00)") ||
		!strings.Contains(got, "snat_exhausted drops: 3 (target 0)") {
		t.Errorf("below target: %q, want the connection rate against the overlay gateway and the drops only", got)
	}
	var b strings.Builder
	s.markdown(&b)
	if !strings.Contains(b.String(), "**BELOW TARGET**") || !strings.Contains(b.String(), "masquerade_vs_routed_conn_per_s: 0.80") ||
		!strings.Contains(b.String(), "snat_vs_masquerade_conn_per_s: 0.60") {
		t.Errorf("markdown:\n%s", b.String())
	}
	rep := &Report{SNAT: s}
	if !strings.Contains(rep.Markdown(), "**SNAT below target on 2 of its targets**") {
		t.Errorf("the report's summary does not say SNAT missed its targets:\n%s", rep.Markdown())
	}

	// At the overlay gateway's rate, below the one-hop router's: met.
	met := &SNATResult{Ratios: map[string]float64{}, RoundRatios: map[string]Stat{},
		Paths: []*PathResult{statsOf(row(10, 20, 3000)), statsOf(row(8, 25, 4000)), statsOf(row(8, 25, 4000)), statsOf(row(16, 10, 5000))}}
	met.compare()
	if len(met.BelowTarget) != 0 {
		t.Errorf("equal connection rates, no drop: below target %v", met.BelowTarget)
	}
	if _, ok := met.Ratios["masquerade_vs_routed_conn_per_s"]; ok {
		t.Errorf("a ratio against a path not measured")
	}
}

func TestParseConntrackStat(t *testing.T) {
	out := `entries  clashres found new invalid ignore delete chainlength insert insert_failed drop early_drop icmp_error  expect_new expect_create expect_delete search_restart
0000002a  00000000 00000000 00000000 00000005 00000000 00000000 00000000 00000000 00000001 00000002 00000000 00000000  00000000 00000000 00000000 00000000
0000002a  00000000 00000000 00000000 00000003 00000000 00000000 00000000 00000000 0000000a 00000000 00000000 00000000  00000000 00000000 00000000 00000000
`
	st, err := parseConntrackStat(out)
	if err != nil {
		t.Fatal(err)
	}
	if st["insert_failed"] != 11 || st["drop"] != 2 || st["invalid"] != 8 || st["entries"] != 0 {
		t.Errorf("%v: want insert_failed 11, drop 2, invalid 8 summed over CPUs, entries (a gauge) left out", st)
	}
	for _, bad := range []string{"", "entries drop\n1\n", "entries drop\nzz 1\n"} {
		if _, err := parseConntrackStat(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
