package ops

import (
	"testing"

	"github.com/ovn-kubernetes/libovsdb/model"
)

type row struct{ UUID string }

func (r *row) GetUUID() string { return r.UUID }

// A row inserted and deleted within one batch is dropped, unless the
// batch keeps brief rows: then it is a delete of the inserted row, in the
// tracker and when batches merge.
func TestBriefRows(t *testing.T) {
	r := &row{UUID: "u"}
	insert := Changes{Tables: map[string]map[string]*Change{"T": {"u": {UUID: "u", New: r}}}}
	del := func(keep bool) Changes {
		return Changes{KeepBrief: keep, Tables: map[string]map[string]*Change{"T": {"u": {UUID: "u", Old: r}}}}
	}
	for _, keep := range []bool{false, true} {
		tr := NewTracker()
		tr.KeepBrief = keep
		tr.OnAdd("T", r)
		tr.OnDelete("T", r)
		c := tr.Drain()
		merged := Changes{}
		merged.Merge(insert)
		merged.Merge(del(keep))
		for name, got := range map[string]Changes{"tracker": c, "merge": merged} {
			ch := got.Table("T")["u"]
			if !keep && ch != nil {
				t.Errorf("%s: a brief row is kept: %+v", name, ch)
			}
			if keep && (ch == nil || ch.Old != model.Model(r) || ch.New != nil) {
				t.Errorf("%s: a brief row kept as %+v, want a delete of the inserted row", name, ch)
			}
		}
	}
}
