package hostd

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"

	"github.com/courier-sdn/courier/dataplane"
	"github.com/courier-sdn/courier/internal/central"
	"github.com/courier-sdn/courier/internal/testenv"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/pipeline"
	"github.com/courier-sdn/courier/schema/sbdb"
	"github.com/courier-sdn/courier/tools/nbctl"
)

// Every flow northd writes is one this data plane implements: the
// pipeline's stages are shared, and this test keeps both ends honest.
func TestNorthdFlowsCompile(t *testing.T) {
	dbs := testenv.StartDBs(t, central.Daemons("", "")[0])
	err := nbctl.Run(context.Background(), nbctl.Options{DB: dbs.NB, Wait: "sb", Format: "table", Timeout: 15 * time.Second},
		[]string{"vpc-add", "a", "--", "vxnet-add", "a", "x", "10.0.1.0/24", "--vni", "11", "--", "vxnet-add", "a", "y", "10.0.2.0/24", "--vni", "12",
			"--", "port-add", "y", "nh", "02:00:00:00:02:32", "10.0.2.50", "--", "route-add", "a", "192.168.0.0/16", "10.0.2.50"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	m, _ := sbdb.FullDatabaseModel()
	s, err := ops.Open(context.Background(), m, ops.SessionOptions{Remotes: []string{dbs.SB},
		Monitor: []client.MonitorOption{client.WithTable(&sbdb.Datapath{}), client.WithTable(&sbdb.LogicalFlow{})}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	dps := map[string]*sbdb.Datapath{}
	for _, dp := range ops.Rows[sbdb.Datapath](s) {
		dps[dp.UUID] = dp
	}
	flows := ops.Rows[sbdb.LogicalFlow](s)
	checkNorthdFlowsFile(t, flows, dps)
	fc := compileFlows(1, flows, dps, nil)
	if len(fc.errs) > 0 {
		t.Fatalf("flows hostd cannot apply:\n%v", fc.errs)
	}
	// northd's flows switch every behaviour on.
	all := pipeline.AllFlags(pipeline.DPVxnet)
	for u, dp := range dps {
		if dp.Type == "vxnet" && fc.vxFlags[u] != all {
			t.Errorf("%s: flags %s, want %s", dp.Name, pipeline.FlagNames("vxnet", fc.vxFlags[u]), pipeline.FlagNames("vxnet", all))
		}
	}
	if want := pipeline.AllFlags(pipeline.DPVPC); fc.vpcFlags != want {
		t.Errorf("VPC flags %s, want %s", pipeline.FlagNames("vpc", fc.vpcFlags), pipeline.FlagNames("vpc", want))
	}
	// A northd older than a stage writes no flows for it: the stage's
	// defaults apply, so that hosts can be upgraded first.
	var older []*sbdb.LogicalFlow
	for _, f := range flows {
		if f.Stage != "tun_learn" && f.Stage != "to_hub" {
			older = append(older, f)
		}
	}
	if fc := compileFlows(1, older, dps, nil); fc.vpcFlags != pipeline.AllFlags(pipeline.DPVPC) || len(fc.errs) > 0 {
		t.Errorf("without tun_learn and to_hub flows: VPC flags %s, errors %v", pipeline.FlagNames("vpc", fc.vpcFlags), fc.errs)
	}
	routes := map[string]dataplane.Route{}
	for _, r := range fc.routes {
		routes[r.Prefix.String()] = r
	}
	if r := routes["10.0.1.0/24"]; r.VNI != 11 || r.Nexthop.IsValid() {
		t.Errorf("connected route %+v", r)
	}
	if r := routes["192.168.0.0/16"]; r.VNI != 12 || r.Nexthop != netip.MustParseAddr("10.0.2.50") {
		t.Errorf("static route %+v", r)
	}
	checkDHCPReply(t, fc, dps)
	// A flow outside what the data plane implements is reported.
	for _, b := range [][3]string{
		{"port_sec", "ip4.src == 10.0.0.0/8", "next; hub;"},
		{"icmp_err", `error == "ttl_exceeded"`, "icmp4_error(type=3, code=0);"},
		{"icmp_err", `error == "oversize"`, "icmp4_error(type=3, code=4);"},
		{"icmp_err", `error == "spoof_ip"`, "icmp4_error(type=3, code=13);"},
		{"port_sec", "ip4", "clamp_mss; next;"},
		{"dhcp", "udp.dst == 67", "dhcp_reply(router=10.0.1.1);"},
	} {
		bad := *flows[0]
		for _, f := range flows {
			if f.Stage == b[0] {
				bad = *f
			}
		}
		bad.Stage, bad.Match, bad.Actions = b[0], b[1], b[2]
		if fc := compileFlows(1, []*sbdb.LogicalFlow{&bad}, dps, nil); len(fc.errs) != 1 {
			t.Errorf("an unimplemented flow was accepted: %s %s %s: %v", b[0], b[1], b[2], fc.errs)
		}
	}
}

// checkDHCPReply: the DHCP a port of vxnet x is answered with, from its
// flows: its gateway and mask, the default lease and domain, the VPC's
// static route; no DNS, as none was set.
func checkDHCPReply(t *testing.T, fc *flowConfig, dps map[string]*sbdb.Datapath) {
	t.Helper()
	for u, dp := range dps {
		if dp.Name != "vxnet:x" {
			continue
		}
		pb := &sbdb.PortBinding{LogicalPort: "web1", IPs: []string{"10.0.1.7"}}
		d := portDHCP(fc.dhcp, pb, dps[u], 1450)
		if d == nil {
			t.Fatal("no DHCP for a port of vxnet x")
		}
		want := dataplane.DHCP{Subnet: netip.MustParsePrefix("10.0.1.0/24"), Router: netip.MustParseAddr("10.0.1.1"), MTU: 1450,
			Domain: "a.internal", Hostname: "web1", Routes: []netip.Prefix{netip.MustParsePrefix("192.168.0.0/16")}, Lease: 12 * time.Hour}
		if !reflect.DeepEqual(*d, want) {
			t.Errorf("DHCP %+v, want %+v", *d, want)
		}
		return
	}
	t.Errorf("no datapath vxnet:x among %d", len(dps))
}

// checkNorthdFlowsFile keeps testdata/lflows/northd.flows, the golden
// test's input, what northd writes: -update rewrites it.
func checkNorthdFlowsFile(t *testing.T, flows []*sbdb.LogicalFlow, dps map[string]*sbdb.Datapath) {
	t.Helper()
	var lines []string
	for _, f := range flows {
		lines = append(lines, flowLine(dps[f.Datapath].Name, f))
	}
	slices.Sort(lines)
	got := "# What northd writes for TestNorthdFlowsCompile's network (that test keeps this file current).\n" +
		strings.Join(lines, "\n") + "\n"
	const path = "testdata/lflows/northd.flows"
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if want, err := os.ReadFile(path); err != nil || string(want) != got {
		t.Errorf("northd's flows differ from %s (go test ./hostd -run 'NorthdFlows|Golden' -update, and review the diff): %v", path, err)
	}
}
