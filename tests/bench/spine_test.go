package bench

import (
	"strings"
	"testing"

	"github.com/courier-sdn/courier/dataplane"
)

// The steps table: a row per step in the pipeline's order (finish
// last), ns per packet (a step run twice a packet counts twice), "–"
// where a path does not meet the step, then their sum, the profiled
// program and the unprofiled medians.
func TestStepsTable(t *testing.T) {
	s := &SpineResult{
		Costs: []ProgCost{{After: [3]float64{0, 500, 0}}, {After: [3]float64{0, 640, 0}}},
		Steps: []PathSteps{
			{Path: "l2_remote (x)", Profile: dataplane.Profile{Programs: 10, WholeNS: 600, ClockNS: 30, Steps: []dataplane.StepTime{
				{Step: "port_sec", Runs: 10, MeanNS: 100}, {Step: "finish", Runs: 10, MeanNS: 200}}}, ProfiledNS: 800},
			{Path: "l3_remote (y)", Profile: dataplane.Profile{Programs: 10, WholeNS: 700, ClockNS: 20, Steps: []dataplane.StepTime{
				{Step: "finish", Runs: 10, MeanNS: 210}, {Step: "port_sec", Runs: 10, MeanNS: 110}, {Step: "ip_route", Runs: 20, MeanNS: 50}}}, ProfiledNS: 900},
		},
	}
	var b strings.Builder
	s.stepsMarkdown(&b)
	got := b.String()
	for _, want := range []string{
		"(30 / 20 ns)",
		"| step | l2_remote | l3_remote |\n|---|---|---|\n| port_sec | 100 | 110 |\n| ip_route | – | 100 |\n| finish | 200 | 210 |\n",
		"| the steps' sum | 300 | 420 |\n| the program, profiled (the kernel's median) | 800 | 900 |\n| the program, unprofiled (the kernel's median, above) | 500 | 640 |\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the table lacks %q:\n%s", want, got)
		}
	}
}

// The costs table gives each path's builds and their ratio, warm and
// with the caches cold.
func TestSpineCostsTable(t *testing.T) {
	s := &SpineResult{Baseline: "abc1234", Rounds: 3, Costs: []ProgCost{{Path: "l2_remote (x)",
		Before: [3]float64{900, 950, 990}, After: [3]float64{560, 570, 600}, Ratio: 0.6,
		BeforeCold: [3]float64{1100, 1200, 1300}, AfterCold: [3]float64{860, 880, 960}, RatioCold: 0.733}}}
	var b strings.Builder
	s.markdown(&b)
	want := "| before, caches cold (1024 KiB of lines dirtied between runs) | after, cold | after/before, cold |\n|---|---|---|---|---|---|---|\n" +
		"| l2_remote (x) | 900/950/990 | 560/570/600 | 0.600 | 1100/1200/1300 | 860/880/960 | 0.733 |\n"
	if !strings.Contains(b.String(), want) {
		t.Errorf("the table lacks %q:\n%s", want, b.String())
	}
}
