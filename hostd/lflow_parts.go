package hostd

import (
	"cmp"
	"maps"
	"reflect"
	"slices"

	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/pipeline"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// Compiling a VPC's flows part by part. A part is one datapath's flows of
// one stage; what a part asks of the data plane depends only on its flows
// and its datapath, so when a few flows change hostd compiles again only
// their parts, and merges every part's result (flags are or-ed, rows
// appended: cheap). A security group rule added to a VPC of 256 vxnets
// thus compiles its VPC's sg stage, not the VPC's 9,700 flows. Each part
// keeps its own parse cache, so a part compiled again parses only its
// flows that changed. TestPartsEqualFull checks that any sequence of
// changes compiles to what compiling every flow afresh gives.

// flowPart names a part: a datapath's UUID and a stage's name, as the
// flows spell them (an unknown stage or datapath is a part too, whose
// flows are reported as errors).
type flowPart struct{ dp, stage string }

type partState struct {
	flows map[string]*sbdb.LogicalFlow // by UUID
	cache *flowCache
	fc    *flowConfig // compiled; nil when dirty
	// each flow's own result, and the flow and datapath rows it was
	// compiled from: a part compiled again compiles only its flows that
	// changed (a rule added to a group of 1,000 compiles one flow) and
	// merges the rest; order is the flows' UUIDs in order, kept until a
	// flow comes or goes
	memo  map[string]flowMemo
	order []string
	// the epoch of its datapath's row that fc was compiled with: the
	// rows compile is given may be older than the changes apply was
	// given (takeSnapshot reads them before it drains the tracker), so a
	// part compiled with a row since replaced is compiled again
	epoch uint64
}

// flowParts is a VPC's flows by part, and each part's compiled result.
type flowMemo struct {
	flow  *sbdb.LogicalFlow
	epoch uint64 // its datapath row's
	fc    *flowConfig
}

type flowParts struct {
	vpc    int
	parts  map[flowPart]*partState
	partOf map[string]flowPart // flow UUID -> its part
	// compiles counts parts compiled, flowCompiles flows, for tests.
	compiles, flowCompiles int
	// the datapath rows of the last compile, and each datapath's epoch:
	// it moves on when a row comes, goes, or differs in what flows
	// compile from (sameForFlows), compared once per datapath and
	// compile, not once per part or flow
	dps   map[string]*sbdb.Datapath
	epoch map[string]uint64
	// keys is the parts in order, kept until a part comes or goes
	keys []flowPart
}

func newFlowParts(vpc int) *flowParts {
	return &flowParts{vpc: vpc, parts: map[flowPart]*partState{}, partOf: map[string]flowPart{}, epoch: map[string]uint64{}}
}

func partOfFlow(f *sbdb.LogicalFlow) flowPart { return flowPart{f.Datapath, string(f.Stage)} }

// put adds or replaces a flow; del removes one. Both leave its parts
// dirty.
func (fp *flowParts) put(f *sbdb.LogicalFlow) {
	fp.del(f.UUID)
	p := partOfFlow(f)
	ps := fp.parts[p]
	if ps == nil {
		ps = &partState{flows: map[string]*sbdb.LogicalFlow{}, cache: newFlowCache(), memo: map[string]flowMemo{}}
		fp.parts[p], fp.keys = ps, nil
	}
	if _, ok := ps.flows[f.UUID]; !ok {
		ps.order = nil
	}
	ps.flows[f.UUID], ps.fc = f, nil
	fp.partOf[f.UUID] = p
}

func (fp *flowParts) del(uuid string) {
	p, ok := fp.partOf[uuid]
	if !ok {
		return
	}
	delete(fp.partOf, uuid)
	ps := fp.parts[p]
	delete(ps.flows, uuid)
	delete(ps.memo, uuid)
	ps.fc, ps.order = nil, nil
	if len(ps.flows) == 0 {
		delete(fp.parts, p)
		fp.keys = nil
	}
}

// reset replaces every flow.
func (fp *flowParts) reset(flows []*sbdb.LogicalFlow) {
	old := fp.parts
	fp.parts, fp.partOf, fp.keys = map[flowPart]*partState{}, map[string]flowPart{}, nil
	for _, f := range flows {
		fp.put(f)
	}
	for p, ps := range fp.parts {
		if o := old[p]; o != nil {
			ps.cache, ps.memo = o.cache, o.memo // parsed texts and results stay useful
		}
	}
}

// apply folds in a batch of changes: flows put or deleted, and the
// parts of datapaths that changed made dirty. It says whether anything
// changed.
func (fp *flowParts) apply(ch ops.Changes) bool {
	lfs, dps := ch.Table(sbdb.LogicalFlowTable), ch.Table(sbdb.DatapathTable)
	for u, c := range lfs {
		if c.New == nil {
			fp.del(u)
		} else {
			fp.put(c.New.(*sbdb.LogicalFlow))
		}
	}
	if len(dps) > 0 {
		for p, ps := range fp.parts {
			if dps[p.dp] != nil {
				ps.fc = nil
			}
		}
	}
	return len(lfs)+len(dps) > 0
}

// newDPs says whether dps are not the rows the last compile was given
// (a row is replaced, never changed in place, in libovsdb's cache).
func (fp *flowParts) newDPs(dps map[string]*sbdb.Datapath) bool {
	if len(dps) != len(fp.dps) {
		return true
	}
	for u, dp := range dps {
		if fp.dps[u] != dp {
			return true
		}
	}
	return false
}

// compile compiles the dirty parts, and those whose datapath row is not
// the one they were compiled with, and merges them all.
func (fp *flowParts) compile(dps map[string]*sbdb.Datapath) *flowConfig {
	for u, dp := range dps {
		if !sameForFlows(fp.dps[u], dp) {
			fp.epoch[u]++
		}
	}
	for u := range fp.dps {
		if dps[u] == nil {
			fp.epoch[u]++
		}
	}
	fp.dps = maps.Clone(dps)
	seen := make(map[string]map[int]bool, len(dps)) // datapath UUID -> stages with flows
	if fp.keys == nil {
		fp.keys = slices.SortedFunc(maps.Keys(fp.parts), func(a, b flowPart) int {
			return cmp.Or(cmp.Compare(a.dp, b.dp), cmp.Compare(a.stage, b.stage))
		})
	}
	out := &flowConfig{vxFlags: make(map[string]uint32, len(dps)), dhcp: map[string]pipeline.DHCPReply{}}
	for _, p := range fp.keys {
		ps := fp.parts[p]
		if ps.fc == nil || ps.epoch != fp.epoch[p.dp] {
			var n int
			ps.epoch = fp.epoch[p.dp]
			ps.fc, n = compilePart(fp.vpc, ps, dps, ps.epoch)
			fp.compiles++
			fp.flowCompiles += n
		}
		if st, ok := pipeline.ByName(p.stage); ok && dps[p.dp] != nil {
			if seen[p.dp] == nil {
				seen[p.dp] = map[int]bool{}
			}
			seen[p.dp][st.ID] = true
		}
		out.merge(ps.fc)
	}
	out.defaults(dps, seen)
	return out
}

// compilePart compiles one part's flows, in UUID order: each flow whose
// row or datapath row changed since it was last compiled, and the
// others' results as they were.
func compilePart(vpc int, ps *partState, dps map[string]*sbdb.Datapath, epoch uint64) (*flowConfig, int) {
	fc, n := newFlowConfig(), 0
	if ps.order == nil {
		ps.order = slices.Sorted(maps.Keys(ps.flows))
	}
	for _, u := range ps.order {
		f := ps.flows[u]
		m, ok := ps.memo[u]
		if !ok || m.flow != f || m.epoch != epoch {
			m = flowMemo{flow: f, epoch: epoch, fc: &flowConfig{}}
			m.fc.addFlow(vpc, f, dps, ps.cache)
			ps.memo[u] = m
			n++
		}
		fc.merge(m.fc)
	}
	// The parse cache keeps texts flows no longer have until they are
	// as many as the part's flows, then forgets them.
	if len(ps.cache.matches)+len(ps.cache.actions) > 4*len(ps.flows)+16 {
		ps.cache.begin()
		for _, f := range ps.flows {
			ps.cache.keep(f.Match, f.Actions)
		}
		ps.cache.end()
	}
	return fc, n
}

// sameForFlows says whether a datapath's flows compile the same with
// either row: rows differ only in the VPC's table of identities, which
// only the groups read, after the merge (securityGroups). A port that
// joins or leaves a group changes that table, and must not make a host
// compile the VPC's every flow again.
func sameForFlows(a, b *sbdb.Datapath) bool {
	if a == b || a == nil || b == nil {
		return a == b
	}
	ca, cb := *a, *b
	ca.SecurityIdentities, cb.SecurityIdentities = nil, nil
	return reflect.DeepEqual(ca, cb)
}

// merge adds a part's result to fc.
func (fc *flowConfig) merge(p *flowConfig) {
	for u, f := range p.vxFlags {
		fc.vxFlags[u] |= f
	}
	fc.vpcFlags |= p.vpcFlags
	fc.routes = append(fc.routes, p.routes...)
	maps.Copy(fc.dhcp, p.dhcp)
	fc.sgRules = append(fc.sgRules, p.sgRules...)
	fc.errs = append(fc.errs, p.errs...)
}
