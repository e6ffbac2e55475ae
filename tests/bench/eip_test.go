package bench

import (
	"strings"
	"testing"
)

func TestParsePing(t *testing.T) {
	out := `PING 203.0.113.5 (203.0.113.5) 56(84) bytes of data.
64 bytes from 203.0.113.5: icmp_seq=1 ttl=63 time=0.210 ms
[1764700000.010000] 64 bytes from 203.0.113.5: icmp_seq=2 ttl=63 time=0.190 ms
64 bytes from 203.0.113.5: icmp_seq=2 ttl=63 time=0.300 ms (DUP!)
From 198.51.100.10 icmp_seq=3 Destination Host Unreachable
[1764700000.050000] 64 bytes from 203.0.113.5: icmp_seq=5 ttl=63 time=0.180 ms
[1764700000.062000] 64 bytes from 203.0.113.5: icmp_seq=6 ttl=63 time=0.180 ms

--- 203.0.113.5 ping statistics ---
6 packets transmitted, 4 received, +1 duplicates, +1 errors, 33.3333% packet loss, time 52ms
`
	r := parsePing(out)
	if r.Sent != 6 || r.Received != 4 || r.Dups != 1 {
		t.Fatalf("sent %d received %d duplicates %d, want 6, 4 and 1", r.Sent, r.Received, r.Dups)
	}
	for seq, want := range map[int]bool{1: true, 2: true, 3: false, 4: false, 5: true, 6: true} {
		if r.Answered[seq] != want {
			t.Errorf("icmp_seq=%d answered %v, want %v", seq, r.Answered[seq], want)
		}
	}
	if got := r.longestSilenceMs(); got < 39.9 || got > 40.1 {
		t.Errorf("longest silence %v ms, want 40 (icmp_seq 2 to 5; 1 has no timestamp)", got)
	}
	if !r.answeredTail(2) || r.answeredTail(3) || r.answeredTail(7) {
		t.Errorf("answeredTail: 2 %v, 3 %v, 7 %v; want true, false, false", r.answeredTail(2), r.answeredTail(3), r.answeredTail(7))
	}
	if r := parsePing("ping: connect: Network is unreachable\n"); r.Sent != 0 || len(r.Answered) != 0 {
		t.Errorf("an error: %+v", r)
	}
}

func TestCarrier(t *testing.T) {
	gws := []string{"gw1", "gw2"}
	before := map[string][2]uint64{"gw1": {10, 10}, "gw2": {5, 0}}
	for _, c := range []struct {
		after       map[string][2]uint64
		dir         int
		gw, carried string
	}{
		{map[string][2]uint64{"gw1": {110, 10}, "gw2": {5, 100}}, 0, "gw1", "in"},
		{map[string][2]uint64{"gw1": {110, 10}, "gw2": {5, 100}}, 1, "gw2", "out"},
		{map[string][2]uint64{"gw1": {110, 110}, "gw2": {5, 0}}, 1, "gw1", "in+out"},
		{map[string][2]uint64{"gw1": {10, 10}, "gw2": {5, 0}}, 0, "", ""},
	} {
		if gw, carried := carrier(gws, before, c.after, c.dir); gw != c.gw || carried != c.carried {
			t.Errorf("after %v, way %d: %s %q, want %s %q", c.after, c.dir, gw, carried, c.gw, c.carried)
		}
	}
}

// The EIP path's share: a rate over the VM path's, a latency's inverse;
// only gated metrics below 0.95 are listed.
func TestEIPCompare(t *testing.T) {
	vm := &PathResult{Raw: map[string][]float64{
		"tcp_1_stream_gbps": {10, 8, 9}, "tcp_4_streams_gbps": {10, 10, 10}, "rtt_mean_us": {50, 50, 50}, "rtt_p99_us": {80, 80, 80}}}
	eip := &PathResult{Raw: map[string][]float64{
		"tcp_1_stream_gbps": {9.9, 8, 9}, "tcp_4_streams_gbps": {9, 9, 9}, "rtt_mean_us": {100, 100, 100}, "rtt_p99_us": {160, 160, 160}}}
	for _, p := range []*PathResult{vm, eip} {
		p.Stats = map[string]Stat{}
		for k, v := range p.Raw {
			p.Stats[k] = stat(v)
		}
	}
	e := &EIPResult{Paths: []*PathResult{vm, eip}, Ratios: map[string]float64{}, RoundRatios: map[string]Stat{}}
	e.compare()
	for k, want := range map[string]float64{"eip_vs_vm_tcp_1_stream_gbps": 1, "eip_vs_vm_tcp_4_streams_gbps": 0.9,
		"eip_vs_vm_rtt_mean_us": 0.5, "eip_vs_vm_rtt_p99_us": 0.5} {
		if got := e.Ratios[k]; got < want-1e-9 || got > want+1e-9 {
			t.Errorf("%s = %v, want %v", k, got, want)
		}
	}
	if rr := e.RoundRatios["eip_vs_vm_tcp_1_stream_gbps"]; rr.Min != 0.99 || rr.Med != 1 || rr.Max != 1 {
		t.Errorf("round ratios %+v, want 0.99 to 1", rr)
	}
	got := strings.Join(e.BelowTarget, "; ")
	if len(e.BelowTarget) != 2 || !strings.Contains(got, "eip_vs_vm_tcp_4_streams_gbps: 0.90") || !strings.Contains(got, "eip_vs_vm_rtt_mean_us: 0.50") {
		t.Errorf("below target: %q, want the 4 streams and the mean RTT (the p99 is not gated)", got)
	}
	var b strings.Builder
	e.markdown(&b)
	if !strings.Contains(b.String(), "are the snat section's") || !strings.Contains(b.String(), "BELOW TARGET") {
		t.Errorf("markdown:\n%s", b.String())
	}
}

// Deaths are summarized apart by what the dead gateway carried: an
// inbound gateway's loss and an outbound one's are different figures.
func TestFailoverSummary(t *testing.T) {
	f := &EIPFailover{IntervalMs: 10, Samples: []FailoverKill{
		{Gateway: "gw1", Carried: "in", LossMs: 0}, {Gateway: "gw2", Carried: "out", LossMs: 160, SilenceMs: 300},
		{Gateway: "gw1", Carried: "in", LossMs: 20}, {Gateway: "gw2", Carried: "out", LossMs: 130},
		{Gateway: "gw1", Carried: "in", LossMs: 10}}}
	f.summarize()
	if s := f.LossMs["in"]; s != (Stat{Min: 0, Med: 10, Max: 20}) {
		t.Errorf("in: %+v", s)
	}
	if s := f.LossMs["out"]; s != (Stat{Min: 130, Med: 160, Max: 160}) {
		t.Errorf("out: %+v", s)
	}
	if _, ok := f.LossMs["in+out"]; ok || len(f.LossMs) != 2 {
		t.Errorf("summaries %v, want in and out only", f.LossMs)
	}
	var b strings.Builder
	f.markdown(&b)
	if s := f.SilenceMs["out"]; s != (Stat{Min: 0, Med: 300, Max: 300}) {
		t.Errorf("out, silence: %+v", s)
	}
	if !strings.Contains(b.String(), "carried them out: 130 / 160 / 160 ms** (longest silence between replies 0 / 300 / 300 ms)") {
		t.Errorf("markdown:\n%s", b.String())
	}
}
