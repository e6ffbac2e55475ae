package dataplane

import (
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// A live-migrated port's SNAT connections follow it (#15): what one
// host's data plane exported, another's imports, and the connection's
// next packet leaves the new host from the same address and port, its
// reply is translated back, and nothing is mapped anew.
func TestSNATHandoffRoundTrip(t *testing.T) {
	var conns []SNATHandoffConn
	var eport, eportUDP uint16
	t.Run("the old host exports", func(t *testing.T) {
		f := snatFixture(t, 2)
		eport = port16(snatOut(t, f, ipPacket(vm3Addr, server, protoTCP, synSeg(40000, 80, ""), 0)).l4, 0)
		eportUDP = port16(snatOut(t, f, ipPacket(vm3Addr, server, protoUDP, udpSeg(5353, 53, "q"), 0)).l4, 0)
		var err error
		if conns, err = f.d.SNATExport(f.p3); err != nil || len(conns) != 2 {
			t.Fatalf("exported %v, %v: want the port's 2 connections", conns, err)
		}
		if other, err := f.d.SNATExport(f.p1); err != nil || len(other) != 0 {
			t.Errorf("another port exported %v, %v", other, err)
		}
	})
	if t.Failed() {
		return
	}
	for _, c := range conns { // as the southbound carries them
		back, err := ParseSNATHandoffConn(c.String())
		if err != nil || back != c {
			t.Fatalf("%q read back as %+v, %v", c.String(), back, err)
		}
	}
	t.Run("the new host imports", func(t *testing.T) {
		f := snatFixture(t, 2)
		// a forged connection outside the port's blocks is refused
		forged := SNATHandoffConn{Proto: protoTCP, Port: 22, Remote: server, RPort: 4444, Ext: snatAddr, EPort: 9000}
		in, skipped, err := f.d.SNATImport(f.p3, append(slices.Clone(conns), forged))
		if err != nil || in != 2 || skipped != 1 {
			t.Fatalf("imported %d, skipped %d, %v: want 2 and the forged one refused", in, skipped, err)
		}
		p := snatOut(t, f, ipPacket(vm3Addr, server, protoTCP, tcpSeg(40000, 80, "mid-stream"), 0))
		if p.src != snatAddr || port16(p.l4, 0) != eport || !l4ok(snatAddr, server, protoTCP, p.l4) {
			t.Errorf("the connection's next segment left from %s:%d, want %s:%d", p.src, port16(p.l4, 0), snatAddr, eport)
		}
		back := snatIn(t, f, ipPacket(server, snatAddr, protoTCP, tcpSeg(80, eport, "reply"), 0))
		if back.dst != vm3Addr || port16(back.l4, 2) != 40000 || !l4ok(server, vm3Addr, protoTCP, back.l4) {
			t.Errorf("the reply went to %s:%d, want %s:40000", back.dst, port16(back.l4, 2), vm3Addr)
		}
		if u := snatOut(t, f, ipPacket(vm3Addr, server, protoUDP, udpSeg(5353, 53, "q2"), 0)); port16(u.l4, 0) != eportUDP {
			t.Errorf("the UDP flow left from port %d, want %d", port16(u.l4, 0), eportUDP)
		}
		if n := counter(t, f.d, "snat_new"); n != 0 {
			t.Errorf("snat_new %d: a handed-off connection was mapped anew", n)
		}
		if in, skipped, _ := f.d.SNATImport(f.p3, conns); in != 0 || skipped != 2 {
			t.Errorf("imported again: %d installed, %d skipped; want none installed", in, skipped)
		}
		if st, err := f.d.SNATGC(DefaultSNATTimeouts); err != nil || st.Live[f.p3] != 2 || st.Removed != 0 {
			t.Errorf("sweep %+v %v: want the 2 handed-off connections live", st, err)
		}
		// The port leaves and comes back (another interface) before a
		// sweep forgot its entries here: they are its own again.
		p4 := veth(t, "p4")
		f.state.SNATPorts[0].Ifindex = p4
		if _, err := f.d.Apply(f.state); err != nil {
			t.Fatal(err)
		}
		if in, skipped, err := f.d.SNATImport(p4, conns); err != nil || in != 2 || skipped != 0 {
			t.Errorf("back under ifindex %d: %d installed, %d skipped, %v; want its 2 connections adopted", p4, in, skipped, err)
		}
		if st, err := f.d.SNATGC(DefaultSNATTimeouts); err != nil || st.Live[p4] != 2 || st.Removed != 0 {
			t.Errorf("sweep %+v %v: want the 2 adopted connections live", st, err)
		}
	})
}

// A departed port's connections outlive its host's hostd (#15): saved
// in the pinned snat_depart_v1, they are read back by a data plane
// loaded again from the same pins, a port saved again replaces what it
// had, and a port forgotten leaves the others'.
func TestSNATDepartedSurviveAReload(t *testing.T) {
	inNetns(t)
	underlay(t, hubIP)
	d := loadTest(t, Config{VTEP: hubIP})
	at := time.UnixMilli(time.Now().UnixMilli())
	conns := []SNATHandoffConn{
		{Proto: protoTCP, Port: 40000, Remote: server, RPort: 80, Ext: snatAddr, EPort: 1030},
		{Proto: protoUDP, Port: 5353, Remote: server, RPort: 53, Ext: snatAddr, EPort: 1031, Closing: true},
	}
	long := strings.Repeat("p", 64) // the schema's longest port name
	before := []SNATHandoffConn{{Proto: protoTCP, Port: 41000, Remote: server, RPort: 443, Ext: snatAddr, EPort: 1029}}
	if err := d.SNATKeepDeparted("vm1", at.Add(-time.Minute), before); err != nil {
		t.Fatal(err)
	}
	if err := d.SNATKeepDeparted("vm1", at, conns); err != nil { // replaces
		t.Fatal(err)
	}
	if err := d.SNATKeepDeparted(long, at.Add(time.Second), conns[1:]); err != nil {
		t.Fatal(err)
	}
	cfg := d.cfg
	d.Close()
	d2, err := Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d2.Destroy() })
	got, err := d2.SNATDeparted()
	if err != nil {
		t.Fatal(err)
	}
	sortConns := func(cs []SNATHandoffConn) []SNATHandoffConn {
		slices.SortFunc(cs, func(a, b SNATHandoffConn) int { return int(a.Port) - int(b.Port) })
		return cs
	}
	want := map[string]SNATDeparture{"vm1": {At: at, Conns: conns}, long: {At: at.Add(time.Second), Conns: conns[1:]}}
	if len(got) != len(want) {
		t.Fatalf("read back %v, want %v", got, want)
	}
	for port, w := range want {
		g := got[port]
		if !g.At.Equal(w.At) || !slices.Equal(sortConns(g.Conns), sortConns(slices.Clone(w.Conns))) {
			t.Errorf("%s read back as %+v, want %+v", port, g, w)
		}
	}
	if err := d2.SNATForgetDeparted("vm1"); err != nil {
		t.Fatal(err)
	}
	if got, err := d2.SNATDeparted(); err != nil || len(got) != 1 || len(got[long].Conns) != 1 {
		t.Errorf("after forgetting vm1: %v, %v; want only %s's", got, err, long)
	}
}

