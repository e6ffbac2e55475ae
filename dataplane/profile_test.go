package dataplane

import (
	"bytes"
	"slices"
	"testing"

	"github.com/cilium/ebpf"
)

// TestProfileTimesEachStage: a profiled copy of the programs (make
// bench's stage table) times each stage a packet meets and the carrying
// out of its verdict, once per run, and a read clears the times; the
// production object, which hostd runs, has no profile.
func TestProfileTimesEachStage(t *testing.T) {
	f := newFixture(t, true)
	d := f.d
	coll, err := LoadVariant(ProfiledObject(), d.cfg.PinRoot, d.cfg.Chassis, true)
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	// To a remote binding in the vxnet: encapsulated.
	pkt := append(ethHdr(remMAC1, vm1MAC, 0x0800), ipPacket(ip4("10.0.1.5"), ip4("10.0.1.7"), protoTCP, tcpSeg(40000, 80, "x"), 0)...)
	var verdict uint32
	within(func() { _, verdict, err = TimeRuns(coll.Programs["port_ingress"], f.p1, pkt, 100) })
	if err != nil || verdict != actRedirect {
		t.Fatalf("the profiled copy: verdict %d, %v", verdict, err)
	}
	steps, programs, clock, err := ReadProfile(coll)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range steps {
		names = append(names, s.Step)
		if s.Runs != 100 || s.MeanNS+clock <= 0 {
			t.Errorf("%s: %d runs of %.0f ns (the clock's %.0f ns taken off), want 100 of some time", s.Step, s.Runs, s.MeanNS, clock)
		}
	}
	if want := []string{"port_sec", "l2_lookup", "finish"}; !slices.Equal(names, want) || programs != 100 || clock <= 0 {
		t.Errorf("profiled: steps %v in %d programs, the clock %.0f ns; want %v in 100", names, programs, clock, want)
	}
	if steps, programs, _, err := ReadProfile(coll); err != nil || len(steps) != 0 || programs != 0 {
		t.Errorf("a second read: %v in %d programs (%v), want nothing: the first clears", steps, programs, err)
	}

	spec, err := ebpf.LoadCollectionSpecFromReader(bytes.NewReader(CurrentObject()))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := spec.Maps["stage_prof"]; ok {
		t.Error("the production object has a stage profile")
	}
}
