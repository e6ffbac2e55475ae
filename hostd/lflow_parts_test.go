package hostd

import (
	"fmt"
	"maps"
	"math/rand"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/courier-sdn/courier/dataplane"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// Compiling part by part, through any sequence of flows added, removed,
// changed or moved and datapaths coming and going, gives what compiling
// every flow afresh gives; and a change compiles again only its parts.
func TestPartsEqualFull(t *testing.T) {
	files, _ := filepath.Glob("testdata/lflows/*.flows")
	if len(files) < 4 {
		t.Fatalf("%d flow files in testdata/lflows", len(files))
	}
	for seed := int64(1); seed <= 20; seed++ {
		r := rand.New(rand.NewSource(seed))
		in := files[r.Intn(len(files))]
		all := map[string]*sbdb.LogicalFlow{}
		for i, f := range readFlows(t, in) {
			f.UUID = fmt.Sprintf("f%d", i)
			all[f.UUID] = f
		}
		dps := maps.Clone(goldenDPs)
		fp := newFlowParts(1)
		fp.reset(slices.Collect(maps.Values(all)))
		check := func(step int, fc *flowConfig) {
			t.Helper()
			want := compileFlows(1, slices.Collect(maps.Values(all)), dps, nil)
			if got, w := render(fc), render(want); got != w {
				t.Fatalf("seed %d (%s) step %d: parts give\n%s\nall flows give\n%s", seed, in, step, got, w)
			}
			// rules in any order: the data plane puts them in its own
			g1, e1 := fc.groups(1, dps)
			g2, e2 := want.groups(1, dps)
			for _, g := range []*dataplane.SGVPC{g1, g2} {
				if g != nil {
					slices.SortFunc(g.Rules, func(a, b dataplane.SGRule) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
				}
			}
			if !reflect.DeepEqual(g1, g2) || !reflect.DeepEqual(e1, e2) {
				t.Fatalf("seed %d step %d: groups %+v %v, want %+v %v", seed, step, g1, e1, g2, e2)
			}
		}
		check(0, fp.compile(dps))
		for step := 1; step <= 60; step++ {
			ch := ops.Changes{Tables: map[string]map[string]*ops.Change{}}
			had := maps.Clone(dps)
			for range 1 + r.Intn(3) {
				randomFlowChange(r, all, dps, ch)
			}
			before, flowsBefore := fp.compiles, fp.flowCompiles
			fp.apply(ch)
			check(step, fp.compile(dps))
			if dirty := len(ch.Table(sbdb.LogicalFlowTable))*2 + len(ch.Table(sbdb.DatapathTable))*len(fp.parts); fp.compiles-before > dirty {
				t.Fatalf("seed %d step %d: %d parts compiled for %d changes", seed, step, fp.compiles-before, dirty)
			}
			// Within a part, only flows that changed compile again
			// (a changed datapath: all of its flows).
			if n, lfs := fp.flowCompiles-flowsBefore, len(ch.Table(sbdb.LogicalFlowTable)); !dpCame(had, dps) && n > lfs {
				t.Fatalf("seed %d step %d: %d flows compiled for %d flow changes", seed, step, n, lfs)
			}
		}
	}
}

// randomFlowChange changes all (a flow removed, added, its match or
// actions changed, moved to another datapath) or dps (a datapath gone or
// back), and records it in ch as the tracker would.
func randomFlowChange(r *rand.Rand, all map[string]*sbdb.LogicalFlow, dps map[string]*sbdb.Datapath, ch ops.Changes) {
	put := func(table, u string, m any) {
		if ch.Tables[table] == nil {
			ch.Tables[table] = map[string]*ops.Change{}
		}
		c := &ops.Change{UUID: u}
		if m != nil {
			c.New = m.(interface{ GetUUID() string })
		}
		ch.Tables[table][u] = c
	}
	uuids := slices.Sorted(maps.Keys(all))
	pick := all[uuids[r.Intn(len(uuids))]]
	switch k := r.Intn(11); {
	case k < 3 && len(all) > 1:
		delete(all, pick.UUID)
		put(sbdb.LogicalFlowTable, pick.UUID, nil)
	case k < 5: // a copy under a new UUID, perhaps on another datapath
		f := *pick
		f.UUID = fmt.Sprintf("n%d", r.Int63())
		f.Datapath = []string{"vpc:a", "vxnet:x", "vxnet:y", "nowhere"}[r.Intn(4)]
		all[f.UUID] = &f
		put(sbdb.LogicalFlowTable, f.UUID, &f)
	case k < 7:
		f := *pick
		if r.Intn(2) == 0 {
			f.Match = "(" + f.Match + ")"
		} else {
			f.Actions = "drop;"
		}
		all[f.UUID] = &f
		put(sbdb.LogicalFlowTable, f.UUID, &f)
	case k < 8:
		f := *pick
		f.Stage = []sbdb.LogicalFlowStage{"sg_ingress", "port_sec", "nosuch"}[r.Intn(3)]
		all[f.UUID] = &f
		put(sbdb.LogicalFlowTable, f.UUID, &f)
	case k < 9 && dps["vpc:a"] != nil: // the VPC's identities change (a port joined a group)
		dp := *dps["vpc:a"]
		dp.SecurityIdentities = map[string]string{"1": "default", fmt.Sprint(2 + r.Intn(5)): []string{"web", "db,web"}[r.Intn(2)]}
		dps["vpc:a"] = &dp
		put(sbdb.DatapathTable, "vpc:a", &dp)
	default: // a datapath goes, or comes back
		name := []string{"vpc:a", "vxnet:x", "vxnet:y"}[r.Intn(3)]
		if dps[name] != nil {
			delete(dps, name)
			put(sbdb.DatapathTable, name, nil)
		} else {
			dps[name] = goldenDPs[name]
			put(sbdb.DatapathTable, name, goldenDPs[name])
		}
	}
}

// takeSnapshot reads a VPC's datapaths, then drains its tracker: a
// datapath changed in between reaches compiled in ch while dps still
// holds the old row. The parts it makes dirty are compiled from that old
// row, and nothing makes them dirty again: the next call, with the new
// row and no change, must still give what the new row compiles to.
func TestCompiledFollowsDatapathsReadBeforeTheirChange(t *testing.T) {
	var flows []*sbdb.LogicalFlow
	for i, f := range readFlows(t, "testdata/lflows/northd.flows") {
		f.UUID = fmt.Sprintf("f%d", i)
		flows = append(flows, f)
	}
	dps := maps.Clone(goldenDPs)
	vs := &vpcSession{vpc: 1, parts: newFlowParts(1)}
	vs.parts.reset(flows)
	vs.flows = vs.parts.compile(dps)

	x := *goldenDPs["vxnet:x"]
	x.GatewayIP, x.Cidr = str("10.0.9.1"), str("10.0.9.0/24")
	now := maps.Clone(dps)
	now["vxnet:x"] = &x
	ch := ops.Changes{Tables: map[string]map[string]*ops.Change{sbdb.DatapathTable: {"vxnet:x": {UUID: "vxnet:x", Old: dps["vxnet:x"], New: &x}}}}
	vs.compiled(dps, ch) // the rows read before the change, the change drained after it
	got := vs.compiled(now, ops.Changes{})
	want := compileFlows(1, flows, now, nil)
	if render(want) == render(compileFlows(1, flows, dps, nil)) {
		t.Fatal("the datapath change changes nothing compiled: the test tests nothing")
	}
	if g, w := render(got), render(want); g != w {
		t.Fatalf("compiled from the datapath's old row:\n%s\nwant\n%s", g, w)
	}
}

// dpCame says whether a datapath came or went between had and now (a
// change to its identities alone compiles no flow again).
func dpCame(had, now map[string]*sbdb.Datapath) bool {
	for _, name := range []string{"vpc:a", "vxnet:x", "vxnet:y"} {
		if (had[name] == nil) != (now[name] == nil) {
			return true
		}
	}
	return false
}

// A flow read from the session's rows before its insert was delivered,
// then inserted and deleted within one batch of the VPC's tracker, is
// forgotten (newVPCTracker).
func TestPartsForgetABriefFlowAlreadyRead(t *testing.T) {
	f := &sbdb.LogicalFlow{UUID: "f1", Datapath: "dp-router", Stage: "ip_route", Priority: 24,
		Match: "ip4.dst == 10.1.3.0/24", Actions: "route(vni=103);"}
	fp := newFlowParts(1)
	fp.reset([]*sbdb.LogicalFlow{f})
	tr := newVPCTracker(make(chan struct{}, 1))
	tr.OnAdd(sbdb.LogicalFlowTable, f)
	tr.OnDelete(sbdb.LogicalFlowTable, f)
	if !fp.apply(tr.Drain()) || len(fp.partOf) != 0 || len(fp.parts) != 0 {
		t.Errorf("the flow inserted and deleted is kept: %v", fp.partOf)
	}
}
