package northd

import (
	"path/filepath"
	"runtime"
	"sort"
	"strconv"

	"github.com/courier-sdn/courier/pipeline"
)

// Logical flows describe each datapath's policy in the pipeline's stages;
// facts about ports stay in Port_Binding and appear in flows only as
// symbols (inport.mac, dst.known), so a vxnet has the same handful of flows
// whether it holds one port or sixty thousand.

type flow struct {
	stage    string
	priority int
	match    string
	actions  string
	source   string // file:line of the code that built it
}

func (f flow) key() flowKey { return flowKey{f.stage, f.priority, f.match} }

type flowKey struct {
	stage    string
	priority int
	match    string
}

type flowBuilder struct{ flows []flow }

// add appends a flow stamped with the caller's source line.
func (b *flowBuilder) add(stage, priority int, match, actions string) {
	_, file, line, _ := runtime.Caller(1)
	b.flows = append(b.flows, flow{stage: pipeline.Stages[stage].Name, priority: priority,
		match: match, actions: actions, source: filepath.Base(file) + ":" + strconv.Itoa(line)})
}

func (b *flowBuilder) sorted() []flow {
	sort.Slice(b.flows, func(i, j int) bool {
		a, c := b.flows[i], b.flows[j]
		if a.stage != c.stage {
			sa, _ := pipeline.ByName(a.stage)
			sc, _ := pipeline.ByName(c.stage)
			return sa.ID < sc.ID
		}
		if a.priority != c.priority {
			return a.priority > c.priority
		}
		return a.match < c.match
	})
	return b.flows
}

// Datapath names in the southbound.
func vpcDP(name string) string   { return "vpc:" + name }
func vxnetDP(name string) string { return "vxnet:" + name }

// scope is what a stage's flow builder is given: the VPC, and for a
// vxnet stage the vxnet.
type scope struct {
	t   *topology
	vpc *cVPC
	vx  *cVxnet // nil for a VPC stage
}

// stageFlows builds each stage's flows, one file each (stage_NAME.go). A
// test checks every stage of pipeline.Stages has one.
var stageFlows = map[int]func(b *flowBuilder, s scope){
	pipeline.PortSec:   portSecFlows,
	pipeline.ARPRsp:    arpRspFlows,
	pipeline.L2Lookup:  l2LookupFlows,
	pipeline.IPRoute:   ipRouteFlows,
	pipeline.DstLookup: dstLookupFlows,
	pipeline.ToHub:     toHubFlows,
	pipeline.TunAdmit:  tunAdmitFlows,
	pipeline.TunLearn:  tunLearnFlows,
	pipeline.TunARP:    tunARPFlows,
	pipeline.TunLookup: tunLookupFlows,
	pipeline.DHCP:      dhcpFlows,
	pipeline.ICMPErr:   icmpErrFlows,
	pipeline.SGEgress:  sgEgressFlows,
	pipeline.SGIngress: sgIngressFlows,
	pipeline.EIPIn:     eipInFlows,
	pipeline.EIPOut:    eipOutFlows,
}

// datapathFlows are the flows of one datapath: those of every stage that
// runs on its type.
func datapathFlows(dpType string, s scope) []flow {
	var b flowBuilder
	for _, st := range pipeline.Stages {
		if st.Datapath == dpType {
			stageFlows[st.ID](&b, s)
		}
	}
	return b.sorted()
}

// vxnetFlows are the flows of one accepted vxnet.
func vxnetFlows(t *topology, vpc *cVPC, vx *cVxnet) []flow {
	return datapathFlows(pipeline.DPVxnet, scope{t: t, vpc: vpc, vx: vx})
}

// vpcFlows are the flows of a VPC's routing datapath.
func vpcFlows(t *topology, vpc *cVPC) []flow {
	return datapathFlows(pipeline.DPVPC, scope{t: t, vpc: vpc})
}

// flowTable holds the desired flows per datapath name.
type flowTable struct {
	byDP map[string][]flow
	// tracked: datapath names, and for some of them the only stages
	// whose flows changed (absent: any may have)
	changed       map[string]bool
	changedStages map[string]map[string]bool
}

func newFlowTable() *flowTable {
	return &flowTable{byDP: map[string][]flow{}, changed: map[string]bool{}, changedStages: map[string]map[string]bool{}}
}

