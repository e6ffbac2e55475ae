package dataplane

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// DHCP answered in the kernel (#13): requests built and answers read by
// a DHCP library, every answer's headers and options checked.

var bcastMAC = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// dhcpFixture is vmFacingFixture with vm1 given its DHCP options.
func dhcpFixture(t *testing.T) *fixture {
	f := vmFacingFixture(t, Config{})
	f.state.Ports[0].DHCP = &DHCP{
		Subnet: f.subnet1, Router: ip4("10.0.1.1"), MTU: 1450,
		DNS:    []netip.Addr{ip4("10.0.1.2"), ip4("192.0.2.53")},
		Domain: "blue.courier.internal", Hostname: "vm1",
		Routes: []netip.Prefix{netip.MustParsePrefix("192.168.0.0/16")},
		Lease:  12 * time.Hour,
	}
	if _, err := f.d.Apply(f.state); err != nil {
		t.Fatal(err)
	}
	return f
}

// dhcpFrame wraps a DHCP message from src to dst in Ethernet, IPv4 and UDP
// 68 → 67 as a client sends it.
func dhcpFrame(m *dhcpv4.DHCPv4, ethDst, ethSrc net.HardwareAddr, src, dst netip.Addr) []byte {
	payload := m.ToBytes()
	pkt := udpPkt(ethDst, ethSrc, src, dst, 64, len(payload))
	binary.BigEndian.PutUint16(pkt[34:], 68)
	binary.BigEndian.PutUint16(pkt[36:], 67)
	copy(pkt[42:], payload)
	return pkt
}

