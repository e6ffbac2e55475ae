package hostd

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"github.com/courier-sdn/courier/dataplane"
	"github.com/courier-sdn/courier/pipeline"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// Compiling logical flows for the data plane. The DVR's stages are
// fixed-function: each implements a few behaviours, switched on per vxnet
// or VPC by flags (pipeline/flags.go), plus rows of its own tables (the
// routes of ip_route). Each stage has a compiler that recognises which
// behaviour a flow asks for, and turns it into those flags and rows; a
// flow this data plane does not implement is reported (log, metric,
// chassis status), never silently ignored. A datapath without any flow
// for a stage gets the stage's default flags: a northd older than the
// stage does not turn it off.

// flowConfig is what one VPC's logical flows ask of the data plane.
type flowConfig struct {
	vxFlags  map[string]uint32 // vxnet datapath UUID -> flags
	vpcFlags uint32
	routes   []dataplane.Route
	dhcp     map[string]pipeline.DHCPReply // vxnet datapath UUID -> what its DHCP answers say
	sgRules  []sgFlowRule                  // the VPC's security group rules (lflow_sg.go)
	errs     []string
	// The groups for the data plane, built once per compile: a
	// compile's flows and datapaths do not change (vpcSession.compiled
	// compiles again when they do), and every reconcile needs them.
	sg     *dataplane.SGVPC
	sgErrs []string
	sgDone bool
}

// lflow is one flow, parsed, with its datapath.
type lflow struct {
	vpc      int
	dp       *sbdb.Datapath
	match    pipeline.Expr
	acts     []pipeline.Action
	last     pipeline.Action // the deciding action
	reason   string          // the last action's first argument
	priority int
}

// stageCompiler turns one flow of its stage into flags and rows of fc.
type stageCompiler func(fc *flowConfig, f *lflow) error

// stageCompilers has one compiler per stage (a test checks every stage
// of pipeline.Stages has one).
var stageCompilers = map[int]stageCompiler{
	pipeline.PortSec:   compilePortSec,
	pipeline.ARPRsp:    compileARPRsp,
	pipeline.L2Lookup:  compileL2Lookup,
	pipeline.IPRoute:   compileIPRoute,
	pipeline.DstLookup: compileDstLookup,
	pipeline.ToHub:     compileToHub,
	pipeline.TunAdmit:  compileTunAdmit,
	pipeline.TunLearn:  compileTunLearn,
	pipeline.TunARP:    compileTunARP,
	pipeline.TunLookup: compileTunLookup,
	pipeline.DHCP:      compileDHCP,
	pipeline.ICMPErr:   compileICMPErr,
	pipeline.SGEgress:  compileSGEgress,
	pipeline.SGIngress: compileSGIngress,
	pipeline.EIPIn:     compileEIPIn,
	pipeline.EIPOut:    compileEIPOut,
}

var errNotImplemented = fmt.Errorf("not implemented by this data plane")

// compileFlows compiles a VPC's flows afresh (flowParts compiles them
// part by part, and must give the same).
func compileFlows(vpc int, flows []*sbdb.LogicalFlow, dps map[string]*sbdb.Datapath, cache *flowCache) *flowConfig {
	fc := newFlowConfig()
	cache.begin()
	defer cache.end()
	seen := map[string]map[int]bool{} // datapath UUID -> stages with flows
	for _, f := range flows {
		st, ok := pipeline.ByName(f.Stage)
		if ok && dps[f.Datapath] != nil {
			if seen[f.Datapath] == nil {
				seen[f.Datapath] = map[int]bool{}
			}
			seen[f.Datapath][st.ID] = true
		}
		fc.addFlow(vpc, f, dps, cache)
	}
	fc.defaults(dps, seen)
	return fc
}

func newFlowConfig() *flowConfig {
	return &flowConfig{vxFlags: map[string]uint32{}, dhcp: map[string]pipeline.DHCPReply{}}
}

// addFlow compiles one flow into fc, or records why it cannot.
func (fc *flowConfig) addFlow(vpc int, f *sbdb.LogicalFlow, dps map[string]*sbdb.Datapath, cache *flowCache) {
	st, ok := pipeline.ByName(f.Stage)
	if err := fc.add(vpc, st, ok, f, dps[f.Datapath], cache); err != nil {
		fc.errs = append(fc.errs, fmt.Sprintf("stage %s priority %d match (%s) actions (%s): %v",
			f.Stage, f.Priority, f.Match, f.Actions, err))
	}
}

