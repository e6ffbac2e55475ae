package dataplane

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/courier-sdn/courier/pipeline"
)

// The internet's reserved identity (#16): gateways stamp it on what they
// tunnel in for EIPs; a rule naming a group never admits it, a rule
// naming a prefix does; only a gateway may bring it; no port sends as it.

const idInternet = pipeline.InternetIdentity

// internetFixture: sgState's groups, vm1 (web) has EIP 203.0.113.10 with
// gateway gwVTEP, and web also admits tcp 8080 from anywhere.
func internetFixture(t *testing.T) *fixture {
	f := newFixture(t, false)
	sgState(f)
	f.state.SG[0].Rules = append(f.state.SG[0].Rules,
		SGRule{Group: gWeb, Ingress: true, Proto: 6, PortMin: 8080, PortMax: 8080, Prefix: prefix("0.0.0.0/0")})
	f.state.EIPs = []EIP{{Ifindex: f.p1, VPC: 1, EIP: eip1, Addr: ip4("10.0.1.5"), Network: 1}}
	f.state.EIPGateways = []EIPGateways{{Network: 1, VTEPs: []netip.Addr{gwVTEP}}}
	if _, err := f.d.Apply(f.state); err != nil {
		t.Fatal(err)
	}
	closePickUp(t, f.d)
	return f
}

// denials is sg_denied_v1 as a map.
func denials(t *testing.T, d *Datapath) map[SGDenial]uint64 {
	t.Helper()
	ns, err := d.SGDenials()
	if err != nil {
		t.Fatal(err)
	}
	out := map[SGDenial]uint64{}
	for _, n := range ns {
		out[SGDenial{VPC: n.VPC, Identity: n.Identity, Ingress: n.Ingress}] = n.Packets
	}
	return out
}

func TestGatewayStampsTheInternet(t *testing.T) {
	f := newFixture(t, false)
	up := veth(t, "up0")
	f.state.Gateway = &Gateway{Uplink: up, EIPs: []GatewayEIP{{EIP: eip1, VTEP: peerA, VNI: 5001, MAC: vm1MAC, GwMAC: gwMAC}}}
	if _, err := f.d.Apply(f.state); err != nil {
		t.Fatal(err)
	}
	resetSent(f.d)
	ip := ipPacket(client, eip1, protoTCP, tcpSeg(43210, 80, "x"), 0)
	r := run(t, f.d.objs.GwUplinkIngress, up, append(ethHdr(linkMAC(t, up), mac("02:bb:00:00:00:01"), 0x0800), ip...))
	var tr dvrTunnelRec
	if err := f.d.objs.TunnelOut.Lookup(uint32(0), &tr); err != nil {
		t.Fatal(err)
	}
	// Without the policy applied bit: the gateway decides nothing.
	if r.verdict != actRedirect || tr.Gbp != idInternet {
		t.Errorf("verdict %d, GBP %#x, want the internet's identity %#x alone", r.verdict, tr.Gbp, idInternet)
	}
}

func TestInternetIdentityAtThePort(t *testing.T) {
	f := internetFixture(t)
	d := f.d
	// A table that said the internet is in ops (hostd never writes one)
	// must still not let web's "tcp 443 from ops" admit it.
	if err := d.objs.SgMemberV1.Put(dvrSgMemberKey{Vpc: 1, Id: idInternet, Group: gOps}, uint32(1)); err != nil {
		t.Fatal(err)
	}
	fromInternet := func(src netip.Addr, gbp uint32, dst netip.Addr, dport uint16) func() runResult {
		return func() runResult {
			resetSent(d)
			return runTunnelGBP(t, d, src, 5001, gbp, l4Pkt(vm1MAC, gwMAC, client, dst, 6, 43210, dport))
		}
	}
	t.Run("a rule naming a group does not admit the internet", func(t *testing.T) {
		before := denials(t, d)
		expectDrop(t, d, "sg_ingress", fromInternet(gwVTEP, idInternet, eip1, 443))
		after := denials(t, d)
		for _, k := range []SGDenial{{VPC: 1, Identity: idInternet, Ingress: true}, {VPC: 1, Identity: idWeb, Ingress: true}} {
			if after[k] != before[k]+1 {
				t.Errorf("denials of %+v went from %d to %d, want one more", k, before[k], after[k])
			}
		}
	})
	t.Run("courier-dpctl sg names the internet's denials", func(t *testing.T) {
		v, err := d.SecurityGroups()
		if err != nil {
			t.Fatal(err)
		}
		want := "vpc 1 identity 65535 (internet): 1 packets from it refused by ports' ingress rules"
		if !slices.Contains(v.Denials, want) {
			t.Errorf("denials %q, want %q", v.Denials, want)
		}
	})
	t.Run("a rule naming 0.0.0.0/0 admits it", func(t *testing.T) {
		r := fromInternet(gwVTEP, idInternet, eip1, 8080)()
		if _, _, ifx, _ := sent(t, d); r.verdict != actRedirect || ifx != f.p1 {
			t.Errorf("verdict %d to %d, want vm1's port %d; drops %v", r.verdict, ifx, f.p1, drops(t, d))
		}
	})
	t.Run("from a host that is no gateway it counts as unknown", func(t *testing.T) {
		before := denials(t, d)
		expectDrop(t, d, "sg_ingress", fromInternet(peerA, idInternet, ip4("10.0.1.5"), 443))
		after := denials(t, d)
		if k := (SGDenial{VPC: 1, Identity: idInternet, Ingress: true}); after[k] != before[k] {
			t.Errorf("a host's packet was counted as the internet's")
		}
	})
}

