package hostd

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/courier-sdn/courier/schema/sbdb"
)

// Compiling through the cache, cold, warm and after a flow changed,
// gives what parsing every flow gives; what no compile uses any more is
// dropped.
func TestFlowCacheCompilesAsParsing(t *testing.T) {
	files, _ := filepath.Glob("testdata/lflows/*.flows")
	if len(files) < 4 {
		t.Fatalf("%d flow files in testdata/lflows", len(files))
	}
	c := newFlowCache()
	for _, in := range files {
		flows := readFlows(t, in)
		want := render(compileFlows(1, flows, goldenDPs, nil))
		for _, pass := range []string{"cold", "warm"} {
			if got := render(compileFlows(1, flows, goldenDPs, c)); got != want {
				t.Errorf("%s, %s cache:\n%s\nwant\n%s", in, pass, got, want)
			}
		}
		// One flow's match changes: the new text is parsed, the old
		// one dropped.
		changed := *flows[0]
		changed.Match = "(" + changed.Match + ")"
		old := flows[0].Match
		flows[0] = &changed
		want = render(compileFlows(1, flows, goldenDPs, nil))
		if got := render(compileFlows(1, flows, goldenDPs, c)); got != want {
			t.Errorf("%s, after a change:\n%s\nwant\n%s", in, got, want)
		}
		if _, ok := c.matches[old]; ok && !usesMatch(flows, old) {
			t.Errorf("%s: the cache kept %q, which no flow has any more", in, old)
		}
		if len(c.matches) > len(flows) || len(c.actions) > len(flows) {
			t.Errorf("%s: %d matches and %d actions cached for %d flows", in, len(c.matches), len(c.actions), len(flows))
		}
	}
}

func usesMatch(flows []*sbdb.LogicalFlow, m string) bool {
	for _, f := range flows {
		if strings.TrimSpace(f.Match) == strings.TrimSpace(m) {
			return true
		}
	}
	return false
}
