package dataplane

import (
	"encoding/binary"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/courier-sdn/courier/pipeline"
)

// l4Pkt is an Ethernet/IPv4 frame carrying a TCP or UDP header with the
// given ports, or (proto 1) an ICMP echo request (sport: its identifier)
// or reply (dport 0 means a reply).
func l4Pkt(dst, src net.HardwareAddr, sip, dip netip.Addr, proto uint8, sport, dport uint16) []byte {
	b := ethHdr(dst, src, 0x0800)
	var l4 []byte
	switch proto {
	case 6:
		l4 = make([]byte, 20)
		binary.BigEndian.PutUint16(l4[0:], sport)
		binary.BigEndian.PutUint16(l4[2:], dport)
		l4[12] = 5 << 4
		l4[13] = 0x10 // ACK: not a SYN, no MSS to clamp
	case 17:
		l4 = make([]byte, 8)
		binary.BigEndian.PutUint16(l4[0:], sport)
		binary.BigEndian.PutUint16(l4[2:], dport)
		binary.BigEndian.PutUint16(l4[4:], 8)
	case 1:
		l4 = make([]byte, 8)
		l4[0] = 8
		if dport == 0 {
			l4[0] = 0
		}
		binary.BigEndian.PutUint16(l4[4:], sport)
	}
	ip := make([]byte, 20)
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(l4)))
	ip[8] = 64
	ip[9] = proto
	s, d := sip.As4(), dip.As4()
	copy(ip[12:16], s[:])
	copy(ip[16:20], d[:])
	binary.BigEndian.PutUint16(ip[10:], csum(ip))
	return append(append(b, ip...), l4...)
}

// runTunnelGBP runs tunnel_ingress as if pkt came from src with vni and
// that VXLAN GBP field.
func runTunnelGBP(t *testing.T, d *Datapath, src netip.Addr, vni, gbp uint32, pkt []byte) runResult {
	t.Helper()
	if err := d.objs.TunnelIn.Put(uint32(0), dvrTunnelRec{Vtep: host32(src), Vni: vni, Gbp: gbp}); err != nil {
		t.Fatal(err)
	}
	return run(t, d.objs.TunnelIngress, d.vxlan, pkt)
}

const (
	gWeb, gDB, gOps            = 1, 2, 3
	idWeb, idDB, idBoth        = 1, 2, 3
	idRemoteDB, idOps          = 4, 5
	gbpApplied          uint32 = GBPPolicyApplied
)

func prefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// sgState: vm1 is in web, vm3 in db, vm2 in ops; identity 3 is web and
// db at once, 4 a db member on another host.
//
//	web: egress anything; ingress tcp 80-81 from 10.0.0.0/8, icmp from
//	     db, tcp 443 from ops
//	db:  egress anything; ingress tcp 5432 from web, udp 53 from 10.0.1.0/24
//	ops: egress tcp 443 to web only
func sgState(f *fixture) {
	f.state.VPCs[0].Flags |= pipeline.VPCSGEgress | pipeline.VPCSGIngress
	ids := map[int]uint32{f.p1: idWeb, f.p3: idDB, f.p2: idOps}
	for i := range f.state.Ports {
		f.state.Ports[i].Identity = ids[f.state.Ports[i].Ifindex]
	}
	f.state.SG = []SGVPC{{VPC: 1,
		Identities: map[uint32][]uint32{idWeb: {gWeb}, idDB: {gDB}, idBoth: {gWeb, gDB}, idRemoteDB: {gDB}, idOps: {gOps}},
		Rules: []SGRule{
			{Group: gWeb, Prefix: prefix("0.0.0.0/0")},
			{Group: gWeb, Ingress: true, Proto: 6, PortMin: 80, PortMax: 81, Prefix: prefix("10.0.0.0/8")},
			{Group: gWeb, Ingress: true, Proto: 1, RemoteGroup: gDB},
			{Group: gWeb, Ingress: true, Proto: 6, PortMin: 443, PortMax: 443, RemoteGroup: gOps},
			{Group: gDB, Prefix: prefix("0.0.0.0/0")},
			{Group: gDB, Ingress: true, Proto: 6, PortMin: 5432, PortMax: 5432, RemoteGroup: gWeb},
			{Group: gDB, Ingress: true, Proto: 17, PortMin: 53, PortMax: 53, Prefix: prefix("10.0.1.0/24")},
			{Group: gOps, Proto: 6, PortMin: 443, PortMax: 443, RemoteGroup: gWeb},
		}}}
}