// What saving a departed port's connections costs the reconcile that
// removes the port, at a port's quota (32,768), and reading them back
// and forgetting them. A measurement, not a check: it runs only when
// asked, COURIER_MEASURE=1 go test ./dataplane -run TestSNATDepartedCost -v.
func TestSNATDepartedCost(t *testing.T) {
	if os.Getenv("COURIER_MEASURE") == "" {
		t.Skip("a measurement: set COURIER_MEASURE=1")
	}
	inNetns(t)
	underlay(t, hubIP)
	d := loadTest(t, Config{VTEP: hubIP})
	var conns []SNATHandoffConn
	for i := range 32768 {
		conns = append(conns, SNATHandoffConn{Proto: protoTCP, Port: uint16(10000 + i), Remote: netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)}),
			RPort: 80, Ext: snatAddr, EPort: uint16(1024 + i)})
	}
	for range 3 {
		start := time.Now()
		if err := d.SNATKeepDeparted("vm1", time.Now(), conns); err != nil {
			t.Fatal(err)
		}
		kept := time.Since(start)
		start = time.Now()
		got, err := d.SNATDeparted()
		if err != nil || len(got["vm1"].Conns) != len(conns) {
			t.Fatalf("read back %d, %v", len(got["vm1"].Conns), err)
		}
		read := time.Since(start)
		start = time.Now()
		if err := d.SNATForgetDeparted("vm1"); err != nil {
			t.Fatal(err)
		}
		t.Logf("%d connections: saved in %v, read back in %v, forgotten in %v", len(conns), kept.Round(time.Millisecond),
			read.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	}
}

