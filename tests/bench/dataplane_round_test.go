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
	two := func(name string) test {
		return test{name, func(p *PathResult, add func(string, float64), _ int, _ fifo) error {
			ran = append(ran, name+"/"+p.Name)
			add(name, float64(len(p.Raw[name])))
			return nil
		}}
	}
	ts := []test{two("x"), two("y")}
	var logged int
	for r := 0; r < 3; r++ {
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
	bad := test{"bad", func(*PathResult, func(string, float64), int, fifo) error { return errors.New("no route") }}
	err := runRound(paths, []test{bad}, 0, 1, false, func(string, string) {})
	if err == nil || !strings.Contains(err.Error(), "a, bad: no route") {
		t.Errorf("a failing test: %v, want it named with its path", err)
	}
}
