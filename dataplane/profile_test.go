package dataplane

import (
	"bytes"
	"slices"
	"testing"

	"github.com/cilium/ebpf"
)

// profiledFixture is a hub's fixture with a profiled copy of the
// programs, test hooks on, loaded on its maps.
func profiledFixture(t *testing.T) (*fixture, *ebpf.Collection) {
	t.Helper()
	f := newFixture(t, true)
	coll, err := LoadVariant(ProfiledObject(), f.d.cfg.PinRoot, f.d.cfg.Chassis, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { coll.Close() })
	return f, coll
}

// profiled100 runs prog of a profiled copy 100 times on pkt, which it
// must redirect, and reads the profile.
func profiled100(t *testing.T, coll *ebpf.Collection, prog string, ifindex int, pkt []byte) Profile {
	t.Helper()
	var verdict uint32
	var err error
	within(func() { _, verdict, err = TimeRuns(coll.Programs[prog], ifindex, pkt, 100) })
	if err != nil || verdict != actRedirect {
		t.Fatalf("the profiled copy's %s: verdict %d, %v", prog, verdict, err)
	}
	p, err := ReadProfile(coll)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestProfileTimesEachStage: a profiled copy of the programs (make
// bench's stage table) times each stage a packet meets and the carrying
// out of its verdict, once per run, and a read clears the times; the
// production object, which hostd runs, has no profile.
func TestProfileTimesEachStage(t *testing.T) {
	f, coll := profiledFixture(t)
	// To a remote binding in the vxnet: encapsulated.
	pkt := append(ethHdr(remMAC1, vm1MAC, 0x0800), ipPacket(ip4("10.0.1.5"), ip4("10.0.1.7"), protoTCP, tcpSeg(40000, 80, "x"), 0)...)
	p := profiled100(t, coll, "port_ingress", f.p1, pkt)
	// Each step's time, as read (its timing's cost still in), is within
	// the whole program's, as read: its interval is nested in the
	// whole's on every run. (Not "more than the clock": the clock's cost
	// is a mean of its own runs, and one interrupt among them once put it
	// above every step's in CI.)
	var names []string
	for _, s := range p.Steps {
		names = append(names, s.Step)
		if raw, whole := s.MeanNS+p.ClockNS, p.WholeNS+p.ClockNS; s.Runs != 100 || raw <= 0 || raw >= whole {
			t.Errorf("%s: %d runs of %.0f ns as read, want 100 of more than nothing and less than the whole program's %.0f",
				s.Step, s.Runs, raw, whole)
		}
	}
	if want := []string{"port_sec", "l2_lookup", "finish"}; !slices.Equal(names, want) || p.Programs != 100 || p.ClockNS <= 0 {
		t.Errorf("profiled: steps %v in %d programs, the clock %.0f ns; want %v in 100", names, p.Programs, p.ClockNS, want)
	}
	if again, err := ReadProfile(coll); err != nil || len(again.Steps) != 0 || again.Programs != 0 {
		t.Errorf("a second read: %+v (%v), want nothing: the first clears", again, err)
	}

	spec, err := ebpf.LoadCollectionSpecFromReader(bytes.NewReader(CurrentObject()))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := spec.Maps["stage_prof"]; ok {
		t.Error("the production object has a stage profile")
	}
}

// TestProfileTimesTheTunnelPath: a profiled copy with its test hooks
// times tunnel_ingress's steps for the tunnel key SetTestTunnel gives
// it: a packet from another host delivered to a local port.
func TestProfileTimesTheTunnelPath(t *testing.T) {
	f, coll := profiledFixture(t)
	d := f.d
	if err := SetTestTunnel(coll, peerA, 5001, 0); err != nil {
		t.Fatal(err)
	}
	pkt := append(ethHdr(vm1MAC, remMAC1, 0x0800), ipPacket(ip4("10.0.1.7"), ip4("10.0.1.5"), protoTCP, tcpSeg(40000, 80, "x"), 0)...)
	p := profiled100(t, coll, "tunnel_ingress", d.vxlan, pkt)
	var r dvrRedirectRec
	if err := coll.Maps["redirect_out"].Lookup(uint32(0), &r); err != nil || int(r.Ifindex) != f.p1 || r.Peer != 1 {
		t.Fatalf("delivered to %+v (%v), want port 1's peer (ifindex %d)", r, err, f.p1)
	}
	var names []string
	for _, s := range p.Steps {
		names = append(names, s.Step)
	}
	if !slices.Contains(names, "tun_admit") || !slices.Contains(names, "tun_lookup") || names[len(names)-1] != "finish" || p.Programs != 100 {
		t.Errorf("profiled: steps %v in %d programs, want tun_admit, tun_lookup ... finish in 100", names, p.Programs)
	}
	// A key from a VNI the host does not serve: dropped (the key is read).
	if err := SetTestTunnel(coll, peerA, 777, 0); err != nil {
		t.Fatal(err)
	}
	var verdict uint32
	var err error
	within(func() { _, verdict, err = TimeRuns(coll.Programs["tunnel_ingress"], d.vxlan, pkt, 1) })
	if err != nil || verdict != actShot {
		t.Errorf("an unknown VNI: verdict %d, %v; want dropped", verdict, err)
	}
}

// The mean of copies' profiles weighs each by its runs (one of none
// counts for nothing), and per packet a step run thrice counts thrice.
func TestMeanProfile(t *testing.T) {
	a := Profile{Programs: 10, WholeNS: 500, ClockNS: 20, Steps: []StepTime{{"port_sec", 10, 100}, {"finish", 10, 200}}}
	b := Profile{Programs: 30, WholeNS: 700, ClockNS: 40, Steps: []StepTime{{"port_sec", 30, 140}, {"finish", 90, 100}}}
	none := Profile{WholeNS: 9999, ClockNS: 9999}
	m := MeanProfile([]Profile{a, none, b})
	if m.Programs != 40 || m.WholeNS != 650 || m.ClockNS != 35 {
		t.Errorf("mean: %+v, want 40 programs of 650 ns, the clock 35", m)
	}
	if v, ok := m.PerPacket("port_sec"); !ok || v != 130 { // (1,000 + 4,200) over 40
		t.Errorf("port_sec per packet %v %v, want 130", v, ok)
	}
	if v, _ := m.PerPacket("finish"); v != 275 { // (2,000 + 9,000) over 40
		t.Errorf("finish per packet %v, want 275", v)
	}
	if _, ok := m.PerPacket("ip_route"); ok {
		t.Error("a step that never ran is reported")
	}
}