// What a port sends to the internet through its EIP is the internet's
// to receive: a rule naming a group does not let it go (before, it went
// pending a check that no gateway makes); a rule naming a prefix does.
func TestEgressToTheInternet(t *testing.T) {
	f := internetFixture(t)
	d := f.d
	f.state.EIPs = append(f.state.EIPs, EIP{Ifindex: f.p2, VPC: 1, EIP: ip4("203.0.113.11"), Addr: ip4("10.0.2.5"), Network: 1})
	if _, err := d.Apply(f.state); err != nil {
		t.Fatal(err)
	}
	closePickUp(t, d)
	// vm2 is in ops, whose one egress rule is "tcp 443 to web".
	expectDrop(t, d, "sg_egress", func() runResult {
		return run(t, d.objs.PortIngress, f.p2, l4Pkt(gwMAC, vm2MAC, ip4("10.0.2.5"), client, 6, 40000, 443))
	})
	// vm1 is in web, which may send anything anywhere.
	resetSent(d)
	r := run(t, d.objs.PortIngress, f.p1, l4Pkt(gwMAC, vm1MAC, ip4("10.0.1.5"), client, 6, 40000, 443))
	if vtep, _, _, _ := sent(t, d); r.verdict != actRedirect || vtep != gwVTEP {
		t.Errorf("verdict %d to %s, want the gateway %s; drops %v", r.verdict, vtep, gwVTEP, drops(t, d))
	}
}

// No port sends as the internet, even if its entry said it was one.
func TestNoPortSendsAsTheInternet(t *testing.T) {
	f := internetFixture(t)
	d := f.d
	f.learn(t, ip4("10.0.1.7"), peerA, 5001, remMAC1)
	web := dvrSgIdent{N: 1}
	web.Groups[0] = gWeb
	if err := d.objs.SgIdentV1.Put(dvrSgIdentKey{Vpc: 1, Id: idInternet}, web); err != nil {
		t.Fatal(err)
	}
	if err := d.objs.PortSgV2.Put(uint32(f.p1), dvrPortSg{Vpc: 1, Id: idInternet}); err != nil {
		t.Fatal(err)
	}
	resetSent(d)
	r := run(t, d.objs.PortIngress, f.p1, l4Pkt(remMAC1, vm1MAC, ip4("10.0.1.5"), ip4("10.0.1.7"), 6, 40000, 80))
	var tr dvrTunnelRec
	d.objs.TunnelOut.Lookup(uint32(0), &tr)
	if r.verdict == actRedirect && tr.Gbp&0xffff == idInternet {
		t.Errorf("vm1 sent as the internet (GBP %#x)", tr.Gbp)
	}
}

// hostd never writes a reserved identity, for a port or in a VPC's table.
func TestReservedIdentitiesRefused(t *testing.T) {
	s := &State{Ports: []Port{{Ifindex: 7, Name: "vm1", VPC: 1, Identity: idInternet}},
		SG: []SGVPC{{VPC: 1, Identities: map[uint32][]uint32{idInternet: {gWeb}}}}}
	_, err := compileSG(s)
	for _, want := range []string{"port vm1: identity 65535 is reserved (internet)", "VPC 1 identity 65535: reserved (internet)"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want %q", err, want)
		}
	}
}