func (ft *flowTable) clearTracked() {
	ft.changed, ft.changedStages = map[string]bool{}, map[string]map[string]bool{}
}

// sgStages are the stages a VPC's security groups compile into.
var sgStages = []int{pipeline.SGEgress, pipeline.SGIngress}

// compileFlows regenerates the flows of every datapath.
func compileFlows(t *topology) *flowTable {
	ft := newFlowTable()
	for _, vpc := range t.vpcs {
		ft.setVPC(t, vpc)
	}
	return ft
}

// setVPC regenerates a VPC's flows and those of its vxnets.
func (ft *flowTable) setVPC(t *topology, vpc *cVPC) {
	ft.byDP[vpcDP(vpc.name)] = vpcFlows(t, vpc)
	ft.changed[vpcDP(vpc.name)] = true
	delete(ft.changedStages, vpcDP(vpc.name))
	for _, u := range vpc.vxnets {
		vx := t.vxnets[u]
		ft.byDP[vxnetDP(vx.name)] = vxnetFlows(t, vpc, vx)
		ft.changed[vxnetDP(vx.name)] = true
	}
}

// update regenerates what the topology's tracked changes touch.
func (ft *flowTable) update(prev, t *topology) {
	vpcs := map[string]bool{}
	for u := range t.changedVPCs {
		if !t.groupsOnlyVPCs[u] {
			vpcs[u] = true
		}
	}
	for u := range t.changedVxnets {
		if cv := t.vxnets[u]; cv != nil {
			vpcs[cv.vpc] = true
		} else if pv := prev.vxnets[u]; pv != nil {
			vpcs[pv.vpc] = true
		}
		for _, tt := range []*topology{prev, t} {
			if cv := tt.vxnets[u]; cv != nil {
				delete(ft.byDP, vxnetDP(cv.name))
				ft.changed[vxnetDP(cv.name)] = true
			}
		}
	}
	for u := range t.changedRoutes {
		if r := t.routes[u]; r != nil {
			vpcs[r.vpc] = true
		} else if r := prev.routes[u]; r != nil {
			vpcs[r.vpc] = true
		}
	}
	for u := range t.groupsOnlyVPCs {
		if !vpcs[u] {
			ft.setGroups(t, t.vpcs[u])
		}
	}
	for u := range vpcs {
		if old := prev.vpcs[u]; old != nil {
			delete(ft.byDP, vpcDP(old.name))
			ft.changed[vpcDP(old.name)] = true
			for _, vu := range old.vxnets {
				if cv := prev.vxnets[vu]; cv != nil {
					delete(ft.byDP, vxnetDP(cv.name))
					ft.changed[vxnetDP(cv.name)] = true
				}
			}
		}
		if vpc := t.vpcs[u]; vpc != nil {
			ft.setVPC(t, vpc)
		}
	}
}

// setGroups regenerates only the sg stages' flows of a VPC whose security
// groups alone changed: a rule change costs its VPC's rules, not the
// VPC's and vxnets' every flow (nor comparing them all with the
// southbound). Each stage's new flows take the place of its old ones, so
// the datapath's flows stay in order.
func (ft *flowTable) setGroups(t *topology, vpc *cVPC) {
	name := vpcDP(vpc.name)
	fresh := map[string][]flow{}
	for _, st := range sgStages {
		var b flowBuilder
		stageFlows[st](&b, scope{t: t, vpc: vpc})
		fresh[pipeline.Stages[st].Name] = b.sorted()
	}
	out := make([]flow, 0, len(ft.byDP[name]))
	for _, f := range ft.byDP[name] {
		fs, ok := fresh[f.stage]
		if !ok {
			out = append(out, f)
		} else if fs != nil {
			out, fresh[f.stage] = append(out, fs...), nil
		}
	}
	stages, missing := map[string]bool{}, false
	for st, fs := range fresh {
		stages[st] = true
		if fs != nil { // a stage that had no flows: order them all again
			out, missing = append(out, fs...), true
		}
	}
	if missing {
		out = (&flowBuilder{flows: out}).sorted()
	}
	ft.byDP[name] = out
	ft.changed[name], ft.changedStages[name] = true, stages
}

// HasFlowBuilder says whether a stage has its flow builder (the spine
// test, pipeline/spine_test.go).
func HasFlowBuilder(stage int) bool { return stageFlows[stage] != nil }
