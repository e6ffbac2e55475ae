package dataplane

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/courier-sdn/courier/pipeline"
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

// dumpedCopy checks what courier-dpctl ports says of port ifindex's copy
// of its vxnet.
func dumpedCopy(t *testing.T, d *Datapath, ifindex int, want string) {
	t.Helper()
	dump, err := d.Dump()
	if err != nil {
		t.Fatal(err)
	}
	line := fmt.Sprintf("ifindex %d: ", ifindex)
	for _, l := range dump.Ports {
		if strings.HasPrefix(l, line) {
			line = l
		}
	}
	if !strings.HasSuffix(line, " vxnet-copy "+want) {
		t.Errorf("courier-dpctl ports: %q, want vxnet-copy %s", line, want)
	}
}

// TestPortCarriesItsVxnet: a port's entry carries its vxnet's, with the
// VPC's inside it (ports.h), and follows both: a flag the vxnet loses no
// longer holds from the port's next packet on, a VPC's change reaches
// the copy, and a port whose vxnet goes drops what it sends
// (unknown_vni), as when port_sec looked the vxnet up. The copies are
// rewritten with the vxnets, before the routes, also for a port moving
// out of a vxnet that goes.
func TestPortCarriesItsVxnet(t *testing.T) {
	f := newFixture(t, false)
	d := f.d
	entry := func() dvrPortEntry {
		t.Helper()
		e, ok := d.portsT().lookup(uint32(f.p1))
		if !ok {
			t.Fatalf("port %d has no entry", f.p1)
		}
		return e
	}
	apply := func() {
		t.Helper()
		if _, err := d.Apply(f.state); err != nil {
			t.Fatal(err)
		}
	}
	from := func(srcMAC string) runResult {
		return run(t, d.objs.PortIngress, f.p1, udpPkt(vm3MAC, mac(srcMAC), ip4("10.0.1.5"), ip4("10.0.1.6"), 64, 10))
	}
	const spoofed = "02:66:66:66:66:66"
	if e := entry(); e.Port.Flags&portVxnet == 0 || e.Vx.Flags != allVx || e.Vx.Vpce.Flags != allVPC {
		t.Fatalf("entry %+v: no copy of vxnet 5001's", e)
	}
	expectDrop(t, d, "spoof_mac", func() runResult { return from(spoofed) })
	dumped := func(want string) { t.Helper(); dumpedCopy(t, d, f.p1, want) }
	dumped("current")
	// port_sec reads the copy: with the vxnet's own entry gone, the
	// port still sends, and the operator sees the copy as stale.
	vx, _ := d.vxnetsT().lookup(5001)
	if err := d.vxnetsT().delete(5001); err != nil {
		t.Fatal(err)
	}
	if r := from(vm1MAC.String()); r.verdict != actRedirect {
		t.Errorf("without vxnet 5001's entry: verdict %d; drops %v", r.verdict, drops(t, d))
	}
	dumped("stale")
	if err := d.vxnetsT().put(5001, vx); err != nil {
		t.Fatal(err)
	}

	// Before anything after the vxnets is written (the routes first),
	// the port's copy is the vxnet's entry already.
	checked := 0
	d.stepped = func(step string) {
		if step != "routes" {
			return
		}
		vx, _ := d.vxnetsT().lookup(5001)
		if e := entry(); e.Vx != vx {
			t.Errorf("the routes are written while the port's copy of vxnet 5001 is %v, its entry %v", e.Vx, vx)
		}
		checked++
	}
	f.state.Vxnets[0].Flags &^= pipeline.VxPsecMAC
	f.state.VPCs[0].Flags &^= pipeline.VPCEIPIn
	apply()
	if d.stepped = nil; checked != 1 {
		t.Errorf("Apply's routes step seen %d times", checked)
	}
	if r := from(spoofed); r.verdict != actRedirect {
		t.Errorf("psec_mac off: verdict %d; drops %v", r.verdict, drops(t, d))
	}
	if e := entry(); e.Vx.Vpce.Flags != allVPC&^pipeline.VPCEIPIn {
		t.Errorf("the VPC's flags in the port's copy: %#x", e.Vx.Vpce.Flags)
	}

	// Vxnet 5001 goes, while vm3 moves from it to 5002: before the
	// routes, neither port's entry carries 5001's copy any more.
	f.state.Vxnets = f.state.Vxnets[1:]
	for i := range f.state.Ports {
		if f.state.Ports[i].Ifindex == f.p3 {
			f.state.Ports[i].VNI = 5002
		}
	}
	checked = 0
	d.stepped = func(step string) {
		if step != "routes" {
			return
		}
		for _, p := range []int{f.p1, f.p3} {
			if e, _ := d.portsT().lookup(uint32(p)); e.Port.Flags&portVxnet != 0 || e.Vx != (dvrVxnet{}) {
				t.Errorf("port %d still carries the copy of vxnet 5001, which is gone: %+v", p, e)
			}
		}
		checked++
	}
	apply()
	if d.stepped = nil; checked != 1 {
		t.Errorf("Apply's routes step seen %d times", checked)
	}
	if e := entry(); e.Port.Flags&portVxnet != 0 {
		t.Errorf("vxnet 5001 gone, its copy stays: %+v", e)
	}
	dumped("none")
	expectDrop(t, d, "unknown_vni", func() runResult { return from(vm1MAC.String()) })
}
