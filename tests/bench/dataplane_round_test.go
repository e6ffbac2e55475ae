package bench

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// Each test runs on every path back to back (a ratio's pair is seconds
// apart), the paths' order turns by one each round, and every path's
// values stay in round order whatever its place in the round.
func TestRoundsPairEachTestAcrossPaths(t *testing.T) {
	paths := []*PathResult{{Name: "a"}, {Name: "b"}, {Name: "c"}}
	var ran []string
	round := 0
	two := func(name string) dpTest {
		return dpTest{name, func(p *PathResult, add func(string, float64), _ int, _ fifo) error {
			ran = append(ran, name+"/"+p.Name)
			add(name, float64(round))
			return nil
		}}
	}
	ts := []dpTest{two("x"), two("y")}
	var logged int
	for r := 0; r < 3; r++ {
		round = r
		ran = nil
		if err := runRound(paths, ts, r, 1, false, func(string, string) { logged++ }); err != nil {
			t.Fatal(err)
		}
		want := map[int]string{
			0: "x/a x/b x/c y/a y/b y/c",
			1: "x/b x/c x/a y/b y/c y/a",
			2: "x/c x/a x/b y/c y/a y/b",
		}[r]
		if got := strings.Join(ran, " "); got != want {
			t.Errorf("round %d ran %s, want %s", r, got, want)
		}
	}
	for _, p := range paths {
		if got := fmt.Sprint(p.Raw["x"], p.Raw["y"]); got != "[0 1 2] [0 1 2]" {
			t.Errorf("path %s: values %s, want one per round in round order", p.Name, got)
		}
	}
	if logged != 18 {
		t.Errorf("logged %d runs, want 18", logged)
	}
	bad := dpTest{"bad", func(*PathResult, func(string, float64), int, fifo) error { return errors.New("no route") }}
	err := runRound(paths, []dpTest{bad}, 0, 1, false, func(string, string) {})
	if err == nil || !strings.Contains(err.Error(), "a, bad: no route") {
		t.Errorf("a failing test: %v, want it named with its path", err)
	}
}

// iperf3's JSON gives the rate, the bytes and the retransmits; a run
// without a retransmit count (UDP) parses, and says so.
func TestParseIperf(t *testing.T) {
	r, err := parseIperf(`{"end":{"sum_sent":{"retransmits":42},"sum_received":{"bytes":2000000000,"bits_per_second":3.2e9}}}`)
	if err != nil || r.gbps != 3.2 || r.retrans != 42 || r.perGB(r.retrans) != 21 {
		t.Errorf("parsed %+v (%v), want 3.2 Gbit/s, 42 retransmits, 21 a GB", r, err)
	}
	r, err = parseIperf(`{"end":{"sum_sent":{},"sum_received":{"bytes":0,"bits_per_second":0}}}`)
	if err != nil || r.retrans != -1 || r.perGB(5) != 0 {
		t.Errorf("no count, nothing received: %+v (%v), want retransmits -1 and 0 a GB", r, err)
	}
	if _, err := parseIperf("iperf3: error"); err == nil {
		t.Error("output that is no JSON parsed")
	}
}
