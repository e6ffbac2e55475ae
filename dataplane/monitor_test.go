package dataplane

import (
	"testing"
	"time"

	"github.com/courier-sdn/courier/pipeline"
)

// A monitor sees every drop with its stage and reason, at most the rate it
// asked for; without one, nothing is reported.
func TestMonitorReportsDropsWithinItsRate(t *testing.T) {
	f := newFixture(t, false)
	d := f.d
	spoof := func() runResult {
		return run(t, d.objs.PortIngress, f.p1, udpPkt(vm3MAC, vm1MAC, ip4("10.0.1.99"), ip4("10.0.1.6"), 64, 10))
	}
	read := func(m *Monitor) []DropEvent {
		var out []DropEvent
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				e, err := m.Read()
				if err != nil {
					return
				}
				out = append(out, e)
			}
		}()
		time.Sleep(200 * time.Millisecond)
		m.Close()
		<-done
		return out
	}
	m, err := OpenMonitor(d.cfg.PinRoot, d.cfg.Chassis, Budget{Rate: 1, Burst: 2})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		spoof()
	}
	got := read(m)
	if len(got) != 2 {
		t.Fatalf("%d events for 5 drops with a burst of 2: %+v", len(got), got)
	}
	e := got[0]
	if pipeline.Stages[e.Stage].Name != "port_sec" || pipeline.DropName(e.Reason) != "spoof_ip" || e.Ifindex != f.p1 || e.Tunnel ||
		e.Len != len(e.Packet) || e.Packet[14+12] != 10 || e.Packet[14+15] != 99 {
		t.Errorf("event %+v", e)
	}
	// The monitor is gone: its lease with it.
	m2, err := OpenMonitor(d.cfg.PinRoot, d.cfg.Chassis, Budget{})
	if err != nil {
		t.Fatal(err)
	}
	m2.Close()
	after, err := OpenMonitor(d.cfg.PinRoot, d.cfg.Chassis, Budget{})
	if err != nil {
		t.Fatal(err)
	}
	var zero dvrMonitorCfg
	after.cfg.Put(uint32(0), zero) // as if it had been killed and its lease run out
	spoof()
	if got := read(after); len(got) != 0 {
		t.Errorf("drops reported without a lease: %+v", got)
	}
}
