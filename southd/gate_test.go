package southd

import (
	"errors"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/model"

	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema/sbdb"
)

func changes(table string, old, new model.Model) ops.Changes {
	return ops.Changes{Tables: map[string]map[string]*ops.Change{table: {"u": {UUID: "u", Old: old, New: new}}}}
}

// A heartbeat is not worth a decision pass: an idle southd of a
// 64,000-port VPC spent 60% of a core on them. Anything else is.
func TestWorthDeciding(t *testing.T) {
	cp := func(beat, cfg int) *sbdb.ChassisPrivate {
		return &sbdb.ChassisPrivate{UUID: "u", Name: "hv1", Heartbeat: beat, NbCfg: cfg}
	}
	for _, c := range []struct {
		name string
		ch   ops.Changes
		want bool
	}{
		{"nothing", ops.Changes{}, false},
		{"a heartbeat", changes(sbdb.ChassisPrivateTable, cp(1, 7), cp(2, 7)), false},
		{"a heartbeat and an nb_cfg acknowledged", changes(sbdb.ChassisPrivateTable, cp(1, 7), cp(2, 8)), true},
		{"a chassis appears", changes(sbdb.ChassisPrivateTable, nil, cp(1, 7)), true},
		{"a chassis goes", changes(sbdb.ChassisPrivateTable, cp(1, 7), nil), true},
		{"a binding", changes(sbdb.PortBindingTable, nil, &sbdb.PortBinding{UUID: "u"}), true},
		{"events lost", ops.Changes{Overflow: true}, true},
	} {
		if got := worthDeciding(c.ch); got != c.want {
			t.Errorf("%s: worth deciding %v, want %v", c.name, got, c.want)
		}
	}
}

func TestPassGate(t *testing.T) {
	t0 := time.Unix(1000, 0)
	alive := map[string]bool{"hv1": true, "hv2": true}
	var g passGate
	if !g.due(t0, alive, true, safetyPass) {
		t.Fatal("the first pass is not due")
	}
	if !g.whole(t0, alive, true, fullPass) {
		t.Fatal("the first pass does not read everything")
	}
	g.done(t0, alive, true, true, nil)
	later := t0.Add(safetyPass / 2)
	if g.whole(later, alive, true, fullPass) {
		t.Fatal("a pass with nothing but changes reads everything")
	}
	for name, whole := range map[string]bool{
		"a chassis died":    g.whole(later, map[string]bool{"hv1": true, "hv2": false}, true, fullPass),
		"the lock was lost": g.whole(later, alive, false, fullPass),
		"time passed":       g.whole(t0.Add(fullPass), alive, true, fullPass),
	} {
		if !whole {
			t.Errorf("%s: the pass does not read everything", name)
		}
	}
	if g.due(later, map[string]bool{"hv1": true, "hv2": true}, true, safetyPass) {
		t.Fatal("a pass is due with nothing changed")
	}
	for name, due := range map[string]bool{
		"a chassis died":    g.due(later, map[string]bool{"hv1": true, "hv2": false}, true, safetyPass),
		"a chassis is new":  g.due(later, map[string]bool{"hv1": true, "hv2": true, "hv3": true}, true, safetyPass),
		"the lock was lost": g.due(later, alive, false, safetyPass),
		"time passed":       g.due(t0.Add(safetyPass), alive, true, safetyPass),
	} {
		if !due {
			t.Errorf("%s: no pass due", name)
		}
	}
	g.pending = true
	if !g.due(later, alive, true, safetyPass) {
		t.Error("a change is pending: no pass due")
	}
	g.done(later, alive, true, false, errors.New("refused"))
	if !g.due(later, alive, true, safetyPass) {
		t.Error("the last pass failed: no pass due")
	}
}