// sgFixture is a fixture with sgState applied.
func sgFixture(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t, false)
	sgState(f)
	if _, err := f.d.Apply(f.state); err != nil {
		t.Fatal(err)
	}
	return f
}

// closePickUp ends every port's pickup window: the test's ACK-only TCP
// segments are new connections, not a migrated VM's.
func closePickUp(t *testing.T, d *Datapath) {
	t.Helper()
	ports, err := d.portSGT().dump()
	if err != nil {
		t.Fatal(err)
	}
	for ifx, p := range ports {
		p.PickupUntilNs = 0
		if err := d.objs.PortSgV2.Put(ifx, p); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSecurityGroupStages(t *testing.T) {
	f := sgFixture(t)
	d := f.d
	closePickUp(t, d)
	f.learn(t, ip4("10.0.1.7"), peerA, 5001, remMAC1)
	prog := d.objs.PortIngress
	vm1, vm3 := ip4("10.0.1.5"), ip4("10.0.1.6")
	delivered := func(t *testing.T, r runResult, ifindex int) {
		t.Helper()
		if _, _, ifx, _ := sent(t, d); r.verdict != actRedirect || ifx != ifindex {
			t.Errorf("verdict %d to ifindex %d, want %d; drops %v", r.verdict, ifx, ifindex, drops(t, d))
		}
	}

	t.Run("local: tcp 80 from a prefix the rule names", func(t *testing.T) {
		resetSent(d)
		delivered(t, run(t, prog, f.p3, l4Pkt(vm1MAC, vm3MAC, vm3, vm1, 6, 40000, 80)), f.p1)
	})
	t.Run("local: the reply of an allowed connection passes both ways", func(t *testing.T) {
		resetSent(d)
		delivered(t, run(t, prog, f.p1, l4Pkt(vm3MAC, vm1MAC, vm1, vm3, 6, 80, 40000)), f.p3)
	})
	t.Run("local: tcp 22 is allowed by no rule", func(t *testing.T) {
		expectDrop(t, d, "sg_ingress", func() runResult { return run(t, prog, f.p3, l4Pkt(vm1MAC, vm3MAC, vm3, vm1, 6, 40001, 22)) })
	})
	t.Run("denials are counted by the refusing port's identity and direction", func(t *testing.T) {
		expectDrop(t, d, "sg_egress", func() runResult {
			return run(t, prog, f.p2, l4Pkt(gwMAC, vm2MAC, ip4("10.0.2.5"), vm3, 17, 5001, 53))
		})
		ns, err := d.SGDenials()
		if err != nil {
			t.Fatal(err)
		}
		got := map[SGDenial]bool{}
		for _, n := range ns {
			got[SGDenial{VPC: n.VPC, Identity: n.Identity, Ingress: n.Ingress}] = n.Packets > 0
		}
		if !got[SGDenial{VPC: 1, Identity: idWeb, Ingress: true}] || !got[SGDenial{VPC: 1, Identity: idOps}] || len(ns) != 2 {
			t.Errorf("denials %+v, want web's ingress (tcp 22) and ops's egress", ns)
		}
	})
	t.Run("local: the port range's ends", func(t *testing.T) {
		resetSent(d)
		delivered(t, run(t, prog, f.p3, l4Pkt(vm1MAC, vm3MAC, vm3, vm1, 6, 40002, 81)), f.p1)
		expectDrop(t, d, "sg_ingress", func() runResult { return run(t, prog, f.p3, l4Pkt(vm1MAC, vm3MAC, vm3, vm1, 6, 40003, 82)) })
	})
	t.Run("local: udp 53 by prefix, udp 54 not", func(t *testing.T) {
		resetSent(d)
		delivered(t, run(t, prog, f.p1, l4Pkt(vm3MAC, vm1MAC, vm1, vm3, 17, 5000, 53)), f.p3)
		expectDrop(t, d, "sg_ingress", func() runResult { return run(t, prog, f.p1, l4Pkt(vm3MAC, vm1MAC, vm1, vm3, 17, 5000, 54)) })
	})
	t.Run("local: tcp 5432 from a member of web (the sender's identity, known locally)", func(t *testing.T) {
		resetSent(d)
		delivered(t, run(t, prog, f.p1, l4Pkt(vm3MAC, vm1MAC, vm1, vm3, 6, 40010, 5432)), f.p3)
	})
	t.Run("egress: a group without egress rules sends nothing else", func(t *testing.T) {
		expectDrop(t, d, "sg_egress", func() runResult {
			return run(t, prog, f.p2, l4Pkt(gwMAC, vm2MAC, ip4("10.0.2.5"), vm3, 17, 5000, 53))
		})
	})
	t.Run("remote: the sender's identity goes in the VXLAN header", func(t *testing.T) {
		resetSent(d)
		r := run(t, prog, f.p1, l4Pkt(remMAC1, vm1MAC, vm1, ip4("10.0.1.7"), 6, 40020, 8080))
		var tr dvrTunnelRec
		d.objs.TunnelOut.Lookup(uint32(0), &tr)
		if r.verdict != actRedirect || tr.Gbp != idWeb|gbpApplied || fromHost32(tr.Vtep) != peerA {
			t.Errorf("verdict %d, sent to %s with GBP %#x, want %#x", r.verdict, fromHost32(tr.Vtep), tr.Gbp, idWeb|gbpApplied)
		}
	})
	t.Run("remote: icmp from a member of db, by the identity it carries", func(t *testing.T) {
		resetSent(d)
		ping := l4Pkt(vm1MAC, remMAC1, ip4("10.0.1.7"), vm1, 1, 77, 1)
		delivered(t, runTunnelGBP(t, d, peerA, 5001, idRemoteDB|gbpApplied, ping), f.p1)
		expectDrop(t, d, "sg_ingress", func() runResult {
			return runTunnelGBP(t, d, peerA, 5001, idWeb|gbpApplied, l4Pkt(vm1MAC, remMAC1, ip4("10.0.1.7"), vm1, 1, 78, 1))
		})
		expectDrop(t, d, "sg_ingress", func() runResult {
			return runTunnelGBP(t, d, peerA, 5001, 0, l4Pkt(vm1MAC, remMAC1, ip4("10.0.1.7"), vm1, 1, 79, 1))
		})
		// The echo reply goes back out: the connection is tracked.
		resetSent(d)
		r := run(t, prog, f.p1, l4Pkt(remMAC1, vm1MAC, vm1, ip4("10.0.1.7"), 1, 77, 0))
		if r.verdict != actRedirect {
			t.Errorf("echo reply: verdict %d, drops %v", r.verdict, drops(t, d))
		}
	})
	t.Run("remote: a port in two groups is allowed what either allows", func(t *testing.T) {
		resetSent(d)
		delivered(t, runTunnelGBP(t, d, peerA, 5001, idBoth|gbpApplied, l4Pkt(vm3MAC, remMAC1, ip4("10.0.1.7"), vm3, 6, 40030, 5432)), f.p3)
		delivered(t, runTunnelGBP(t, d, peerA, 5001, idBoth|gbpApplied, l4Pkt(vm1MAC, remMAC1, ip4("10.0.1.7"), vm1, 1, 80, 1)), f.p1)
	})
	t.Run("pending: an egress rule naming a group the sender cannot see is checked by the receiver", func(t *testing.T) {
		resetSent(d)
		f.learn(t, ip4("10.0.1.8"), peerA, 5001, remMAC1)
		r := run(t, prog, f.p2, l4Pkt(gwMAC, vm2MAC, ip4("10.0.2.5"), ip4("10.0.1.8"), 6, 40040, 443))
		var tr dvrTunnelRec
		d.objs.TunnelOut.Lookup(uint32(0), &tr)
		if r.verdict != actRedirect || tr.Gbp != idOps {
			t.Fatalf("verdict %d GBP %#x, want %#x without the policy applied bit", r.verdict, tr.Gbp, idOps)
		}
		// At a receiver: to a web member it is allowed, to a db member
		// the sender's own egress rule refuses it.
		resetSent(d)
		delivered(t, runTunnelGBP(t, d, peerA, 5001, idOps, l4Pkt(vm1MAC, remMAC1, ip4("10.0.2.9"), vm1, 6, 40041, 443)), f.p1)
		expectDrop(t, d, "sg_egress", func() runResult {
			return runTunnelGBP(t, d, peerA, 5001, idOps, l4Pkt(vm3MAC, remMAC1, ip4("10.0.2.9"), vm3, 6, 40042, 443))
		})
	})
	t.Run("a removed rule cuts the connections it allowed at their next packet", func(t *testing.T) {
		resetSent(d)
		pkt := l4Pkt(vm1MAC, vm3MAC, vm3, vm1, 6, 40050, 80)
		delivered(t, run(t, prog, f.p3, pkt), f.p1)
		rules := f.state.SG[0].Rules
		f.state.SG[0].Rules = append(rules[:1:1], rules[2:]...) // web's tcp 80-81
		if _, err := d.Apply(f.state); err != nil {
			t.Fatal(err)
		}
		expectDrop(t, d, "sg_ingress", func() runResult { return run(t, prog, f.p3, pkt) })
		if n := ctEntries(t, d, f.p1, 6, 40050); n != 0 {
			t.Errorf("%d tracked connections to vm1:80 left", n)
		}
		// Others it still allows survive the check (icmp from db).
		resetSent(d)
		delivered(t, runTunnelGBP(t, d, peerA, 5001, idRemoteDB|gbpApplied, l4Pkt(vm1MAC, remMAC1, ip4("10.0.1.7"), vm1, 1, 77, 1)), f.p1)
		f.state.SG[0].Rules = rules
		if _, err := d.Apply(f.state); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("a sender moved out of the group is refused at its next packet", func(t *testing.T) {
		resetSent(d)
		conn := func(gbp uint32) []byte { return l4Pkt(vm3MAC, remMAC1, ip4("10.0.1.7"), vm3, 6, 40060, 5432) }
		delivered(t, runTunnelGBP(t, d, peerA, 5001, idWeb|gbpApplied, conn(idWeb)), f.p3)
		// Its host now sends another identity (db only): not in web.
		expectDrop(t, d, "sg_ingress", func() runResult { return runTunnelGBP(t, d, peerA, 5001, idRemoteDB|gbpApplied, conn(idRemoteDB)) })
	})
	t.Run("an open VPC: no groups", func(t *testing.T) {
		f.state.VPCs[0].Flags &^= pipeline.VPCSGEgress | pipeline.VPCSGIngress
		if _, err := d.Apply(f.state); err != nil {
			t.Fatal(err)
		}
		resetSent(d)
		delivered(t, run(t, prog, f.p3, l4Pkt(vm1MAC, vm3MAC, vm3, vm1, 6, 40070, 22)), f.p1)
	})
}

// ctEntries counts tracked connections at zone (a port) from or to a
// port.
func ctEntries(t *testing.T, d *Datapath, zone int, proto uint8, dport uint16) int {
	t.Helper()
	n := 0
	var k dvrCtKey
	var v dvrCtEntry
	it := d.objs.CtV1.Iterate()
	for it.Next(&k, &v) {
		if int(k.Zone) == zone && k.Proto == proto && (k.Dport == htons(dport) || k.Sport == htons(dport)) {
			n++
		}
	}
	return n
}

// A group holds up to 1,024 rules a direction, in chunks of 64: a new
// connection is allowed by a rule in the last chunk, denied past it, and
// a 1,025th rule is refused. The same rules in another order write
// nothing (and keep tracked connections' generation). (What an
// established connection costs with 10 and 1,000 rules is measured by
// make bench's security group section.)
func TestSecurityGroupRulesInChunks(t *testing.T) {
	f := newFixture(t, false)
	d := f.d
	sgState(f)
	vm1, vm3 := ip4("10.0.1.5"), ip4("10.0.1.6")
	apply := func(extra int, reverse bool) (ApplyStats, error) {
		st := *f.state
		st.SG = []SGVPC{f.state.SG[0]}
		rules := []SGRule{}
		for i := 0; i < extra; i++ {
			rules = append(rules, SGRule{Group: gWeb, Ingress: true, Proto: 17, PortMin: uint16(1000 + i), PortMax: uint16(1000 + i), Prefix: prefix("10.9.0.0/16")})
		}
		// Last in a group's order (protocol, then ports): udp 60000.
		rules = append(rules, SGRule{Group: gWeb, Ingress: true, Proto: 17, PortMin: 60000, PortMax: 60000, Prefix: prefix("10.0.0.0/8")})
		rules = append(rules, f.state.SG[0].Rules...)
		if reverse {
			slices.Reverse(rules)
		}
		st.SG[0].Rules = rules
		return d.Apply(&st)
	}
	// web has 3 ingress rules of its own: 1,020 + 1 + 3 = 1,024.
	if _, err := apply(MaxSGRules-4, false); err != nil {
		t.Fatal(err)
	}
	if n, _ := d.sgRulesT().dump(); len(n) < 16 {
		t.Errorf("%d rule chunks in the map, want web's ingress in 16 and more", len(n))
	}
	if v := run(t, d.objs.PortIngress, f.p3, l4Pkt(vm1MAC, vm3MAC, vm3, vm1, 17, 41000, 60000)).verdict; v != actRedirect {
		t.Errorf("udp 60000 from 10.0.1.6, allowed by the group's 1,024th rule: verdict %d", v)
	}
	if v := run(t, d.objs.PortIngress, f.p3, l4Pkt(vm1MAC, vm3MAC, vm3, vm1, 17, 41000, 60001)).verdict; v == actRedirect {
		t.Errorf("udp 60001, which no rule allows, passed")
	}
	var gen uint32
	d.objs.SgGenV1.Lookup(uint32(0), &gen)
	if st, err := apply(MaxSGRules-4, true); err != nil || st.Written != 0 {
		t.Errorf("the same rules reversed: %+v, %v; want nothing written", st, err)
	}
	var gen2 uint32
	d.objs.SgGenV1.Lookup(uint32(0), &gen2)
	if gen2 != gen {
		t.Errorf("the policy generation moved from %d to %d with no change", gen, gen2)
	}
	if _, err := apply(MaxSGRules-3, false); err == nil || !strings.Contains(err.Error(), "more than 1024 rules") {
		t.Errorf("1,025 rules: %v, want refused", err)
	}
}

// A hub forwards the sender's identity as it came, the plain forward
// and the lesson's clone alike; its lesson carries none.
func TestHubForwardsIdentity(t *testing.T) {
	f := newFixture(t, true)
	d := f.d
	sgState(f)
	if _, err := d.Apply(f.state); err != nil {
		t.Fatal(err)
	}
	pkt := l4Pkt(remMAC2, vm2MAC, ip4("10.0.2.5"), ip4("10.0.2.7"), 6, 40000, 80)
	// First: the clone goes on to peerB (recorded first), the lesson back
	// to peerA (recorded last, without an identity).
	r := runTunnelGBP(t, d, peerA, 5002, idWeb|gbpApplied, pkt)
	var tr dvrTunnelRec
	d.objs.TunnelOut.Lookup(uint32(0), &tr)
	if r.verdict != actRedirect || fromHost32(tr.Vtep) != peerA || tr.Gbp != 0 {
		t.Errorf("the lesson went to %s with GBP %#x (verdict %d)", fromHost32(tr.Vtep), tr.Gbp, r.verdict)
	}
	// Then, taught: a plain forward with the field as it came.
	resetSent(d)
	r = runTunnelGBP(t, d, peerA, 5002, idOps, pkt)
	d.objs.TunnelOut.Lookup(uint32(0), &tr)
	if r.verdict != actRedirect || fromHost32(tr.Vtep) != peerB || tr.Gbp != idOps {
		t.Errorf("forwarded to %s with GBP %#x, want %s with %#x (verdict %d)", fromHost32(tr.Vtep), tr.Gbp, peerB, idOps, r.verdict)
	}
}

// A RST ends a tracked connection; a FIN leaves it a moment for the last
// ACKs.
func TestTrackedTCPEnds(t *testing.T) {
	f := sgFixture(t)
	d := f.d
	vm1, vm3 := ip4("10.0.1.5"), ip4("10.0.1.6")
	open := func(sport uint16) {
		if r := run(t, d.objs.PortIngress, f.p3, l4Pkt(vm1MAC, vm3MAC, vm3, vm1, 6, sport, 80)); r.verdict != actRedirect {
			t.Fatalf("open: verdict %d", r.verdict)
		}
	}
	withFlags := func(pkt []byte, flags byte) []byte { pkt[14+20+13] = flags; return pkt }
	open(42000)
	if n := ctEntries(t, d, f.p1, 6, 42000); n != 1 {
		t.Fatalf("%d entries for the connection", n)
	}
	// vm1 resets it: the RST goes out, the entry goes.
	if r := run(t, d.objs.PortIngress, f.p1, withFlags(l4Pkt(vm3MAC, vm1MAC, vm1, vm3, 6, 80, 42000), 0x14)); r.verdict != actRedirect {
		t.Errorf("RST: verdict %d", r.verdict)
	}
	if n := ctEntries(t, d, f.p1, 6, 42000); n != 0 {
		t.Errorf("%d entries after a RST", n)
	}
	// A FIN shortens its life to the closing timeout.
	open(42001)
	run(t, d.objs.PortIngress, f.p3, withFlags(l4Pkt(vm1MAC, vm3MAC, vm3, vm1, 6, 42001, 80), 0x11))
	var k dvrCtKey
	var v dvrCtEntry
	found := false
	for it := d.objs.CtV1.Iterate(); it.Next(&k, &v); {
		if int(k.Zone) == f.p1 && k.Sport == htons(42001) {
			found = v.Flags&0x2 != 0
		}
	}
	if !found {
		t.Error("no closing entry after a FIN")
	}
}

// The programs read the coarse clock, which lags the fine one by up to a
// tick: an entry stamped ahead of it (by an older build's programs,
// which read the fine clock) is a live connection's, neither checked
// again nor stamped anew.
func TestTrackedConnectionStampedAheadOfTheClock(t *testing.T) {
	f := sgFixture(t)
	d := f.d
	vm1, vm3 := ip4("10.0.1.5"), ip4("10.0.1.6")
	if r := run(t, d.objs.PortIngress, f.p3, l4Pkt(vm1MAC, vm3MAC, vm3, vm1, 6, 42100, 80)); r.verdict != actRedirect {
		t.Fatalf("open: verdict %d", r.verdict)
	}
	ahead := monotonic() + uint64(time.Second)
	var k dvrCtKey
	var v dvrCtEntry
	var keys []dvrCtKey
	for it := d.objs.CtV1.Iterate(); it.Next(&k, &v); {
		if k.Sport == htons(42100) || k.Dport == htons(42100) {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		if err := d.objs.CtV1.Lookup(k, &v); err != nil {
			t.Fatal(err)
		}
		v.SeenNs = ahead
		if err := d.objs.CtV1.Put(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if len(keys) == 0 {
		t.Fatal("the connection is not tracked")
	}
	if r := run(t, d.objs.PortIngress, f.p1, l4Pkt(vm3MAC, vm1MAC, vm1, vm3, 6, 80, 42100)); r.verdict != actRedirect {
		t.Fatalf("the reply: verdict %d", r.verdict)
	}
	for _, k := range keys {
		if err := d.objs.CtV1.Lookup(k, &v); err != nil || v.SeenNs != ahead {
			t.Errorf("zone %d: the entry was stamped anew (%d, %v): taken for an expired one", k.Zone, int64(v.SeenNs-ahead), err)
		}
	}
}

// A VM that migrated here brings TCP connections its old host tracked:
// while its port's pickup window is open, a segment without SYN that
// its rules allow only the other way is taken for such a connection's
// and tracked; a SYN, a port whose rules allow neither way, or a closed
// window are not.
func TestMigratedConnectionsArePickedUp(t *testing.T) {
	f := sgFixture(t)
	d := f.d
	f.learn(t, ip4("10.0.1.7"), peerA, 5001, remMAC1)
	vm1, vm2, peer := ip4("10.0.1.5"), ip4("10.0.2.5"), ip4("10.0.1.7")
	from := func(dst net.HardwareAddr, to netip.Addr, sport uint16, syn bool) []byte {
		p := l4Pkt(dst, remMAC1, peer, to, 6, sport, 40000)
		if syn {
			p[14+20+13] = 0x02
		}
		return p
	}
	before := counter(t, d, "ct_pickup")
	resetSent(d)
	// web allows tcp 40000 in from nobody, and anything out.
	if r := runTunnelGBP(t, d, peerA, 5001, idRemoteDB|gbpApplied, from(vm1MAC, vm1, 5201, false)); r.verdict != actRedirect {
		t.Errorf("a mid-stream segment to a new port whose egress rules allow the connection: verdict %d, drops %v", r.verdict, drops(t, d))
	}
	if n := counter(t, d, "ct_pickup") - before; n != 1 {
		t.Errorf("ct_pickup moved by %d, want 1", n)
	}
	expectDrop(t, d, "sg_ingress", func() runResult {
		return runTunnelGBP(t, d, peerA, 5001, idRemoteDB|gbpApplied, from(vm1MAC, vm1, 5202, true))
	})
	// ops sends only tcp 443 to web: nothing to pick up at vm2.
	expectDrop(t, d, "sg_ingress", func() runResult {
		return runTunnelGBP(t, d, peerA, 5002, idRemoteDB|gbpApplied, l4Pkt(vm2MAC, gwMAC, peer, vm2, 6, 5201, 40000))
	})
	closePickUp(t, d)
	expectDrop(t, d, "sg_ingress", func() runResult {
		return runTunnelGBP(t, d, peerA, 5001, idRemoteDB|gbpApplied, from(vm1MAC, vm1, 5203, false))
	})
	// What was picked up stays tracked, both ways.
	if r := runTunnelGBP(t, d, peerA, 5001, idRemoteDB|gbpApplied, from(vm1MAC, vm1, 5201, false)); r.verdict != actRedirect {
		t.Errorf("the picked-up connection, window closed: verdict %d", r.verdict)
	}
	if r := run(t, d.objs.PortIngress, f.p1, l4Pkt(remMAC1, vm1MAC, vm1, peer, 6, 40000, 5201)); r.verdict != actRedirect {
		t.Errorf("its other direction: verdict %d, drops %v", r.verdict, drops(t, d))
	}
	// A port already here keeps its window through an apply.
	if st, err := d.Apply(f.state); err != nil || st.Written != 0 {
		t.Errorf("apply again: %+v %v, want nothing written", st, err)
	}
}

func counter(t *testing.T, d *Datapath, name string) uint64 {
	t.Helper()
	c, err := d.Counters()
	if err != nil {
		t.Fatal(err)
	}
	return c[name]
}

// TestPortIdentity: a port's identity as its entry holds it; none for
// an interface that is no port.
func TestPortIdentity(t *testing.T) {
	f := sgFixture(t)
	for ifindex, want := range map[int]uint32{f.p1: idWeb, f.p3: idDB, f.p2: idOps} {
		if id, ok, err := f.d.PortIdentity(ifindex); err != nil || !ok || id != want {
			t.Errorf("ifindex %d: identity %d (%v, %v), want %d", ifindex, id, ok, err, want)
		}
	}
	if id, ok, err := f.d.PortIdentity(f.d.vxlan); err != nil || ok {
		t.Errorf("the VXLAN device: identity %d (%v, %v), want none", id, ok, err)
	}
}
