package northd

import (
	"fmt"
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

// vxnetFlows are the flows of one accepted vxnet.
func vxnetFlows(vpc *cVPC, vx *cVxnet) []flow {
	var b flowBuilder
	cidr, gw, gwMAC := vx.cidr.String(), vx.gw.String(), vpc.gwMAC

	b.add(pipeline.PortSec, 100, "inport.security && eth.src != inport.mac", "drop(spoof_mac);")
	b.add(pipeline.PortSec, 100, "inport.security && arp && (arp.sha != inport.mac || arp.spa != inport.addrs)", "drop(spoof_ip);")
	b.add(pipeline.PortSec, 100, "inport.security && ip4 && ip4.src != inport.addrs", "drop(spoof_ip);")
	b.add(pipeline.PortSec, 90, "!arp && !ip4", "drop(unsupported_proto);")
	b.add(pipeline.PortSec, 0, "1", "next;")

	b.add(pipeline.ARPRsp, 110, "arp.op == 1 && arp.tpa == "+gw, "arp_reply("+gwMAC+");")
	b.add(pipeline.ARPRsp, 100, "arp.op == 1 && arp.tpa == "+cidr+" && dst.known", "arp_reply(dst.mac);")
	b.add(pipeline.ARPRsp, 90, "arp.op == 1 && arp.tpa == "+cidr, "hub;")
	b.add(pipeline.ARPRsp, 80, "arp", "drop(arp_unanswered);")
	b.add(pipeline.ARPRsp, 0, "1", "next;")

	b.add(pipeline.L2Lookup, 110, "eth.dst == "+gwMAC+" && ip4.dst == "+gw+" && icmp4.type == 8", "icmp_reply;")
	b.add(pipeline.L2Lookup, 100, "eth.dst == "+gwMAC, "next;")
	b.add(pipeline.L2Lookup, 90, "ip4.dst == "+cidr+" && dst.known", "output;")
	b.add(pipeline.L2Lookup, 80, "ip4.dst == "+cidr, "hub;")
	b.add(pipeline.L2Lookup, 0, "1", "drop(l2_unknown_dst);")
	return b.sorted()
}

// vpcFlows are the flows of a VPC's routing datapath.
func vpcFlows(t *topology, vpc *cVPC) []flow {
	var b flowBuilder
	b.add(pipeline.IPRoute, 65000, "ip.ttl <= 1", "drop(ttl_exceeded);")
	for _, u := range vpc.vxnets {
		vx := t.vxnets[u]
		b.add(pipeline.IPRoute, 2*vx.cidr.Bits()+1, "ip4.dst == "+vx.cidr.String(),
			fmt.Sprintf("ttl_dec; eth.src = %s; route(vni=%d);", vpc.gwMAC, vx.vni))
	}
	for _, r := range vpc.routes {
		b.add(pipeline.IPRoute, 2*r.prefix.Bits(), "ip4.dst == "+r.prefix.String(),
			fmt.Sprintf("ttl_dec; eth.src = %s; route(nexthop=%s, vni=%d);", vpc.gwMAC, r.nexthop, r.vni))
	}
	b.add(pipeline.IPRoute, 0, "1", "drop(no_route);")

	b.add(pipeline.DstLookup, 100, "dst.local", "output;")
	b.add(pipeline.DstLookup, 50, "dst.known", "output;")
	b.add(pipeline.DstLookup, 0, "1", "hub;")
	return b.sorted()
}

// flowTable holds the desired flows per datapath name.
type flowTable struct {
	byDP    map[string][]flow
	changed map[string]bool // tracked: datapath names
}

func newFlowTable() *flowTable {
	return &flowTable{byDP: map[string][]flow{}, changed: map[string]bool{}}
}

func (ft *flowTable) clearTracked() { ft.changed = map[string]bool{} }

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
	for _, u := range vpc.vxnets {
		vx := t.vxnets[u]
		ft.byDP[vxnetDP(vx.name)] = vxnetFlows(vpc, vx)
		ft.changed[vxnetDP(vx.name)] = true
	}
}

// update regenerates what the topology's tracked changes touch.
func (ft *flowTable) update(prev, t *topology) {
	vpcs := map[string]bool{}
	for u := range t.changedVPCs {
		vpcs[u] = true
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