// A datagram flow the migrated VM sends on before its handoff arrives is
// mapped anew from another port; the handed-over mapping, the one the
// far end knows, takes its place, and the brief one's reply entry goes.
// A TCP connection's is never replaced: only its SYN maps one.
func TestSNATHandoffReplacesADatagramFlowMappedBeforeIt(t *testing.T) {
	f := snatFixture(t, 2)
	early := port16(snatOut(t, f, ipPacket(vm3Addr, server, protoUDP, udpSeg(5353, 53, "too early"), 0)).l4, 0)
	known := early ^ 1 // in the same block
	tcpEarly := port16(snatOut(t, f, ipPacket(vm3Addr, server, protoTCP, synSeg(40000, 80, ""), 0)).l4, 0)
	conns := []SNATHandoffConn{
		{Proto: protoUDP, Port: 5353, Remote: server, RPort: 53, Ext: snatAddr, EPort: known},
		{Proto: protoTCP, Port: 40000, Remote: server, RPort: 80, Ext: snatAddr, EPort: tcpEarly ^ 2},
	}
	if in, skipped, err := f.d.SNATImport(f.p3, conns); err != nil || in != 1 || skipped != 1 {
		t.Fatalf("imported %d, skipped %d, %v: want the datagram flow's in place of its early mapping, the TCP one kept", in, skipped, err)
	}
	if u := snatOut(t, f, ipPacket(vm3Addr, server, protoUDP, udpSeg(5353, 53, "next"), 0)); port16(u.l4, 0) != known {
		t.Errorf("the flow's next datagram left from port %d, want the handed-over %d", port16(u.l4, 0), known)
	}
	if back := snatIn(t, f, ipPacket(server, snatAddr, protoUDP, udpSeg(53, known, "answer"), 0)); back.dst != vm3Addr || port16(back.l4, 2) != 5353 {
		t.Errorf("an answer to port %d went to %s:%d", known, back.dst, port16(back.l4, 2))
	}
	r := runTunnel(t, f.d, gwVTEP, 5001, append(ethHdr(vm3MAC, gwMAC, 0x0800), ipPacket(server, snatAddr, protoUDP, udpSeg(53, early, "stale"), 0)...))
	if _, _, ifx, _ := sent(t, f.d); r.verdict == actRedirect && ifx == f.p3 {
		t.Errorf("an answer to the early mapping's port %d was still delivered to vm3", early)
	}
	if p := snatOut(t, f, ipPacket(vm3Addr, server, protoTCP, tcpSeg(40000, 80, "data"), 0)); port16(p.l4, 0) != tcpEarly {
		t.Errorf("the TCP connection left from port %d, want its own %d", port16(p.l4, 0), tcpEarly)
	}
}
