package engine

import "testing"

// A sum over a changing set: the handler and the recompute must agree, and
// the stats must say which path ran.
func TestHandlerAndRecompute(t *testing.T) {
	values := map[string]int{"a": 1, "b": 2}
	var changed []string
	in := NewNode("in", func() {}, func() { changed = nil })
	sum := 0
	var sumNode *Node
	sumNode = NewNode("sum", func() {
		sum = 0
		for _, v := range values {
			sum += v
		}
	}, nil)
	prev := map[string]int{"a": 1, "b": 2}
	sumNode.AddInput(in, func() bool {
		for _, k := range changed {
			if k == "reset" {
				return false
			}
			sum += values[k] - prev[k]
			prev[k] = values[k]
		}
		sumNode.SetUpdated()
		return true
	})
	e, err := New(in, sumNode)
	if err != nil {
		t.Fatal(err)
	}
	e.Run(true)
	if sum != 3 || e.Stats()["sum"].Recompute != 1 {
		t.Fatalf("first run: sum %d stats %+v", sum, e.Stats())
	}
	e.Clear()

	values["a"] = 10
	changed = []string{"a"}
	in.SetUpdated()
	in.run = func() { in.updated = true }
	e.Run(false)
	if sum != 12 || e.Stats()["sum"].Compute != 1 || e.Stats()["sum"].Recompute != 1 {
		t.Fatalf("incremental: sum %d stats %+v", sum, e.Stats()["sum"])
	}
	e.Clear()

	changed = []string{"reset"}
	e.Run(false)
	if sum != 12 || e.Stats()["sum"].Recompute != 2 {
		t.Fatalf("fallback: sum %d stats %+v", sum, e.Stats()["sum"])
	}
}

func TestOrderChecked(t *testing.T) {
	a := NewNode("a", func() {}, nil)
	b := NewNode("b", func() {}, nil)
	b.AddInput(a, nil)
	if _, err := New(b, a); err == nil {
		t.Fatal("inputs after their users were accepted")
	}
}
