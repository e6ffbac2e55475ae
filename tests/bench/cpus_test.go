package bench

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// twoCPUs names two CPUs this process may run on, in order, or none
// when it may run on fewer.
func TestTwoCPUs(t *testing.T) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		t.Fatal(err)
	}
	got := twoCPUs()
	if set.Count() < 2 {
		if got != "" {
			t.Errorf("one CPU allowed, got %q", got)
		}
		return
	}
	var a, b int
	if _, err := fmt.Sscanf(got, "%d,%d", &a, &b); err != nil || a >= b || !set.IsSet(a) || !set.IsSet(b) {
		t.Errorf("got %q from an affinity of %d CPUs (of %d)", got, set.Count(), runtime.NumCPU())
	}
	for i := 0; i < a; i++ {
		if set.IsSet(i) {
			t.Errorf("got %q, but CPU %d comes first", got, i)
		}
	}
}

// A metric a path was not measured on reads n/a, not 0.
func TestPathTableSaysNotMeasured(t *testing.T) {
	var b strings.Builder
	p := &PathResult{Name: "(c)", Stats: map[string]Stat{"a": {Min: 1, Med: 2, Max: 3}}}
	pathTable(&b, []*PathResult{p}, []metric{{key: "a", title: "A", prec: 0}, {key: "b", title: "B", prec: 2}})
	if !strings.Contains(b.String(), "| (c) | 1 / 2 / 3 | n/a |") {
		t.Errorf("got\n%s", b.String())
	}
}
