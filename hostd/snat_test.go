package hostd

import (
	"log/slog"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/courier-sdn/courier/dataplane"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// A host translates its ports without an EIP in VPCs with SNAT, within
// the blocks that fit the VPC's row; a gateway serves the blocks of its
// networks' addresses, at their ports' hosts.
func TestSNATState(t *testing.T) {
	snat := &sbdb.SNAT{Vpc: 1, Network: "internet", Addresses: []string{"203.0.113.50", "203.0.113.51"}, BlockSize: 1024}
	pbs := []*sbdb.PortBinding{
		{LogicalPort: "vm1", Datapath: "dp1", Vpc: 1, MAC: "02:00:00:00:01:05", IPs: []string{"10.0.1.5"}, Chassis: strp("hv1")},
		{LogicalPort: "vm2", Datapath: "dp1", Vpc: 1, MAC: "02:00:00:00:01:06", IPs: []string{"10.0.1.6"}, Chassis: strp("hv1"),
			Eip: strp("203.0.113.10"), EipNetwork: strp("internet")},
		{LogicalPort: "vm3", Datapath: "dp2", Vpc: 2, MAC: "02:00:00:00:02:05", IPs: []string{"10.0.1.5"}, Chassis: strp("hv1")},
	}
	blocks := []*sbdb.SNATBlock{
		{Vpc: 1, LogicalPort: "vm1", Address: "203.0.113.51", PortLo: 1024, PortHi: 2047, Chassis: strp("hv1")},
		{Vpc: 1, LogicalPort: "vm1", Address: "203.0.113.50", PortLo: 3072, PortHi: 4095, Chassis: strp("hv1")},
		{Vpc: 1, LogicalPort: "vm1", Address: "203.0.113.99", PortLo: 1024, PortHi: 2047, Chassis: strp("hv1")},  // not the VPC's address
		{Vpc: 1, LogicalPort: "vm1", Address: "203.0.113.50", PortLo: 8192, PortHi: 10239, Chassis: strp("hv1")}, // another size
	}
	s := &snapshot{chassis: "hv1", ifaces: map[string]int{"vm1": 7, "vm2": 8, "vm3": 9}, ports: pbs,
		gateways: map[string][]netip.Addr{"internet": {netip.MustParseAddr("192.168.0.11")}},
		snat:     map[int]*sbdb.SNAT{1: snat}, blocks: map[string][]*sbdb.SNATBlock{"vm1": blocks}}
	var st dataplane.State
	localNAT(s, &st)
	want := []dataplane.SNATPort{{Ifindex: 7, VPC: 1, Addr: netip.MustParseAddr("10.0.1.5"), Network: 1, BlockSize: 1024,
		Blocks: []dataplane.SNATBlock{{Addr: netip.MustParseAddr("203.0.113.50"), Lo: 3072}, {Addr: netip.MustParseAddr("203.0.113.51"), Lo: 1024}}}}
	if !reflect.DeepEqual(st.SNATPorts, want) {
		t.Errorf("SNAT ports %+v, want %+v (vm2 has an EIP, vm3's VPC no SNAT)", st.SNATPorts, want)
	}
	if len(st.EIPs) != 1 || st.EIPs[0].Network != 1 || len(st.EIPGateways) != 1 {
		t.Errorf("EIPs %+v gateways %+v: one network, numbered once for both", st.EIPs, st.EIPGateways)
	}
	// A gateway reads where a block's port is from the block: its
	// chassis, MAC and vxnet (southd keeps them); a block without them
	// (written before schema 1.8.0, not yet filled in) is not served.
	g := &dataplane.Gateway{}
	for _, b := range blocks[1:] {
		b.MAC, b.Datapath = strp(pbs[0].MAC), strp("dp1")
	}
	encap := map[string]netip.Addr{"hv1": netip.MustParseAddr("192.168.0.1")}
	via := map[string]netip.Addr{"internet": netip.MustParseAddr("198.51.100.1")}
	gatewaySNAT(g, &GatewayConfig{Networks: []string{"internet"}}, []*sbdb.SNAT{snat}, blocks,
		map[string]*sbdb.Datapath{"dp1": {TunnelKey: 5001}}, encap, via)
	if len(g.SNAT) != 1 || g.SNAT[0].VTEP != encap["hv1"] || g.SNAT[0].VNI != 5001 || g.SNAT[0].MAC.String() != pbs[0].MAC ||
		g.SNAT[0].Lo != 3072 || g.SNAT[0].NextHop != via["internet"] {
		t.Errorf("gateway blocks %+v, want vm1's block 3072 at hv1 (1024 says not where its port is)", g.SNAT)
	}
	g = &dataplane.Gateway{}
	gatewaySNAT(g, &GatewayConfig{Networks: []string{"dc"}}, []*sbdb.SNAT{snat}, blocks, nil, encap, via)
	if len(g.SNAT) != 0 {
		t.Errorf("a gateway of another network serves %+v", g.SNAT)
	}
}

// A port asks for blocks enough to stay under half full, one more at once
// when a connection failed, and gives them back only when idle.
func TestSNATDemand(t *testing.T) {
	d := &Daemon{snatState: map[int]*snatDemand{}, snatSize: map[int]int{7: 1024}, snatHeld: map[int]int{7: 1}}
	pb := &sbdb.PortBinding{LogicalPort: "vm1"}
	step := func(u dataplane.SNATUse) int {
		n, ok := d.snatWant(7, pb, u)
		if !ok {
			return 0
		}
		pb.SNATDemand = &n
		return n
	}
	if n := step(dataplane.SNATUse{Allocs: 40, Fails: 3}); n != 0 {
		t.Errorf("counters from before this hostd (a restart) asked for %d blocks", n)
	}
	d.snatState[7].allocs = 0 // as if the port were new: use counts from 0
	if n := step(dataplane.SNATUse{Allocs: 100, Fails: 3}); n != 0 {
		t.Errorf("100 connections in a block of 1,024 asked for %d", n)
	}
	if n := step(dataplane.SNATUse{Allocs: 600, Fails: 3}); n != 2 {
		t.Errorf("600 connections asked for %d blocks, want 2", n)
	}
	if n := step(dataplane.SNATUse{Allocs: 5000, Fails: 3}); n != 10 {
		t.Errorf("5,000 connections asked for %d blocks, want 10", n)
	}
	d.snatHeld[7] = 10
	if n := step(dataplane.SNATUse{Allocs: 5000, Fails: 4}); n != 11 {
		t.Errorf("a failure with 10 blocks held asked for %d, want 11", n)
	}
	ds := d.snatState[7]
	ds.live, ds.allocs, ds.swept = 300, 5000, true
	if n := step(dataplane.SNATUse{Allocs: 5000, Fails: 4}); n != 0 {
		t.Errorf("a port with 300 live connections gave blocks back: asked for %d", n)
	}
	ds.live = 0
	ds.askedAt = time.Time{}
	if n := step(dataplane.SNATUse{Allocs: 5000, Fails: 4}); n != 1 {
		t.Errorf("an idle port asked for %d blocks, want 1", n)
	}
}

type fakeSNAT struct {
	fakeDataplane
	quotas map[int]uint64
	sweeps int
}

func (f *fakeSNAT) SNATUses() (map[int]dataplane.SNATUse, error) { return nil, nil }
func (f *fakeSNAT) SNATGC(dataplane.SNATTimeouts) (dataplane.SNATGCStats, error) {
	f.sweeps++
	return dataplane.SNATGCStats{Live: map[int]int{7: 10}}, nil
}
func (f *fakeSNAT) SetSNATQuotas(q map[int]uint64) error { f.quotas = q; return nil }

// Each port may map its quota less what it holds live, counted by the
// last sweep; a port new since gets the whole quota.
func TestSNATQuotas(t *testing.T) {
	d := &Daemon{cfg: Config{SNATPortQuota: 1000}, snatState: map[int]*snatDemand{7: {live: 300}},
		snatPorts: map[int]*sbdb.PortBinding{7: {}, 8: {}}}
	f := &fakeSNAT{}
	d.setQuotas(f, map[int]dataplane.SNATUse{7: {Allocs: 5000}, 8: {Allocs: 10}})
	if f.quotas[7] != 5700 || f.quotas[8] != 1010 {
		t.Errorf("quotas %v, want 7: 5,000+700, 8: 10+1,000", f.quotas)
	}
	f.quotas = nil
	d.setQuotas(f, map[int]dataplane.SNATUse{7: {Allocs: 5600}, 8: {Allocs: 20}})
	if f.quotas != nil {
		t.Errorf("between sweeps the quotas were written again: %v", f.quotas)
	}
}

// Blocks go to the data plane in the order the host first saw them: a
// new one last, whatever its address and ports.
func TestSNATBlocksInTheOrderSeen(t *testing.T) {
	sn := &sbdb.SNAT{Vpc: 1, Addresses: []string{"203.0.113.50"}, BlockSize: 1024}
	rows := []*sbdb.SNATBlock{
		{UUID: "b", Vpc: 1, Address: "203.0.113.50", PortLo: 1024, PortHi: 2047},
		{UUID: "a", Vpc: 1, Address: "203.0.113.50", PortLo: 3072, PortHi: 4095},
	}
	got := snatBlocks(sn, rows, map[string]int{"a": 1, "b": 2})
	if len(got) != 2 || got[0].Lo != 3072 || got[1].Lo != 1024 {
		t.Errorf("blocks %+v: want 3072 (seen first), then 1024", got)
	}
}

// With the main loop stopped (no southbound session), connections are
// still swept and quotas still set; while it runs, it alone sweeps.
func TestSNATSweptWithoutTheSouthbound(t *testing.T) {
	f := &fakeSNAT{}
	d := &Daemon{dp: f, log: slog.New(slog.DiscardHandler), cfg: Config{SNATPortQuota: 1000},
		snatPorts: map[int]*sbdb.PortBinding{7: {}}}
	d.snatSwept = time.Now()
	d.sweepIfStale()
	if f.sweeps != 0 {
		t.Fatalf("swept %d times while the main loop had just swept", f.sweeps)
	}
	d.snatSwept = time.Now().Add(-time.Minute)
	d.sweepIfStale()
	if f.sweeps != 1 || f.quotas[7] != 990 {
		t.Errorf("%d sweeps, quotas %v: want one sweep and port 7's quota 1,000 less its 10 live", f.sweeps, f.quotas)
	}
}