// defaults gives each datapath's stages without any flow (seen) their
// default flags.
func (fc *flowConfig) defaults(dps map[string]*sbdb.Datapath, seen map[string]map[int]bool) {
	for u, dp := range dps {
		for _, st := range pipeline.Stages {
			if st.Datapath != dp.Type || seen[u][st.ID] {
				continue
			}
			if dp.Type == pipeline.DPVxnet {
				fc.vxFlags[u] |= pipeline.DefaultFlags(pipeline.DPVxnet, st.ID)
			} else {
				fc.vpcFlags |= pipeline.DefaultFlags(pipeline.DPVPC, st.ID)
			}
		}
	}
}

func (fc *flowConfig) add(vpc int, st pipeline.Stage, known bool, f *sbdb.LogicalFlow, dp *sbdb.Datapath, cache *flowCache) error {
	if dp == nil {
		return fmt.Errorf("unknown datapath %s", f.Datapath)
	}
	if !known {
		return fmt.Errorf("unknown stage")
	}
	if st.Datapath != dp.Type {
		return fmt.Errorf("stage %s runs on %s datapaths, not on %s", st.Name, st.Datapath, dp.Type)
	}
	m, acts, err := cache.parse(f.Match, f.Actions)
	if err != nil {
		return err
	}
	last := acts[len(acts)-1]
	reason, _ := last.Arg("")
	return stageCompilers[st.ID](fc, &lflow{vpc: vpc, dp: dp, match: m, acts: acts, last: last, reason: reason, priority: f.Priority})
}

// vx sets flags of the flow's vxnet, vpc of its VPC.
func (fc *flowConfig) vx(f *lflow, flags uint32) error {
	if fc.vxFlags == nil { // one flow's own result (flowParts) starts empty
		fc.vxFlags = map[string]uint32{}
	}
	fc.vxFlags[f.dp.UUID] |= flags
	return nil
}

func (fc *flowConfig) vpc(flags uint32) error {
	fc.vpcFlags |= flags
	return nil
}

// does: one of the flow's actions is name.
func (f *lflow) does(name string) bool {
	for _, a := range f.acts {
		if a.Name == name {
			return true
		}
	}
	return false
}

// is: the flow's deciding action is name (with reason, when given).
func (f *lflow) is(name string, reason ...string) bool {
	return f.last.Name == name && (len(reason) == 0 || f.reason == reason[0])
}

func compilePortSec(fc *flowConfig, f *lflow) error {
	if f.does("clamp_mss") {
		if !f.is("next") || !has(f.match, "tcp.syn") {
			return fmt.Errorf("clamp_mss: only of TCP SYNs, then next")
		}
		return fc.vx(f, pipeline.VxMSSClamp)
	}
	switch {
	case f.is("icmp_error", "oversize") && has(f.match, "pkt.too_big"):
		return nil // always: whether the VM is told is icmp_err's
	case f.is("drop", "spoof_mac"):
		return fc.vx(f, pipeline.VxPsecMAC)
	case f.is("drop", "spoof_ip"):
		return fc.vx(f, pipeline.VxPsecIP)
	case f.is("drop", "unsupported_proto"), f.is("next"):
		return nil // what the data plane always does
	}
	return errNotImplemented
}

func compileARPRsp(fc *flowConfig, f *lflow) error {
	switch {
	case f.is("arp_reply", "dst.mac"):
		return fc.vx(f, pipeline.VxARPProxy)
	case f.is("arp_reply"):
		tpa, ok := find(f.match, "arp.tpa")
		gw := f.dp.GatewayIP
		if !ok || tpa.Prefix.Bits() != 32 || gw == nil || tpa.Prefix.Addr().String() != *gw || f.reason != f.dp.GatewayMAC {
			return fmt.Errorf("only the gateway's own address and MAC can be answered statically")
		}
		return fc.vx(f, pipeline.VxARPGw)
	case f.is("hub"):
		return fc.vx(f, pipeline.VxARPMissHub)
	case f.is("drop", "arp_unanswered"), f.is("next"):
		return nil
	}
	return errNotImplemented
}

func compileL2Lookup(fc *flowConfig, f *lflow) error {
	switch {
	case f.is("dhcp"):
		return nil // DHCP requests always go to the dhcp stage

	case f.is("icmp_reply"):
		return fc.vx(f, pipeline.VxGwPing)
	case f.is("next"):
		if v, ok := find(f.match, "eth.dst"); ok && v.MAC == f.dp.GatewayMAC {
			return fc.vx(f, pipeline.VxL2Route)
		}
	case f.is("output"):
		return fc.vx(f, pipeline.VxL2Output)
	case f.is("hub"):
		return fc.vx(f, pipeline.VxL2MissHub)
	case f.is("drop", "l2_unknown_dst"):
		return nil
	}
	return errNotImplemented
}

