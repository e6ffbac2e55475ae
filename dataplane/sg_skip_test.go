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

// TestVPCGainingGroupsEnforcesOnExistingPorts: a VPC's flags ride in its
// vxnets' entries (vxnets.h), which the packets' paths read instead of
// the VPC's; when an open VPC gains its first security group rule, its
// ports, already programmed, are checked from the next packet on, both
// what they send and what the tunnel brings them.
func TestVPCGainingGroupsEnforcesOnExistingPorts(t *testing.T) {
	f := newFixture(t, false)
	d := f.d
	f.learn(t, ip4("10.0.1.7"), peerA, 5001, remMAC1)
	vm1, rem := ip4("10.0.1.5"), ip4("10.0.1.7")
	out := func() runResult {
		return run(t, d.objs.PortIngress, f.p1, l4Pkt(remMAC1, vm1MAC, vm1, rem, 6, 40200, 8080))
	}
	in := func() runResult { return runTunnel(t, d, peerA, 5001, l4Pkt(vm1MAC, remMAC1, rem, vm1, 6, 40201, 22)) }
	if r := out(); r.verdict != actRedirect {
		t.Fatalf("open VPC: sent verdict %d; drops %v", r.verdict, drops(t, d))
	}
	if r := in(); r.verdict != actRedirect {
		t.Fatalf("open VPC: received verdict %d; drops %v", r.verdict, drops(t, d))
	}
	// Its first rule: web takes tcp 80-81 in, and nothing out.
	f.state.VPCs[0].Flags |= pipeline.VPCSGEgress | pipeline.VPCSGIngress
	f.state.Ports[0].Identity = idWeb
	f.state.SG = []SGVPC{{VPC: 1, Identities: map[uint32][]uint32{idWeb: {gWeb}},
		Rules: []SGRule{{Group: gWeb, Ingress: true, Proto: 6, PortMin: 80, PortMax: 81, Prefix: prefix("10.0.0.0/8")}}}}
	if _, err := d.Apply(f.state); err != nil {
		t.Fatal(err)
	}
	closePickUp(t, d)
	expectDrop(t, d, "sg_egress", out)
	expectDrop(t, d, "sg_ingress", in)
}
