package hostd

import (
	"maps"
	"net/netip"
	"testing"

	"github.com/courier-sdn/courier/dataplane"
)

// A host probes its VPCs' hubs in a VNI of their VPC, and the gateways
// of every network its ports reach, through an EIP or through SNAT: a
// gateway it does not probe is never passed over when it dies.
func TestProbeTargets(t *testing.T) {
	a := netip.MustParseAddr
	self, hub, gw1, gw2, gw3 := a("192.168.0.1"), a("192.168.0.2"), a("192.168.0.11"), a("192.168.0.12"), a("192.168.0.13")
	st := &dataplane.State{
		Vxnets: []dataplane.Vxnet{{VNI: 5002, VPC: 1}, {VNI: 5001, VPC: 1}, {VNI: 6001, VPC: 2}},
		Ports:  []dataplane.Port{{Ifindex: 7, VNI: 5002, VPC: 1}, {Ifindex: 8, VNI: 6001, VPC: 2}},
		Hubs:   []dataplane.Hubs{{VPC: 1, VTEPs: []netip.Addr{self, hub}}},
		EIPGateways: []dataplane.EIPGateways{
			{Network: 1, VTEPs: []netip.Addr{gw1}},       // vm7's EIP
			{Network: 2, VTEPs: []netip.Addr{gw2, self}}, // vm8's SNAT
			{Network: 3, VTEPs: []netip.Addr{gw3}},       // no port of this host's
		},
	}
	st.EIPs = []dataplane.EIP{{Ifindex: 7, VPC: 1, Network: 1}}
	st.SNATPorts = []dataplane.SNATPort{{Ifindex: 8, VPC: 2, Network: 2}}
	got := probeTargets(st, self)
	want := map[netip.Addr]probeTarget{hub: {vni: 5001}, gw1: {vni: 5002, gateway: true}, gw2: {vni: 6001, gateway: true}}
	if !maps.Equal(got, want) {
		t.Errorf("probes %v, want %v (the hub in its VPC's lowest VNI, the EIP's and the SNAT port's gateways in their port's, never itself)", got, want)
	}
}