func compileIPRoute(fc *flowConfig, f *lflow) error {
	switch {
	case f.is("icmp_error", "ttl_exceeded"), f.is("drop", "ttl_exceeded"):
		return fc.vpc(pipeline.VPCTTL)
	case f.is("icmp_error", "no_route"), f.is("drop", "no_route"):
		return nil
	case f.is("eip_out"):
		return fc.vpc(pipeline.VPCEIPOut)
	case f.is("route"):
		dst, ok := find(f.match, "ip4.dst")
		if !ok {
			return fmt.Errorf("a route needs ip4.dst == PREFIX")
		}
		vniS, _ := f.last.Arg("vni")
		vni, err := strconv.Atoi(vniS)
		if err != nil {
			return fmt.Errorf("route without a vni")
		}
		r := dataplane.Route{VPC: uint32(f.vpc), Prefix: dst.Prefix, VNI: uint32(vni)}
		if nh, ok := f.last.Arg("nexthop"); ok {
			if r.Nexthop, err = netip.ParseAddr(nh); err != nil {
				return err
			}
		}
		fc.routes = append(fc.routes, r)
		return nil
	}
	return errNotImplemented
}

func compileDstLookup(fc *flowConfig, f *lflow) error {
	switch {
	case f.is("output") && has(f.match, "dst.local"):
		return fc.vpc(pipeline.VPCDstLocal)
	case f.is("output") && has(f.match, "dst.known"):
		return fc.vpc(pipeline.VPCDstKnown)
	case f.is("hub"):
		return fc.vpc(pipeline.VPCDstMissHub)
	}
	return errNotImplemented
}

func compileToHub(fc *flowConfig, f *lflow) error {
	switch {
	case f.is("drop", "dst_unknown") && has(f.match, "dst.unknown"):
		return fc.vpc(pipeline.VPCHubUnknown)
	case f.is("drop", "hub_budget") && has(f.match, "inport.over_budget"):
		return fc.vpc(pipeline.VPCHubBudget)
	case f.is("hub"):
		return nil // to_hub's purpose: always
	}
	return errNotImplemented
}

func compileTunAdmit(fc *flowConfig, f *lflow) error {
	switch {
	case f.is("drop", "ipv6"), f.is("drop", "unsupported_proto"), f.is("next"):
		return nil // what the data plane always does
	}
	return errNotImplemented
}

func compileTunLearn(fc *flowConfig, f *lflow) error {
	switch {
	case f.is("install_path"):
		return fc.vpc(pipeline.VPCLearn)
	case f.is("forget_path"):
		return fc.vpc(pipeline.VPCForget)
	case f.is("note_unknown"):
		return fc.vpc(pipeline.VPCLearnUnknown)
	case f.is("probe_reply"), f.is("note_hub"):
		return fc.vpc(pipeline.VPCProbe)
	case f.is("drop", "learn_rejected"), f.is("next"):
		return nil
	}
	return errNotImplemented
}

func compileTunARP(fc *flowConfig, f *lflow) error {
	switch {
	case f.is("output") && has(f.match, "dst.local"):
		return fc.vx(f, pipeline.VxTunARPReply)
	case f.is("teach"), f.is("tell_unknown"):
		return fc.vx(f, pipeline.VxTunARPAnswer)
	case f.is("drop", "arp_unanswered"), f.is("next"):
		return nil
	}
	return errNotImplemented
}

func compileTunLookup(fc *flowConfig, f *lflow) error {
	switch {
	case f.is("output") && has(f.match, "dst.local"):
		return fc.vpc(pipeline.VPCTunLocal)
	case f.is("teach"), f.is("tell_unknown"):
		return fc.vpc(pipeline.VPCTunHub)
	case f.is("forget_path"):
		return fc.vpc(pipeline.VPCTunStale)
	case f.is("drop", "stale_from_hub"):
		return nil
	}
	return errNotImplemented
}

// find returns the value a match compares field with ("==", single
// value), looking through conjunctions.
func find(e pipeline.Expr, field string) (pipeline.Value, bool) {
	switch x := e.(type) {
	case pipeline.Cmp:
		if x.Field == field && x.Op == "==" && len(x.Values) == 1 {
			return x.Values[0], true
		}
	case pipeline.And:
		for _, t := range x {
			if v, ok := find(t, field); ok {
				return v, true
			}
		}
	}
	return pipeline.Value{}, false
}

// has reports whether a boolean field appears positively in a match.
func has(e pipeline.Expr, field string) bool {
	switch x := e.(type) {
	case pipeline.Bool:
		return x.Field == field
	case pipeline.And:
		for _, t := range x {
			if has(t, field) {
				return true
			}
		}
	}
	return false
}

func parseMAC(s string) net.HardwareAddr {
	m, _ := net.ParseMAC(s)
	return m
}

// HasCompiler says whether a stage has its compiler (the spine test,
// pipeline/spine_test.go).
func HasCompiler(stage int) bool { return stageCompilers[stage] != nil }
