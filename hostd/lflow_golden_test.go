package hostd

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/courier-sdn/courier/pipeline"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// Golden tests of the flow compiler: logical flows in
// (testdata/lflows/NAME.flows), what the data plane is told out
// (NAME.golden): each datapath's flags by name, the routes, security
// group rules, the DHCP
// answers, the flows refused. northd.flows is what a live northd writes
// for TestNorthdFlowsCompile's network (that test keeps it current);
// the others are variants: an older northd, behaviours turned off,
// flows no data plane implements. go test ./hostd -run Golden -update
// rewrites the golden files (and northd.flows, from the live test).

var update = flag.Bool("update", false, "rewrite testdata/lflows: the golden files, and northd.flows from a live northd")

// goldenDPs are the datapaths the flow files name.
var goldenDPs = map[string]*sbdb.Datapath{
	"vpc:a":   {UUID: "vpc:a", Name: "vpc:a", Type: "vpc", TunnelKey: 1, Vpc: 1, GatewayMAC: "0a:c0:00:00:00:01"},
	"vxnet:x": {UUID: "vxnet:x", Name: "vxnet:x", Type: "vxnet", TunnelKey: 11, Vpc: 1, Cidr: str("10.0.1.0/24"), GatewayIP: str("10.0.1.1"), GatewayMAC: "0a:c0:00:00:00:01"},
	"vxnet:y": {UUID: "vxnet:y", Name: "vxnet:y", Type: "vxnet", TunnelKey: 12, Vpc: 1, Cidr: str("10.0.2.0/24"), GatewayIP: str("10.0.2.1"), GatewayMAC: "0a:c0:00:00:00:01"},
}

// flowLine prints a flow as the .flows files hold it.
func flowLine(dp string, f *sbdb.LogicalFlow) string {
	return fmt.Sprintf("%s %s %d | %s | %s", dp, f.Stage, f.Priority, f.Match, f.Actions)
}

// readFlows parses a .flows file: DATAPATH STAGE PRIORITY | MATCH | ACTIONS,
// # for comments.
func readFlows(t *testing.T, path string) []*sbdb.LogicalFlow {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []*sbdb.LogicalFlow
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		parts := strings.SplitN(line, " | ", 3)
		head := strings.Fields(parts[0])
		if len(parts) != 3 || len(head) != 3 {
			t.Fatalf("%s:%d: want DATAPATH STAGE PRIORITY | MATCH | ACTIONS", path, n)
		}
		prio, err := strconv.Atoi(head[2])
		if err != nil {
			t.Fatalf("%s:%d: priority: %v", path, n, err)
		}
		out = append(out, &sbdb.LogicalFlow{Datapath: head[0], Vpc: 1, Stage: head[1], Priority: prio, Match: parts[1], Actions: parts[2]})
	}
	return out
}

// render says what the compiler made of the flows, in a stable order.
func render(fc *flowConfig) string {
	var b strings.Builder
	fmt.Fprintf(&b, "vpc flags: %s\n", pipeline.FlagNames(pipeline.DPVPC, fc.vpcFlags))
	for _, dp := range []string{"vxnet:x", "vxnet:y"} {
		fmt.Fprintf(&b, "%s flags: %s\n", dp, pipeline.FlagNames(pipeline.DPVxnet, fc.vxFlags[dp]))
		if r, ok := fc.dhcp[dp]; ok {
			fmt.Fprintf(&b, "%s dhcp: router %s /%d lease %d mtu %d dns %v domain %q routes %v\n", dp, r.Router, r.Netmask,
				r.Lease, r.MTU, r.DNS, r.Domain, r.Routes)
		}
	}
	var routes []string
	for _, r := range fc.routes {
		s := fmt.Sprintf("route %s vni %d", r.Prefix, r.VNI)
		if r.Nexthop.IsValid() {
			s += " via " + r.Nexthop.String()
		}
		routes = append(routes, s)
	}
	for _, r := range fc.sgRules {
		dir := "egress"
		if r.rule.Ingress {
			dir = "ingress"
		}
		routes = append(routes, fmt.Sprintf("sg %s %s proto %d ports %d-%d prefix %v group %q", r.group, dir, r.rule.Proto,
			r.rule.PortMin, r.rule.PortMax, r.rule.Prefix, r.remote))
	}
	slices.Sort(routes)
	errs := slices.Clone(fc.errs)
	slices.Sort(errs)
	for _, s := range append(routes, errs...) {
		fmt.Fprintln(&b, s)
	}
	return b.String()
}

func TestCompilerGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/lflows/*.flows")
	if len(files) < 4 {
		t.Fatalf("%d flow files in testdata/lflows", len(files))
	}
	for _, in := range files {
		name := strings.TrimSuffix(filepath.Base(in), ".flows")
		t.Run(name, func(t *testing.T) {
			got := render(compileFlows(1, readFlows(t, in), goldenDPs, nil))
			golden := strings.TrimSuffix(in, ".flows") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("%s compiles to\n%s\nwant (%s)\n%s", in, got, golden, want)
			}
		})
	}
}
