package hostd

import (
	"net/netip"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/courier-sdn/courier/dataplane"
	"github.com/courier-sdn/courier/pipeline"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// desired is table-tested here on snapshots written by hand: no kernel,
// no database.

func str(s string) *string { return &s }

var (
	tVPC = &sbdb.Datapath{UUID: "dp-vpc", Name: "vpc:blue", Type: "vpc", TunnelKey: 7, Vpc: 7, GatewayMAC: "0a:c0:00:00:00:07"}
	tWeb = &sbdb.Datapath{UUID: "dp-web", Name: "vxnet:web", Type: "vxnet", TunnelKey: 11, Vpc: 7, Cidr: str("10.0.1.0/24"),
		GatewayIP: str("10.0.1.1"), GatewayMAC: "0a:c0:00:00:00:07"}
	tDB = &sbdb.Datapath{UUID: "dp-db", Name: "vxnet:db", Type: "vxnet", TunnelKey: 12, Vpc: 7, Cidr: str("10.0.2.0/24"),
		GatewayIP: str("10.0.2.1"), GatewayMAC: "0a:c0:00:00:00:07"}
)

func pb(name, dp string, chassis, requested *string, ips ...string) *sbdb.PortBinding {
	return &sbdb.PortBinding{UUID: "pb-" + name, LogicalPort: name, Datapath: dp, Vpc: 7, MAC: "02:00:00:00:01:05", IPs: ips, Chassis: chassis,
		RequestedChassis: requested, PortSecurity: true, TunnelKey: 3}
}

// snap is hv1's snapshot of VPC blue: its interfaces, its bindings, the
// VPC's datapaths and flows (none: the stages' defaults), hv2 and hv3
// elsewhere.
func snap(ports []*sbdb.PortBinding, ifaces map[string]int, mod ...func(*snapshot)) *snapshot {
	dps := map[string]*sbdb.Datapath{tVPC.UUID: tVPC, tWeb.UUID: tWeb, tDB.UUID: tDB}
	s := &snapshot{chassis: "hv1", mtu: 1450, ifaces: ifaces, ports: ports,
		encap: map[string]netip.Addr{"hv1": ip("192.168.0.1"), "hv2": ip("192.168.0.2"), "hv3": ip("192.168.0.3")},
		vpcs: []vpcSnapshot{{vpc: 7, dps: dps, flows: compileFlows(7, nil, dps, nil),
			hubs: []*sbdb.Hub{{Vpc: 7, Chassis: []string{"hv2", "hv9"}}}}}}
	for _, m := range mod {
		m(s)
	}
	return s
}

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

func portNames(st *dataplane.State) []string {
	var out []string
	for _, p := range st.Ports {
		out = append(out, p.Name)
	}
	slices.Sort(out)
	return out
}

func TestDesired(t *testing.T) {
	hv1, hv2 := str("hv1"), str("hv2")
	up := true
	cases := []struct {
		name  string
		snap  *snapshot
		check func(t *testing.T, d *desiredState)
	}{
		{"a port bound here, its interface here, is programmed and marked up",
			snap([]*sbdb.PortBinding{pb("vm1", "dp-web", hv1, nil, "10.0.1.5")}, map[string]int{"vm1": 5}),
			func(t *testing.T, d *desiredState) {
				want := dataplane.Port{Ifindex: 5, Name: "vm1", VNI: 11, VPC: 7, MAC: parseMAC("02:00:00:00:01:05"), MTU: 1450,
					Security: true, TunnelKey: 3, IPs: []netip.Addr{ip("10.0.1.5")}}
				if len(d.state.Ports) != 1 || !reflect.DeepEqual(d.state.Ports[0], want) {
					t.Errorf("ports %+v, want %+v", d.state.Ports, want)
				}
				if len(d.up) != 1 || !d.ready || !slices.Equal(d.state.Interfaces, []int{5}) {
					t.Errorf("up %d ready %v interfaces %v", len(d.up), d.ready, d.state.Interfaces)
				}
			}},
		{"requested here and not bound yet: programmed before the claim comes back",
			snap([]*sbdb.PortBinding{pb("vm1", "dp-web", nil, hv1, "10.0.1.5")}, map[string]int{"vm1": 5}),
			func(t *testing.T, d *desiredState) {
				if !slices.Equal(portNames(d.state), []string{"vm1"}) {
					t.Errorf("ports %v", portNames(d.state))
				}
			}},
		{"bound elsewhere, or without its interface here: not programmed, the interface still gets the DVR",
			snap([]*sbdb.PortBinding{pb("vm1", "dp-web", hv2, hv1, "10.0.1.5"), pb("vm2", "dp-web", hv1, nil, "10.0.1.6")},
				map[string]int{"vm1": 5}),
			func(t *testing.T, d *desiredState) {
				if len(d.state.Ports) != 0 || len(d.up) != 0 || !slices.Equal(d.state.Interfaces, []int{5}) {
					t.Errorf("ports %v up %d interfaces %v", portNames(d.state), len(d.up), d.state.Interfaces)
				}
			}},
		{"a bad MAC or an unknown datapath is passed over; no IPs means unknown addresses; up is not marked twice",
			func() *snapshot {
				bad := pb("bad", "dp-web", hv1, nil, "10.0.1.7")
				bad.MAC = "nonsense"
				lost := pb("lost", "dp-gone", hv1, nil, "10.0.1.8")
				unk := pb("unk", "dp-db", hv1, nil)
				unk.Up = &up
				return snap([]*sbdb.PortBinding{bad, lost, unk}, map[string]int{"bad": 1, "lost": 2, "unk": 3})
			}(),
			func(t *testing.T, d *desiredState) {
				if !slices.Equal(portNames(d.state), []string{"unk"}) || !d.state.Ports[0].Unknown || d.state.Ports[0].VNI != 12 {
					t.Errorf("ports %+v", d.state.Ports)
				}
				if len(d.up) != 0 {
					t.Errorf("up %d, want none: unk is up already", len(d.up))
				}
			}},
		{"learned addresses: only accepted ones of this host's ports become locals",
			snap([]*sbdb.PortBinding{pb("vm1", "dp-web", hv1, nil, "10.0.1.5"), pb("far", "dp-web", hv2, nil, "10.0.1.9")},
				map[string]int{"vm1": 5, "far": 6}, func(s *snapshot) {
					s.learned = []*sbdb.LearnedBinding{
						{Vpc: 7, IP: "10.0.1.50", LogicalPort: "vm1", Accepted: true},
						{Vpc: 7, IP: "10.0.1.51", LogicalPort: "vm1", Accepted: false},
						{Vpc: 7, IP: "10.0.1.52", LogicalPort: "far", Accepted: true},
					}
				}),
			func(t *testing.T, d *desiredState) {
				want := []dataplane.Local{{VPC: 7, IP: ip("10.0.1.50"), Ifindex: 5}}
				if !reflect.DeepEqual(d.state.Locals, want) {
					t.Errorf("locals %+v, want %+v", d.state.Locals, want)
				}
			}},
		{"a hub forwards by fixed bindings where they are (or are requested), then accepted learned ones that shadow none",
			snap(nil, map[string]int{}, func(s *snapshot) {
				v := &s.vpcs[0]
				v.hub = true
				v.bindings = []*sbdb.PortBinding{pb("a", "dp-web", hv2, nil, "10.0.1.5"), pb("b", "dp-db", nil, str("hv3"), "10.0.2.5"),
					pb("nowhere", "dp-web", nil, nil, "10.0.1.6"), pb("ghost", "dp-web", str("hv-gone"), nil, "10.0.1.7")}
				v.learned = []*sbdb.LearnedBinding{
					{UUID: "l60", Vpc: 7, Vni: 11, IP: "10.0.1.60", MAC: "02:00:00:00:01:60", Chassis: "hv3", Accepted: true},
					{UUID: "l5", Vpc: 7, Vni: 11, IP: "10.0.1.5", MAC: "02:00:00:00:01:61", Chassis: "hv3", Accepted: true},
					{UUID: "l62", Vpc: 7, Vni: 11, IP: "10.0.1.62", MAC: "02:00:00:00:01:62", Chassis: "hv3", Accepted: false},
				}
			}),
			func(t *testing.T, d *desiredState) {
				got := map[string]string{}
				for _, b := range d.state.HubTable.All() {
					got[b.IP.String()] = b.VTEP.String()
				}
				want := map[string]string{"10.0.1.5": "192.168.0.2", "10.0.2.5": "192.168.0.3", "10.0.1.60": "192.168.0.3"}
				if !reflect.DeepEqual(got, want) || !d.hubOf[7] || d.state.HubTable.Len() != 3 {
					t.Errorf("bindings %v, want %v (hub of %v)", got, want, d.hubOf)
				}
			}},
		{"hubs by VTEP, a chassis without one left out; flags and routes from the flows' defaults",
			snap(nil, map[string]int{}),
			func(t *testing.T, d *desiredState) {
				if len(d.state.Hubs) != 1 || !slices.Equal(d.state.Hubs[0].VTEPs, []netip.Addr{ip("192.168.0.2")}) {
					t.Errorf("hubs %+v", d.state.Hubs)
				}
				if len(d.state.VPCs) != 1 || len(d.state.Vxnets) != 2 || d.state.VPCs[0].Flags == 0 {
					t.Errorf("VPCs %+v vxnets %+v", d.state.VPCs, d.state.Vxnets)
				}
			}},
		{"a VPC whose datapaths have not arrived: nothing to acknowledge",
			snap(nil, map[string]int{}, func(s *snapshot) { s.vpcs[0].dps = map[string]*sbdb.Datapath{} }),
			func(t *testing.T, d *desiredState) {
				if d.ready {
					t.Error("ready without datapaths")
				}
			}},
		{"a vxnet datapath with a bad CIDR is reported, not applied",
			snap(nil, map[string]int{}, func(s *snapshot) {
				bad := *tDB
				bad.Cidr = str("10.0.2.0/99")
				s.vpcs[0].dps[bad.UUID] = &bad
			}),
			func(t *testing.T, d *desiredState) {
				if len(d.flowErrs) != 1 || len(d.state.Vxnets) != 1 {
					t.Errorf("errors %v vxnets %d", d.flowErrs, len(d.state.Vxnets))
				}
			}},
		{"a binding with the internet's reserved identity gives its port none, and says so",
			func() *snapshot {
				ok, bad := pb("vm1", "dp-web", hv1, nil, "10.0.1.5"), pb("vm2", "dp-web", hv1, nil, "10.0.1.6")
				one, internet := 1, pipeline.InternetIdentity
				ok.SgIdentity, bad.SgIdentity = &one, &internet
				return snap([]*sbdb.PortBinding{ok, bad}, map[string]int{"vm1": 5, "vm2": 6})
			}(),
			func(t *testing.T, d *desiredState) {
				ids := map[string]uint32{}
				for _, p := range d.state.Ports {
					ids[p.Name] = p.Identity
				}
				if ids["vm1"] != 1 || ids["vm2"] != 0 || len(d.flowErrs) != 1 {
					t.Errorf("identities %v, errors %v; want vm1 1, vm2 none, one error", ids, d.flowErrs)
				}
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.check(t, desired(c.snap)) })
	}
}

// A port of a vxnet with DHCP is answered with what the vxnet's
// dhcp_reply flow says, its own name, and the host's MTU.
func TestDesiredDHCP(t *testing.T) {
	s := snap([]*sbdb.PortBinding{pb("vm1", "dp-web", str("hv1"), nil, "10.0.1.5")}, map[string]int{"vm1": 5})
	v := &s.vpcs[0]
	v.flows = compileFlows(7, []*sbdb.LogicalFlow{{Datapath: "dp-web", Stage: "dhcp", Priority: 100, Match: "udp.dst == 67",
		Actions: `dhcp_reply(router=10.0.1.1, netmask=255.255.255.0, lease=600, dns={192.0.2.53}, domain="blue.internal");`}}, v.dps, nil)
	d := desired(s)
	want := &dataplane.DHCP{Subnet: netip.MustParsePrefix("10.0.1.0/24"), Router: ip("10.0.1.1"), MTU: 1450,
		DNS: []netip.Addr{ip("192.0.2.53")}, Domain: "blue.internal", Hostname: "vm1", Lease: 10 * time.Minute}
	if len(d.state.Ports) != 1 || !reflect.DeepEqual(d.state.Ports[0].DHCP, want) {
		t.Errorf("DHCP %+v, want %+v", d.state.Ports[0].DHCP, want)
	}
}

// fakeDataplane records what hostd asks of the kernel.
type fakeDataplane struct {
	applied []*dataplane.State
	taught  map[bindingKey][]netip.Addr
}

func (f *fakeDataplane) Apply(st *dataplane.State) (dataplane.ApplyStats, error) {
	f.applied = append(f.applied, st)
	return dataplane.ApplyStats{}, nil
}
func (f *fakeDataplane) TaughtAbout(keys map[dataplane.BindingKey]bool) (map[dataplane.BindingKey][]netip.Addr, error) {
	out := map[dataplane.BindingKey][]netip.Addr{}
	for k := range keys {
		if s := f.taught[bindingKey{k.VPC, k.IP}]; len(s) > 0 {
			out[k] = s
		}
	}
	return out, nil
}
func (f *fakeDataplane) ExpireCache(time.Duration) (int, error) { return 0, nil }
func (f *fakeDataplane) KeepForwarding() (bool, error)          { return false, nil }
func (f *fakeDataplane) FollowUnderlay() (dataplane.Underlay, error) {
	return dataplane.Underlay{}, nil
}
func (f *fakeDataplane) SetVXLANMTU(int) error                          { return nil }
func (f *fakeDataplane) ProbeHubs([]netip.Addr) error                   { return nil }
func (f *fakeDataplane) HubSeen() (map[netip.Addr]time.Duration, error) { return nil, nil }
func (f *fakeDataplane) HubDown(time.Duration) bool                     { return false }

// fakeSender records the learn messages hostd sends.
type fakeSender struct{ sent []string }

func (f *fakeSender) Send(to netip.Addr, vni uint32, m dataplane.LearnMsg) error {
	f.sent = append(f.sent, to.String()+" "+m.IP.String()+" "+map[uint8]string{dataplane.OpLearn: "learn " + m.VTEP.String(),
		dataplane.OpForget: "forget"}[m.Op])
	return nil
}
func (f *fakeSender) Probe(netip.Addr, uint32, netip.Addr) error { return nil }
