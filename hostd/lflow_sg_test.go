package hostd

import (
	"net/netip"
	"testing"

	"github.com/courier-sdn/courier/dataplane"
	"github.com/courier-sdn/courier/pipeline"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// Each allow flow northd writes for a rule (northd/stage_sg.go) becomes
// that rule, with groups numbered by name per VPC and identities read
// from the VPC datapath.
func TestSecurityGroupFlowsCompile(t *testing.T) {
	vpc := &sbdb.Datapath{UUID: "v", Name: "vpc:a", Type: pipeline.DPVPC, TunnelKey: 1,
		SecurityIdentities: map[string]string{"1": "web", "2": "db,web", "3": "default"}}
	dps := map[string]*sbdb.Datapath{"v": vpc}
	flows := []*sbdb.LogicalFlow{
		{Datapath: "v", Stage: "sg_egress", Priority: 200, Match: "ct.est", Actions: "allow;"},
		{Datapath: "v", Stage: "sg_egress", Priority: 150, Match: "!ip4", Actions: "next;"},
		{Datapath: "v", Stage: "sg_egress", Priority: 100, Match: `inport.sg == "web" && ip4`, Actions: "allow;"},
		{Datapath: "v", Stage: "sg_egress", Priority: 0, Match: "1", Actions: "drop(sg_egress);"},
		{Datapath: "v", Stage: "sg_ingress", Priority: 100, Match: `outport.sg == "web" && tcp && tcp.dst >= 80 && tcp.dst <= 81 && ip4.src == 10.0.0.0/8`, Actions: "allow;"},
		{Datapath: "v", Stage: "sg_ingress", Priority: 100, Match: `outport.sg == "db" && udp && udp.dst == 53 && src.sg == "web"`, Actions: "allow;"},
		{Datapath: "v", Stage: "sg_ingress", Priority: 100, Match: `outport.sg == "db" && icmp4 && src.sg == "ops"`, Actions: "allow;"},
		{Datapath: "v", Stage: "sg_ingress", Priority: 100, Match: `tcp`, Actions: "allow;"}, // no group: refused
		{Datapath: "v", Stage: "sg_ingress", Priority: 0, Match: "1", Actions: "drop(sg_ingress);"},
	}
	fc := compileFlows(1, flows, dps, nil)
	if len(fc.errs) != 1 {
		t.Fatalf("errors %v, want the allow flow without a group", fc.errs)
	}
	if fc.vpcFlags&(pipeline.VPCSGEgress|pipeline.VPCSGIngress) != pipeline.VPCSGEgress|pipeline.VPCSGIngress {
		t.Errorf("vpc flags %s", pipeline.FlagNames(pipeline.DPVPC, fc.vpcFlags))
	}
	sg, errs := securityGroups(1, dps, fc)
	if sg == nil || len(errs) != 0 {
		t.Fatalf("groups %+v, errors %v", sg, errs)
	}
	// db 1, default 2, ops 3, web 4: by name.
	const db, def, ops, web = 1, 2, 3, 4
	want := []dataplane.SGRule{
		{Group: db, Ingress: true, Proto: 17, PortMin: 53, PortMax: 53, RemoteGroup: web},
		{Group: db, Ingress: true, Proto: 1, RemoteGroup: ops},
		{Group: web},
		{Group: web, Ingress: true, Proto: 6, PortMin: 80, PortMax: 81, Prefix: netip.MustParsePrefix("10.0.0.0/8")},
	}
	if len(sg.Rules) != len(want) {
		t.Fatalf("rules %+v", sg.Rules)
	}
	for _, w := range want {
		found := false
		for _, r := range sg.Rules {
			found = found || r == w
		}
		if !found {
			t.Errorf("no rule %+v in %+v", w, sg.Rules)
		}
	}
	if id := sg.Identities[2]; len(id) != 2 || id[0] != db || id[1] != web || sg.Identities[3][0] != def {
		t.Errorf("identities %v", sg.Identities)
	}
	// An open VPC (its flows say next, and drop nothing) has none.
	open := compileFlows(1, []*sbdb.LogicalFlow{{Datapath: "v", Stage: "sg_egress", Priority: 0, Match: "1", Actions: "next;"}}, dps, nil)
	if sg, _ := securityGroups(1, dps, open); sg != nil {
		t.Errorf("an open VPC has groups: %+v", sg)
	}
}
