package hostd

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/courier-sdn/courier/internal/central"
	"github.com/courier-sdn/courier/internal/testenv"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// A gateway's session holds the bindings with a public EIP, not every
// binding: its work grows with what it serves. A SNAT block carries
// where its port is (chassis, MAC, vxnet), so the gateway serves it
// without the port's binding.
func TestGatewayMonitorsWhatItServes(t *testing.T) {
	dbs := testenv.StartTLSDBs(t, central.Daemons("", "")...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := nbRun(ctx, dbs, "sb", []string{
		"vpc-add", "v", "--open", "--", "vxnet-add", "v", "x", "10.0.0.0/24",
		"--", "port-add", "x", "pub", "02:00:00:00:00:01", "10.0.0.11", "--chassis", "hv1",
		"--", "port-add", "x", "phys", "02:00:00:00:00:02", "10.0.0.12", "--chassis", "hv1",
		"--", "port-add", "x", "nat", "02:00:00:00:00:03", "10.0.0.13", "--chassis", "hv1",
		"--", "extnet-add", "internet", "203.0.113.0/24", "--kind", "public",
		"--", "extnet-add", "dc", "192.168.200.0/24", "--kind", "physical",
		"--", "eip-add", "internet", "203.0.113.5", "--port", "pub",
		"--", "eip-add", "dc", "192.168.200.5", "--port", "phys",
		"--", "snat-set", "v", "internet", "203.0.113.100"}...)
	if err != nil {
		t.Fatal(err)
	}
	hv1, err := connect(t, dbs, "hv1", "hv1", "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range []string{"pub", "phys", "nat"} {
		hv1.ifaces[p] = 10 + i
	}
	binding(t, hv1, "nat")
	hv1.claim(ctx, ops.Rows[sbdb.PortBinding](hv1.base))
	gw := New(Config{Chassis: "gw1", EncapIP: netip.MustParseAddr("192.0.2.9"), SB: []string{dbs.SBChassis},
		Credentials: dbs.Creds(t, "gw1"), Log: testenv.Logger(t), Gateway: &GatewayConfig{Networks: []string{"internet"}}})
	if err := gw.openGateway(ctx); err != nil {
		t.Fatal(err)
	}
	defer gw.gw.Close()
	testenv.Eventually(t, 30*time.Second, "the gateway holds pub's binding and nat's block, where nat is", func() error {
		var names []string
		for _, pb := range ops.Rows[sbdb.PortBinding](gw.gw) {
			names = append(names, pb.LogicalPort)
		}
		if !slices.Equal(names, []string{"pub"}) {
			return fmt.Errorf("bindings %v, want pub's alone", names)
		}
		dps := map[string]*sbdb.Datapath{}
		for _, dp := range ops.Rows[sbdb.Datapath](gw.gw) {
			dps[dp.UUID] = dp
		}
		encap := map[string]netip.Addr{"hv1": netip.MustParseAddr("192.0.2.1")}
		g := gatewayState(gw.cfg.Gateway, 1, ops.Rows[sbdb.PortBinding](gw.gw), dps, encap, nil)
		gatewaySNAT(g, gw.cfg.Gateway, ops.Rows[sbdb.SNAT](gw.gw), ops.Rows[sbdb.SNATBlock](gw.gw), dps, encap, nil)
		if len(g.EIPs) != 1 || len(g.SNAT) != 1 || g.SNAT[0].MAC.String() != "02:00:00:00:00:03" || g.SNAT[0].VNI == 0 {
			var rows []string
			for _, b := range ops.Rows[sbdb.SNATBlock](gw.gw) {
				rows = append(rows, fmt.Sprintf("%+v %v %v %v", *b, ops.Rows[sbdb.SNAT](gw.gw), b.MAC != nil, b.Chassis != nil))
			}
			return fmt.Errorf("EIPs %+v, SNAT blocks %+v: want pub's EIP and nat's block at its MAC; %v", g.EIPs, g.SNAT, rows)
		}
		return nil
	})
}
