package e2e

import (
	"testing"
)

// hostd's programs encapsulate what they send to other hosts by default
// (#21); --kernel-encap, the escape hatch, leaves all of it to the VXLAN
// device. Either way the VMs reach each other, and encap_device says who
// encapsulated: the device sends only what is not IPv4 (hub probes and
// lessons) by default, everything with the flag.
func TestWhoEncapsulates(t *testing.T) {
	for _, c := range []struct {
		name       string
		args       []string
		inPrograms bool
	}{
		{"by default the programs", nil, true},
		{"with --kernel-encap the device", []string{"--kernel-encap"}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := startWith(t, 2, 1, c.args...)
			e.nb("vpc-add", "w", "--", "vxnet-add", "w", "wa", "10.8.1.0/24",
				"--", "port-add", "wa", "p1", "02:00:00:08:01:0a", "10.8.1.10",
				"--", "port-add", "wa", "p2", "02:00:00:08:01:0b", "10.8.1.11")
			e.vm("hv1", "p1")
			e.vm("hv2", "p2")
			e.mustPing("p1", "10.8.1.11")
			before := e.counters("hv2")
			if n, out := pingFrom(e.s.VMNS("p2"), "10.8.1.10", 20); n != 20 {
				t.Fatalf("p2 -> p1: %d/20 answered\n%s", n, out)
			}
			after := e.counters("hv2")
			sent := after["remote_tx"] - before["remote_tx"]
			device := after["encap_device"] - before["encap_device"]
			t.Logf("hv2 sent %d packets to other hosts, %d through the device", sent, device)
			if sent < 20 {
				t.Fatalf("hv2 counted %d packets sent to other hosts for 20 echo requests", sent)
			}
			if c.inPrograms && sent-device < 20 {
				t.Errorf("the programs encapsulated %d of hv2's %d packets, want the 20 echo requests at least", sent-device, sent)
			}
			if !c.inPrograms && device != sent {
				t.Errorf("the device encapsulated %d of hv2's %d packets, want all", device, sent)
			}
		})
	}
}
