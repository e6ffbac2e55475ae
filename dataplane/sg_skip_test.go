package dataplane

import (
	"testing"

	"github.com/courier-sdn/courier/pipeline"
)

// TestSGStagesSkippedOnlyInOpenVPCs: the driver skips the security group
// stages of a VPC that enforces no groups (pipeline.h, sg_skip), and only
// then. With ingress rules alone on, the sender must still stamp its
// port's identity for the receiver's sg_ingress; with neither on, nothing
// is checked and no identity goes out, even one left on the port.
func TestSGStagesSkippedOnlyInOpenVPCs(t *testing.T) {
	f := newFixture(t, false)
	d := f.d
	sgState(f)
	f.learn(t, ip4("10.0.1.7"), peerA, 5001, remMAC1)
	vm1 := ip4("10.0.1.5")
	send := func(t *testing.T, flags uint32, sport uint16) (uint32, uint32) {
		t.Helper()
		f.state.VPCs[0].Flags = allVPC | flags
		if _, err := d.Apply(f.state); err != nil {
			t.Fatal(err)
		}
		resetSent(d)
		r := run(t, d.objs.PortIngress, f.p1, l4Pkt(remMAC1, vm1MAC, vm1, ip4("10.0.1.7"), 6, sport, 8080))
		var tr dvrTunnelRec
		d.objs.TunnelOut.Lookup(uint32(0), &tr)
		return r.verdict, tr.Gbp
	}
	t.Run("ingress enforced only: the identity still goes out", func(t *testing.T) {
		if v, gbp := send(t, pipeline.VPCSGIngress, 40100); v != actRedirect || gbp != idWeb|gbpApplied {
			t.Errorf("verdict %d, GBP %#x, want %#x", v, gbp, idWeb|gbpApplied)
		}
	})
	t.Run("egress enforced only: the identity goes out", func(t *testing.T) {
		if v, gbp := send(t, pipeline.VPCSGEgress, 40101); v != actRedirect || gbp != idWeb|gbpApplied {
			t.Errorf("verdict %d, GBP %#x, want %#x", v, gbp, idWeb|gbpApplied)
		}
	})
	t.Run("open VPC: passed unchecked, no identity", func(t *testing.T) {
		if v, gbp := send(t, 0, 40102); v != actRedirect || gbp != 0 {
			t.Errorf("verdict %d, GBP %#x, want 0", v, gbp)
		}
	})
	t.Run("open VPC: local delivery", func(t *testing.T) {
		resetSent(d)
		r := run(t, d.objs.PortIngress, f.p1, l4Pkt(vm3MAC, vm1MAC, vm1, ip4("10.0.1.6"), 6, 40103, 22))
		if _, _, ifx, _ := sent(t, d); r.verdict != actRedirect || ifx != f.p3 {
			t.Errorf("verdict %d to ifindex %d, want %d; drops %v", r.verdict, ifx, f.p3, drops(t, d))
		}
	})
}
