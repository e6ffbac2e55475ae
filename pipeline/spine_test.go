package pipeline_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/courier-sdn/courier/dataplane"
	"github.com/courier-sdn/courier/hostd"
	"github.com/courier-sdn/courier/northd"
	"github.com/courier-sdn/courier/pipeline"
	"github.com/courier-sdn/courier/tools/trace"
)

// One stage, one spine: every stage has the northd code that builds its
// flows, the hostd compiler that turns them into map entries, the C
// function that runs it, and the words courier-trace prints for its
// record. A stage added to pipeline.Stages without one of them fails
// here (a missing C function already fails to compile: dispatch.h calls
// it by name).
func TestEveryStageHasItsFourParts(t *testing.T) {
	fns, err := dataplane.StageFunctions()
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range pipeline.Stages {
		if !northd.HasFlowBuilder(st.ID) {
			t.Errorf("stage %s: no flow builder in northd (stageFlows)", st.Name)
		}
		if !hostd.HasCompiler(st.ID) {
			t.Errorf("stage %s: no compiler in hostd (stageCompilers)", st.Name)
		}
		if !slices.Contains(fns, "stage_"+st.Name) {
			t.Errorf("stage %s: no C function stage_%s in the programs", st.Name, st.Name)
		}
		if !trace.HasDescriber(st.ID) {
			t.Errorf("stage %s: no trace describer in courier-trace", st.Name)
		}
	}
	if len(fns) != len(pipeline.Stages) {
		t.Errorf("the programs have %d stage functions %v for %d stages", len(fns), fns, len(pipeline.Stages))
	}
}

// Flags, verdicts, hits and trace flags are numbered without collision.
func TestNumbersAreDistinct(t *testing.T) {
	seen := map[string]bool{}
	for _, f := range pipeline.Flags {
		k := fmt.Sprintf("%s/%#x", f.Scope, f.Bit)
		if seen[k] || f.Bit == 0 || f.Bit&(f.Bit-1) != 0 {
			t.Errorf("flag %s: bit %#x is not a distinct single bit", f.Name, f.Bit)
		}
		seen[k] = true
		if pipeline.Stages[f.Stage].Datapath != f.Scope {
			t.Errorf("flag %s of %s datapaths belongs to stage %s, which runs on %s", f.Name, f.Scope, pipeline.Stages[f.Stage].Name,
				pipeline.Stages[f.Stage].Datapath)
		}
	}
	for i, s := range pipeline.Stages {
		if s.ID != i {
			t.Errorf("stage %s has number %d at position %d", s.Name, s.ID, i)
		}
	}
}
