package hostd

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/courier-sdn/courier/dataplane"
	"github.com/courier-sdn/courier/schema/sbdb"
)

func strp(s string) *string { return &s }

// A host translates only its own ports' EIPs, and sends through the
// gateways that name the EIP's network; a gateway serves the EIPs of its
// networks whose ports are bound, wherever they are.
func TestEIPStates(t *testing.T) {
	chassis := []*sbdb.Chassis{
		{Name: "gw1", EncapIP: "192.168.0.11", Roles: []string{"gateway"}, OtherConfig: map[string]string{otherConfigGateways: "internet"}},
		{Name: "gw2", EncapIP: "192.168.0.12", Roles: []string{"gateway"}, OtherConfig: map[string]string{otherConfigGateways: "internet, dc"}},
		{Name: "hv1", EncapIP: "192.168.0.1", OtherConfig: map[string]string{otherConfigGateways: "internet"}}, // not a gateway
		{Name: "hv2", EncapIP: "192.168.0.2"},
	}
	gws := gatewaysOf(chassis)
	want := map[string][]netip.Addr{"internet": {netip.MustParseAddr("192.168.0.11"), netip.MustParseAddr("192.168.0.12")},
		"dc": {netip.MustParseAddr("192.168.0.12")}}
	if !reflect.DeepEqual(gws, want) {
		t.Fatalf("gateways %v, want %v", gws, want)
	}
	pbs := []*sbdb.PortBinding{
		{LogicalPort: "vm1", Datapath: "dp1", Vpc: 1, MAC: "02:00:00:00:01:05", IPs: []string{"10.0.1.5"}, Chassis: strp("hv1"),
			Eip: strp("203.0.113.10"), EipNetwork: strp("internet")},
		{LogicalPort: "vm2", Datapath: "dp1", Vpc: 1, MAC: "02:00:00:00:01:06", IPs: []string{"10.0.1.6"}, Chassis: strp("hv2"),
			Eip: strp("203.0.113.11"), EipNetwork: strp("internet")},
		{LogicalPort: "vm3", Datapath: "dp1", Vpc: 1, MAC: "02:00:00:00:01:07", IPs: []string{"10.0.1.7"}, Chassis: strp("hv1")},
		{LogicalPort: "vm4", Datapath: "dp1", Vpc: 1, MAC: "02:00:00:00:01:08", IPs: []string{"10.0.1.8"}, // unbound
			Eip: strp("203.0.113.12"), EipNetwork: strp("internet")},
		{LogicalPort: "vm5", Datapath: "dp1", Vpc: 1, MAC: "02:00:00:00:01:09", IPs: []string{"10.0.1.9"}, Chassis: strp("hv2"),
			Eip: strp("192.0.2.9"), EipNetwork: strp("lab")}, // a network gw1 does not serve
		{LogicalPort: "vm6", Datapath: "dp1", Vpc: 1, MAC: "02:00:00:00:01:0a", IPs: []string{"10.0.1.10"}, Chassis: strp("hv1"),
			Eip: strp("192.168.200.5"), EipNetwork: strp("internet"), EipKind: strp("physical")}, // served by hv1 itself
	}
	vteps := map[string]netip.Addr{"hv1": netip.MustParseAddr("192.168.0.1"), "hv2": netip.MustParseAddr("192.168.0.2"),
		"gw1": netip.MustParseAddr("192.168.0.2")} // two chassis on one address: once
	s := &snapshot{chassis: "hv1", ifaces: map[string]int{"vm1": 7, "vm3": 8, "vm6": 9}, ports: pbs, gateways: gws, encap: vteps}
	var st dataplane.State
	localNAT(s, &st)
	wantEIPs := []dataplane.EIP{{Ifindex: 7, VPC: 1, EIP: netip.MustParseAddr("203.0.113.10"), Addr: netip.MustParseAddr("10.0.1.5"), Network: 1}}
	if !reflect.DeepEqual(st.EIPs, wantEIPs) || len(st.EIPGateways) != 1 || !reflect.DeepEqual(st.EIPGateways[0].VTEPs, want["internet"]) {
		t.Errorf("host hv1: EIPs %+v gateways %+v", st.EIPs, st.EIPGateways)
	}
	wantPhys := []dataplane.PhysEIP{{Ifindex: 9, VPC: 1, EIP: netip.MustParseAddr("192.168.200.5"), Addr: netip.MustParseAddr("10.0.1.10")}}
	if !reflect.DeepEqual(st.PhysEIPs, wantPhys) {
		t.Errorf("host hv1: physical EIPs %+v, want %+v", st.PhysEIPs, wantPhys)
	}
	// The senders hv1 takes VXLAN from, and vm6 sends to none of.
	if want := []netip.Addr{netip.MustParseAddr("192.168.0.1"), netip.MustParseAddr("192.168.0.2")}; !reflect.DeepEqual(chassisVTEPs(vteps, "hv1"), want) {
		t.Errorf("host hv1: VTEPs %v, want %v", chassisVTEPs(vteps, "hv1"), want)
	}
	// A view without this host's own row is not whole: no list.
	if got := chassisVTEPs(vteps, "hv9"); got != nil {
		t.Errorf("host hv9, not in the view: VTEPs %v, want none", got)
	}
	encap := map[string]netip.Addr{"hv1": netip.MustParseAddr("192.168.0.1"), "hv2": netip.MustParseAddr("192.168.0.2")}
	via := map[string]netip.Addr{"internet": netip.MustParseAddr("198.51.100.1")}
	g := gatewayState(&GatewayConfig{Networks: []string{"internet"}}, 3, pbs, map[string]*sbdb.Datapath{"dp1": {TunnelKey: 5001}}, encap, via)
	got := map[string]string{}
	for _, e := range g.EIPs {
		got[e.EIP.String()] = e.VTEP.String() + "/" + e.MAC.String() + "/" + e.GwMAC.String() + " via " + e.NextHop.String()
		if e.VNI != 5001 {
			t.Errorf("EIP %s in vni %d", e.EIP, e.VNI)
		}
	}
	wantGW := map[string]string{"203.0.113.10": "192.168.0.1/02:00:00:00:01:05/0a:c0:00:00:00:01 via 198.51.100.1",
		"203.0.113.11": "192.168.0.2/02:00:00:00:01:06/0a:c0:00:00:00:01 via 198.51.100.1"}
	if g.Uplink != 3 || !reflect.DeepEqual(got, wantGW) {
		t.Errorf("gateway serves %v on ifindex %d, want %v", got, g.Uplink, wantGW)
	}
}