func dhcpMsg(t *testing.T, typ dhcpv4.MessageType, chaddr net.HardwareAddr, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	mods = append([]dhcpv4.Modifier{dhcpv4.WithMessageType(typ), dhcpv4.WithHwAddr(chaddr),
		dhcpv4.WithTransactionID(dhcpv4.TransactionID{1, 2, 3, 4}),
		dhcpv4.WithRequestedOptions(dhcpv4.OptionSubnetMask, dhcpv4.OptionRouter, dhcpv4.OptionInterfaceMTU)}, mods...)
	m, err := dhcpv4.New(mods...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// dhcpAnswer checks the frame that went back to vm1: Ethernet from the
// gateway to ethDst, IPv4 from the gateway to ipDst with a right checksum
// and lengths, UDP 67 → 68; and returns the DHCP message in it.
func dhcpAnswer(t *testing.T, out []byte, ethDst net.HardwareAddr, ipDst netip.Addr) *dhcpv4.DHCPv4 {
	t.Helper()
	if !bytes.Equal(out[0:6], ethDst) || !bytes.Equal(out[6:12], gwMAC) || binary.BigEndian.Uint16(out[12:]) != 0x0800 {
		t.Fatalf("Ethernet %x, want to %s from the gateway", out[:14], ethDst)
	}
	ip := out[14:34]
	tot := int(binary.BigEndian.Uint16(ip[2:]))
	if ip[0] != 0x45 || ip[9] != 17 || csum(ip) != 0 || tot != dhcpReplyLen-14 {
		t.Errorf("IPv4 header %x (checksum %#x, length %d)", ip, csum(ip), tot)
	}
	if src, dst := netip.AddrFrom4([4]byte(ip[12:16])), netip.AddrFrom4([4]byte(ip[16:20])); src != ip4("10.0.1.1") || dst != ipDst {
		t.Errorf("from %s to %s, want the gateway 10.0.1.1 to %s", src, dst, ipDst)
	}
	udp := out[34:42]
	if sp, dp, n := binary.BigEndian.Uint16(udp), binary.BigEndian.Uint16(udp[2:]), binary.BigEndian.Uint16(udp[4:]); sp != 67 || dp != 68 || int(n) != tot-20 {
		t.Errorf("UDP %d → %d length %d", sp, dp, n)
	}
	m, err := dhcpv4.FromBytes(out[42 : 14+tot])
	if err != nil {
		t.Fatalf("answer does not parse: %v", err)
	}
	if m.OpCode != dhcpv4.OpcodeBootReply || m.TransactionID != (dhcpv4.TransactionID{1, 2, 3, 4}) || !bytes.Equal(m.ClientHWAddr, vm1MAC) {
		t.Errorf("op %v xid %v chaddr %s", m.OpCode, m.TransactionID, m.ClientHWAddr)
	}
	if !m.ServerIdentifier().Equal(net.IP{10, 0, 1, 1}) {
		t.Errorf("server identifier %s", m.ServerIdentifier())
	}
	return m
}

const dhcpReplyLen = 14 + 20 + 8 + 236 + 4 + 3 + 6 + dhcpOptsLen

// checkLease checks an OFFER or ACK carries vm1's address and options.
func checkLease(t *testing.T, m *dhcpv4.DHCPv4, typ dhcpv4.MessageType) {
	t.Helper()
	if m.MessageType() != typ || !m.YourIPAddr.Equal(net.IP{10, 0, 1, 5}) {
		t.Errorf("%s for %s, want %s for 10.0.1.5", m.MessageType(), m.YourIPAddr, typ)
	}
	if got := m.SubnetMask(); !bytes.Equal(got, net.CIDRMask(24, 32)) {
		t.Errorf("mask %s", got)
	}
	if r := m.Router(); len(r) != 1 || !r[0].Equal(net.IP{10, 0, 1, 1}) {
		t.Errorf("router %v", r)
	}
	if d := m.DNS(); len(d) != 2 || !d[1].Equal(net.IP{192, 0, 2, 53}) {
		t.Errorf("DNS %v", d)
	}
	if mtu := m.Options.Get(dhcpv4.OptionInterfaceMTU); !bytes.Equal(mtu, []byte{0x05, 0xaa}) {
		t.Errorf("MTU %x, want 1450", mtu)
	}
	if m.HostName() != "vm1" || m.DomainName() != "blue.courier.internal" {
		t.Errorf("hostname %q domain %q", m.HostName(), m.DomainName())
	}
	if l := m.IPAddressLeaseTime(0); l != 12*time.Hour {
		t.Errorf("lease %s", l)
	}
	if r := m.IPAddressRenewalTime(0); r != 6*time.Hour {
		t.Errorf("renewal %s", r)
	}
	rs := m.ClasslessStaticRoute()
	if len(rs) != 2 || rs[0].String() != "route to 192.168.0.0/16 via 10.0.1.1" || rs[1].String() != "route to 0.0.0.0/0 via 10.0.1.1" {
		t.Errorf("classless routes %v", rs)
	}
}

func TestDHCPAnswers(t *testing.T) {
	f := dhcpFixture(t)
	d := f.d
	zero, bcast := netip.IPv4Unspecified(), ip4("255.255.255.255")
	answer := func(pkt []byte) []byte {
		t.Helper()
		resetSent(d)
		before, _ := d.Counters()
		r := run(t, d.objs.PortIngress, f.p1, pkt)
		if _, _, ifx, peer := sent(t, d); r.verdict != actRedirect || ifx != f.p1 || !peer {
			t.Fatalf("verdict %d to %d (peer %v): want the answer back to the VM", r.verdict, ifx, peer)
		}
		if after, _ := d.Counters(); after["dhcp_reply"]-before["dhcp_reply"] != 1 {
			t.Errorf("dhcp_reply counted %d times", after["dhcp_reply"]-before["dhcp_reply"])
		}
		return r.out
	}
	t.Run("DISCOVER gets an OFFER of the declared address, unicast to its MAC", func(t *testing.T) {
		out := answer(dhcpFrame(dhcpMsg(t, dhcpv4.MessageTypeDiscover, vm1MAC), bcastMAC, vm1MAC, zero, bcast))
		checkLease(t, dhcpAnswer(t, out, vm1MAC, ip4("10.0.1.5")), dhcpv4.MessageTypeOffer)
	})
	t.Run("a client asking for broadcast gets it", func(t *testing.T) {
		out := answer(dhcpFrame(dhcpMsg(t, dhcpv4.MessageTypeDiscover, vm1MAC, dhcpv4.WithBroadcast(true)), bcastMAC, vm1MAC, zero, bcast))
		m := dhcpAnswer(t, out, bcastMAC, bcast)
		if !m.IsBroadcast() {
			t.Error("broadcast flag not echoed")
		}
	})
	t.Run("REQUEST of the offer gets an ACK", func(t *testing.T) {
		req := dhcpMsg(t, dhcpv4.MessageTypeRequest, vm1MAC,
			dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IP{10, 0, 1, 5})),
			dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IP{10, 0, 1, 1})))
		checkLease(t, dhcpAnswer(t, answer(dhcpFrame(req, bcastMAC, vm1MAC, zero, bcast)), vm1MAC, ip4("10.0.1.5")), dhcpv4.MessageTypeAck)
	})
	t.Run("renewal, unicast to the gateway, gets an ACK unicast back", func(t *testing.T) {
		req := dhcpMsg(t, dhcpv4.MessageTypeRequest, vm1MAC, dhcpv4.WithClientIP(net.IP{10, 0, 1, 5}))
		m := dhcpAnswer(t, answer(dhcpFrame(req, gwMAC, vm1MAC, ip4("10.0.1.5"), ip4("10.0.1.1"))), vm1MAC, ip4("10.0.1.5"))
		checkLease(t, m, dhcpv4.MessageTypeAck)
	})
	t.Run("REQUEST for another address gets a NAK, broadcast, with no lease", func(t *testing.T) {
		req := dhcpMsg(t, dhcpv4.MessageTypeRequest, vm1MAC, dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IP{10, 0, 1, 6})))
		m := dhcpAnswer(t, answer(dhcpFrame(req, bcastMAC, vm1MAC, zero, bcast)), bcastMAC, bcast)
		if m.MessageType() != dhcpv4.MessageTypeNak || !m.YourIPAddr.IsUnspecified() || m.Options.Has(dhcpv4.OptionIPAddressLeaseTime) || m.Options.Has(dhcpv4.OptionRouter) {
			t.Errorf("%s: %s", m.MessageType(), m.Summary())
		}
	})
	t.Run("INFORM gets its options without a lease", func(t *testing.T) {
		req := dhcpMsg(t, dhcpv4.MessageTypeInform, vm1MAC, dhcpv4.WithClientIP(net.IP{10, 0, 1, 5}))
		m := dhcpAnswer(t, answer(dhcpFrame(req, gwMAC, vm1MAC, ip4("10.0.1.5"), ip4("10.0.1.1"))), vm1MAC, ip4("10.0.1.5"))
		if m.MessageType() != dhcpv4.MessageTypeAck || !m.YourIPAddr.IsUnspecified() {
			t.Errorf("%s yiaddr %s", m.MessageType(), m.YourIPAddr)
		}
		for _, o := range []dhcpv4.OptionCode{dhcpv4.OptionIPAddressLeaseTime, dhcpv4.OptionRenewTimeValue, dhcpv4.OptionRebindingTimeValue} {
			if m.Options.Has(o) {
				t.Errorf("INFORM's answer carries %s", o)
			}
		}
		if r := m.Router(); len(r) != 1 {
			t.Errorf("router %v", r)
		}
	})
	quiet := func(t *testing.T, pkt []byte) {
		t.Helper()
		resetSent(d)
		before := drops(t, d)
		if r := run(t, d.objs.PortIngress, f.p1, pkt); r.verdict != actShot {
			t.Errorf("verdict %d, want the request taken", r.verdict)
		}
		for name, v := range drops(t, d) {
			if v != before[name] {
				t.Errorf("counted as drop %s", name)
			}
		}
		if _, _, ifx, _ := sent(t, d); ifx != 0 {
			t.Errorf("sent to %d", ifx)
		}
	}
	t.Run("a REQUEST to another server is taken and not answered", func(t *testing.T) {
		req := dhcpMsg(t, dhcpv4.MessageTypeRequest, vm1MAC,
			dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IP{10, 0, 1, 5})),
			dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IP{10, 0, 1, 254})))
		quiet(t, dhcpFrame(req, bcastMAC, vm1MAC, zero, bcast))
	})
	t.Run("RELEASE and DECLINE are taken", func(t *testing.T) {
		quiet(t, dhcpFrame(dhcpMsg(t, dhcpv4.MessageTypeRelease, vm1MAC, dhcpv4.WithClientIP(net.IP{10, 0, 1, 5})), gwMAC, vm1MAC, ip4("10.0.1.5"), ip4("10.0.1.1")))
		quiet(t, dhcpFrame(dhcpMsg(t, dhcpv4.MessageTypeDecline, vm1MAC), bcastMAC, vm1MAC, zero, bcast))
	})
	t.Run("anything else is refused by name", func(t *testing.T) {
		for _, typ := range []dhcpv4.MessageType{dhcpv4.MessageTypeOffer, dhcpv4.MessageType(9), dhcpv4.MessageType(10)} {
			expectDrop(t, d, "dhcp_unsupported", func() runResult {
				return run(t, d.objs.PortIngress, f.p1, dhcpFrame(dhcpMsg(t, typ, vm1MAC), bcastMAC, vm1MAC, zero, bcast))
			})
		}
	})
	t.Run("a client naming another MAC is a spoof", func(t *testing.T) {
		expectDrop(t, d, "spoof_mac", func() runResult {
			return run(t, d.objs.PortIngress, f.p1, dhcpFrame(dhcpMsg(t, dhcpv4.MessageTypeDiscover, vm3MAC), bcastMAC, vm1MAC, zero, bcast))
		})
	})
	t.Run("a port without DHCP options is refused", func(t *testing.T) {
		expectDrop(t, d, "dhcp_no_address", func() runResult {
			return run(t, d.objs.PortIngress, f.p3, dhcpFrame(dhcpMsg(t, dhcpv4.MessageTypeDiscover, vm3MAC), bcastMAC, vm3MAC, zero, bcast))
		})
	})
	t.Run("from 0.0.0.0 only DHCP passes", func(t *testing.T) {
		expectDrop(t, d, "spoof_ip", func() runResult {
			return run(t, d.objs.PortIngress, f.p1, udpPkt(bcastMAC, vm1MAC, zero, bcast, 64, 300))
		})
		// From port 68 to 67, but to where no DHCP answer is: it would
		// be forwarded as it came (to a VM, routed, out through NAT).
		for what, dst := range map[string]netip.Addr{"to another VM": ip4("10.0.1.6"), "off the vxnet": ip4("8.8.8.8")} {
			t.Run(what, func(t *testing.T) {
				expectDrop(t, d, "spoof_ip", func() runResult {
					return run(t, d.objs.PortIngress, f.p1, dhcpFrame(dhcpMsg(t, dhcpv4.MessageTypeDiscover, vm1MAC), gwMAC, vm1MAC, zero, dst))
				})
			})
		}
		t.Run("a fragment", func(t *testing.T) {
			frag := dhcpFrame(dhcpMsg(t, dhcpv4.MessageTypeDiscover, vm1MAC), bcastMAC, vm1MAC, zero, bcast)
			binary.BigEndian.PutUint16(frag[20:], 0x2000) // MF
			binary.BigEndian.PutUint16(frag[24:], 0)
			binary.BigEndian.PutUint16(frag[24:], csum(frag[14:34]))
			expectDrop(t, d, "spoof_ip", func() runResult { return run(t, d.objs.PortIngress, f.p1, frag) })
		})
	})
	t.Run("malformed requests are counted as such", func(t *testing.T) {
		good := dhcpFrame(dhcpMsg(t, dhcpv4.MessageTypeDiscover, vm1MAC), bcastMAC, vm1MAC, zero, bcast)
		cookie := append([]byte{}, good...)
		cookie[42+236] ^= 0xff
		notype := dhcpFrame(dhcpMsg(t, dhcpv4.MessageTypeDiscover, vm1MAC, dhcpv4.WithoutOption(dhcpv4.OptionDHCPMessageType)), bcastMAC, vm1MAC, zero, bcast)
		short := good[:42+100]
		binary.BigEndian.PutUint16(short[16:], uint16(len(short)-14))
		binary.BigEndian.PutUint16(short[24:], 0)
		binary.BigEndian.PutUint16(short[24:], csum(short[14:34]))
		// an option whose length runs past the end: the walk stops and
		// the type it never reached is missing
		overrun := append([]byte{}, good[:42+240]...)
		overrun = append(overrun, 12, 200, 'x', 53, 1, 1)
		for name, pkt := range map[string][]byte{"cookie": cookie, "no type": notype, "short": short, "overrun": overrun} {
			t.Run(name, func(t *testing.T) {
				expectDrop(t, d, "malformed", func() runResult { return run(t, d.objs.PortIngress, f.p1, pkt) })
			})
		}
	})
	t.Run("with DHCP off in the vxnet, requests are refused", func(t *testing.T) {
		f.state.Vxnets[0].Flags &^= vmFacing
		if _, err := d.Apply(f.state); err != nil {
			t.Fatal(err)
		}
		expectDrop(t, d, "dhcp_unsupported", func() runResult {
			return run(t, d.objs.PortIngress, f.p1, dhcpFrame(dhcpMsg(t, dhcpv4.MessageTypeDiscover, vm1MAC), bcastMAC, vm1MAC, zero, bcast))
		})
	})
}

func TestDHCPBlock(t *testing.T) {
	b, err := DHCP{Lease: time.Hour, Router: ip4("10.0.0.1")}.Block()
	if err != nil || len(b) != dhcpOptsLen {
		t.Fatal(len(b), err)
	}
	if b[0] != 51 || b[6] != 58 || b[12] != 59 || b[dhcpLeaseLen] != 3 {
		t.Errorf("lease options not first: %x", b[:24])
	}
	var many []netip.Prefix
	for i := range 40 {
		many = append(many, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i), 0, 0}), 24))
	}
	if _, err := (DHCP{Router: ip4("10.0.0.1"), Routes: many}).Block(); err == nil {
		t.Error("40 routes fit option 121")
	}
}
