package dataplane

import (
	"encoding/binary"
	"net"
	"testing"
)

// rarpPkt is what QEMU announces a migrated guest with (announce_self):
// a broadcast RARP request whose sender and target are the guest's MAC.
func rarpPkt(m net.HardwareAddr) []byte {
	b := ethHdr(net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, m, 0x8035)
	a := make([]byte, 28)
	binary.BigEndian.PutUint16(a[0:], 1)
	binary.BigEndian.PutUint16(a[2:], 0x0800)
	a[4], a[5] = 6, 4
	binary.BigEndian.PutUint16(a[6:], 3) // reverse request
	copy(a[8:14], m)
	copy(a[18:24], m)
	return append(b, a...)
}

// A live migration's destination holds the port prepared, flagged
// migrating: the DVR reports its guest's first announcement there, and
// nothing else's (hostd/activation.go binds the port on that report).
func TestMigratingPortReportsItsGuestResuming(t *testing.T) {
	f := newFixture(t, false)
	d := f.d
	f.state.Ports[2].Migrating = true // vm3, 10.0.1.6
	if _, err := d.Apply(f.state); err != nil {
		t.Fatal(err)
	}
	ev, err := d.Events()
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	prog := d.objs.PortIngress
	t.Run("its addresses are not delivered to it before it resumes here", func(t *testing.T) {
		if _, ok := d.localsT().lookup(dvrEpKey{Vpc: 1, Ip: be32(ip4("10.0.1.6"))}); ok {
			t.Error("a migrating port's address is delivered locally while its guest runs on the source")
		}
		if _, ok := d.localsT().lookup(dvrEpKey{Vpc: 1, Ip: be32(ip4("10.0.1.5"))}); !ok {
			t.Error("an ordinary port's address is not delivered locally")
		}
	})
	t.Run("RARP from a port not migrating activates nothing", func(t *testing.T) {
		expectDrop(t, d, "unsupported_proto", func() runResult { return run(t, prog, f.p1, rarpPkt(vm1MAC)) })
		if r := run(t, prog, f.p1, arpPkt(1, vm1MAC, ip4("10.0.1.5"), nil, ip4("10.0.1.5"))); r.verdict == actRedirect {
			t.Errorf("a gratuitous ARP was sent on (verdict %d)", r.verdict)
		}
		if got := events(t, ev); len(got) != 0 {
			t.Errorf("a port not migrating reported a resumed guest: %+v", got)
		}
	})
	t.Run("RARP in the migrating port's name from another port is a spoof", func(t *testing.T) {
		expectDrop(t, d, "spoof_mac", func() runResult { return run(t, prog, f.p1, rarpPkt(vm3MAC)) })
		if got := events(t, ev); len(got) != 0 {
			t.Errorf("a spoofed RARP reported a resumed guest: %+v", got)
		}
	})
	t.Run("RARP from the migrating port is reported once", func(t *testing.T) {
		for i := 0; i < 3; i++ { // QEMU announces a few times
			if r := run(t, prog, f.p3, rarpPkt(vm3MAC)); r.verdict != actShot {
				t.Errorf("RARP verdict %d, want dropped after the report", r.verdict)
			}
		}
		got := events(t, ev)
		if len(got) != 1 || got[0].Type != EventResumed || got[0].Ifindex != f.p3 {
			t.Errorf("events %+v, want one EventResumed from ifindex %d", got, f.p3)
		}
	})
}
