package dataplane

import (
	"net/netip"
	"testing"
)

// TestPortAddressFromItsEntry: a port's first fixed address rides in its
// entry (ports.h), and port_sec admits it without the port_addrs lookup.
// It follows the port's addresses: a changed address is refused from the
// next packet on, in IPv4 and ARP; and a port with no fixed address
// (0 in its entry) is not taken to own 0.0.0.0.
func TestPortAddressFromItsEntry(t *testing.T) {
	f := newFixture(t, false)
	d := f.d
	prog := d.objs.PortIngress
	from := func(src string) runResult {
		return run(t, prog, f.p1, udpPkt(vm3MAC, vm1MAC, ip4(src), ip4("10.0.1.6"), 64, 10))
	}
	if r := from("10.0.1.5"); r.verdict != actRedirect {
		t.Fatalf("from its address: verdict %d; drops %v", r.verdict, drops(t, d))
	}
	f.state.Ports[0].IPs = []netip.Addr{ip4("10.0.1.8")}
	if _, err := d.Apply(f.state); err != nil {
		t.Fatal(err)
	}
	expectDrop(t, d, "spoof_ip", func() runResult { return from("10.0.1.5") })
	expectDrop(t, d, "spoof_ip", func() runResult {
		return run(t, prog, f.p1, arpPkt(1, vm1MAC, ip4("10.0.1.5"), nil, ip4("10.0.1.1")))
	})
	if r := from("10.0.1.8"); r.verdict != actRedirect {
		t.Errorf("from its new address: verdict %d; drops %v", r.verdict, drops(t, d))
	}
	f.state.Ports[0].IPs, f.state.Ports[0].VIPs = nil, nil
	if _, err := d.Apply(f.state); err != nil {
		t.Fatal(err)
	}
	expectDrop(t, d, "spoof_ip", func() runResult { return from("0.0.0.0") })
}
