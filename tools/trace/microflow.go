package trace

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/courier-sdn/courier/pipeline"
	"github.com/insomniacslk/dhcp/dhcpv4"
)

// A microflow says what packet to trace, in the logical flow language, as
// ovn-trace's does: a conjunction of field == value, with inport naming
// the port it comes from. What it does not say is filled in from the
// port: its MAC and first IP as sources, the destination's MAC (or the
// gateway's, for another vxnet), TTL 64, an ICMP echo request unless a
// TCP or UDP field asks for one.

// packet is a packet's fields, as the logical trace evaluates them.
type packet struct {
	vals  map[string]pipeline.Value
	bools map[string]bool
	// As the logical trace goes: the address being resolved (the
	// destination or a route's next hop), and the vxnet it goes on in.
	target netip.Addr
	dvni   int
	// hairpin: the translation a hairpin makes after sg_egress (nat.go);
	// outside, once made: the packet comes as from outside the VPC.
	hairpin *hairpinNAT
	outside bool
}

func (p *packet) str(f string) string {
	v := p.vals[f]
	return v.String()
}

func (p *packet) addr(f string) netip.Addr { return p.vals[f].Prefix.Addr() }

func (p *packet) setAddr(f string, a netip.Addr) {
	p.vals[f] = pipeline.Value{Prefix: netip.PrefixFrom(a, 32), Kind: pipeline.KIPv4}
}

func (p *packet) setMAC(f, m string) {
	p.vals[f] = pipeline.Value{MAC: strings.ToLower(m), Kind: pipeline.KMAC}
}

func (p *packet) setInt(f string, n int64) { p.vals[f] = pipeline.Value{Int: n, Kind: pipeline.KInt} }

// parseMicroflow reads a microflow into the fields it sets.
func parseMicroflow(s string) (inport string, p *packet, err error) {
	e, err := pipeline.ParseMatch(s)
	if err != nil {
		return "", nil, err
	}
	p = &packet{vals: map[string]pipeline.Value{}, bools: map[string]bool{}}
	terms := []pipeline.Expr{e}
	if and, ok := e.(pipeline.And); ok {
		terms = and
	}
	for _, t := range terms {
		switch x := t.(type) {
		case pipeline.Bool:
			p.bools[x.Field] = true
		case pipeline.Cmp:
			if x.Op != "==" || len(x.Values) != 1 || x.Values[0].Field != "" ||
				(x.Values[0].Kind == pipeline.KIPv4 && x.Values[0].Prefix.Bits() != 32) {
				return "", nil, fmt.Errorf("a microflow sets fields to single values (field == value), not %q", t)
			}
			p.vals[x.Field] = x.Values[0]
		default:
			return "", nil, fmt.Errorf("a microflow is a conjunction of field == value, not %q", t)
		}
	}
	in, ok := p.vals["inport"]
	if !ok {
		return "", nil, fmt.Errorf(`say where the packet comes from: inport == "PORT"`)
	}
	delete(p.vals, "inport")
	return in.Str, p, nil
}

// complete fills in what the microflow left out, from the port and its
// VPC.
func (p *packet) complete(w *world) error {
	pb := w.inport
	if _, ok := p.vals["eth.src"]; !ok {
		p.setMAC("eth.src", pb.MAC)
	}
	src := netip.Addr{}
	if len(pb.IPs) > 0 {
		src = netip.MustParseAddr(pb.IPs[0])
	}
	isARP := p.bools["arp"]
	for f := range p.vals {
		isARP = isARP || strings.HasPrefix(f, "arp.")
	}
	if isARP {
		return p.completeARP(src)
	}
	if err := p.completeIP(w, src); err != nil {
		return err
	}
	p.completeL4()
	return nil
}

// completeARP fills in an ARP request from the port.
func (p *packet) completeARP(src netip.Addr) error {
	p.bools["arp"] = true
	if _, ok := p.vals["arp.tpa"]; !ok {
		return fmt.Errorf("an ARP microflow needs arp.tpa")
	}
	if _, ok := p.vals["arp.op"]; !ok {
		p.setInt("arp.op", 1)
	}
	if _, ok := p.vals["arp.sha"]; !ok {
		p.vals["arp.sha"] = p.vals["eth.src"]
	}
	if _, ok := p.vals["arp.spa"]; !ok && src.IsValid() {
		p.setAddr("arp.spa", src)
	}
	if _, ok := p.vals["eth.dst"]; !ok {
		p.setMAC("eth.dst", "ff:ff:ff:ff:ff:ff")
	}
	return nil
}

// completeIP fills in the IPv4 header and the Ethernet destination: the
// port's address, TTL 64, the gateway's MAC off the vxnet, a DHCP
// client's first DISCOVER.
func (p *packet) completeIP(w *world, src netip.Addr) error {
	p.bools["ip4"] = true
	if p.isDHCP() {
		// a client's first DISCOVER, unless the microflow says otherwise
		p.bools["udp"] = true
		if _, ok := p.vals["ip4.dst"]; !ok {
			p.setAddr("ip4.dst", netip.AddrFrom4([4]byte{255, 255, 255, 255}))
			p.setMAC("eth.dst", "ff:ff:ff:ff:ff:ff")
		}
		if _, ok := p.vals["ip4.src"]; !ok {
			p.setAddr("ip4.src", netip.IPv4Unspecified())
		}
	}
	if _, ok := p.vals["ip4.dst"]; !ok {
		return fmt.Errorf("say where the packet goes: ip4.dst == ADDRESS (or arp.tpa == ADDRESS for ARP)")
	}
	if _, ok := p.vals["ip4.src"]; !ok {
		if !src.IsValid() {
			return fmt.Errorf("port %s has no fixed IP: give ip4.src", w.inport.LogicalPort)
		}
		p.setAddr("ip4.src", src)
	}
	if _, ok := p.vals["ip.ttl"]; !ok {
		p.setInt("ip.ttl", 64)
	}
	if _, ok := p.vals["eth.dst"]; !ok {
		dst := p.addr("ip4.dst")
		cidr, err := netip.ParsePrefix(deref(w.vxnet.Cidr))
		switch b, known := w.lookup(dst); {
		case err == nil && !cidr.Contains(dst):
			p.setMAC("eth.dst", w.vxnet.GatewayMAC)
		case known:
			p.setMAC("eth.dst", b.mac)
		default:
			p.setMAC("eth.dst", "ff:ff:ff:ff:ff:ff") // unresolved: the DVR routes by IP
		}
	}
	return nil
}

// completeL4 says the protocol (from ip.proto, tcp/udp, or the fields
// named; ICMP echo otherwise) and fills in its defaults.
func (p *packet) completeL4() {
	proto := int64(1)
	for f := range p.vals {
		switch {
		case strings.HasPrefix(f, "tcp."):
			proto = 6
		case strings.HasPrefix(f, "udp."):
			proto = 17
		}
	}
	if p.bools["tcp"] {
		proto = 6
	} else if p.bools["udp"] {
		proto = 17
	}
	if v, ok := p.vals["ip.proto"]; ok {
		proto = v.Int
	}
	p.setInt("ip.proto", proto)
	switch proto {
	case 1:
		p.bools["icmp4"] = true
		if _, ok := p.vals["icmp4.type"]; !ok {
			p.setInt("icmp4.type", 8)
		}
	case 6:
		p.bools["tcp"] = true
		p.bools["tcp.syn"] = true // bytes() sends a SYN
		p.defaultPorts("tcp")
	case 17:
		p.bools["udp"] = true
		p.defaultPorts("udp")
	}
}

func (p *packet) defaultPorts(l4 string) {
	if _, ok := p.vals[l4+".src"]; !ok {
		p.setInt(l4+".src", 40000)
	}
	if _, ok := p.vals[l4+".dst"]; !ok {
		p.setInt(l4+".dst", 80)
	}
}

// bytes is the packet as it leaves the VM.
func (p *packet) bytes() []byte {
	mac := func(f string) []byte { m, _ := net.ParseMAC(p.vals[f].MAC); return m }
	eth := make([]byte, 14)
	copy(eth[0:6], mac("eth.dst"))
	copy(eth[6:12], mac("eth.src"))
	if p.bools["arp"] {
		binary.BigEndian.PutUint16(eth[12:], 0x0806)
		a := make([]byte, 28)
		binary.BigEndian.PutUint16(a[0:], 1)
		binary.BigEndian.PutUint16(a[2:], 0x0800)
		a[4], a[5] = 6, 4
		binary.BigEndian.PutUint16(a[6:], uint16(p.vals["arp.op"].Int))
		copy(a[8:14], mac("arp.sha"))
		spa, tpa := p.addr("arp.spa").As4(), p.addr("arp.tpa").As4()
		if p.addr("arp.spa").IsValid() {
			copy(a[14:18], spa[:])
		}
		copy(a[24:28], tpa[:])
		return append(eth, a...)
	}
	binary.BigEndian.PutUint16(eth[12:], 0x0800)
	var l4 []byte
	proto := p.vals["ip.proto"].Int
	switch proto {
	case 6:
		l4 = make([]byte, 20)
		binary.BigEndian.PutUint16(l4[0:], uint16(p.vals["tcp.src"].Int))
		binary.BigEndian.PutUint16(l4[2:], uint16(p.vals["tcp.dst"].Int))
		l4[12] = 5 << 4
		l4[13] = 0x02 // SYN
		binary.BigEndian.PutUint16(l4[14:], 64240)
	case 17:
		l4 = make([]byte, 8+16)
		if p.isDHCP() {
			l4 = append(make([]byte, 8), p.dhcpDiscover()...)
		}
		binary.BigEndian.PutUint16(l4[0:], uint16(p.vals["udp.src"].Int))
		binary.BigEndian.PutUint16(l4[2:], uint16(p.vals["udp.dst"].Int))
		binary.BigEndian.PutUint16(l4[4:], uint16(len(l4)))
	default:
		l4 = make([]byte, 8+16)
		l4[0] = byte(p.vals["icmp4.type"].Int)
		l4[1] = byte(p.vals["icmp4.code"].Int)
		binary.BigEndian.PutUint16(l4[4:], 0x7072) // identifier
		binary.BigEndian.PutUint16(l4[6:], 1)
		binary.BigEndian.PutUint16(l4[2:], checksum(l4, 0))
	}
	ip := make([]byte, 20)
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(l4)))
	binary.BigEndian.PutUint16(ip[6:], 0x4000) // DF
	ip[8] = byte(p.vals["ip.ttl"].Int)
	ip[9] = byte(proto)
	s, d := p.addr("ip4.src").As4(), p.addr("ip4.dst").As4()
	copy(ip[12:16], s[:])
	copy(ip[16:20], d[:])
	binary.BigEndian.PutUint16(ip[10:], checksum(ip, 0))
	if proto == 6 || proto == 17 {
		pseudo := uint32(binary.BigEndian.Uint16(s[0:])) + uint32(binary.BigEndian.Uint16(s[2:])) +
			uint32(binary.BigEndian.Uint16(d[0:])) + uint32(binary.BigEndian.Uint16(d[2:])) + uint32(proto) + uint32(len(l4))
		off := 16
		if proto == 17 {
			off = 6
		}
		binary.BigEndian.PutUint16(l4[off:], checksum(l4, pseudo))
	}
	return append(append(eth, ip...), l4...)
}

func checksum(b []byte, sum uint32) uint16 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// isDHCP: the microflow is a DHCP client's request, UDP 68 → 67.
func (p *packet) isDHCP() bool {
	src, ok1 := p.vals["udp.src"]
	dst, ok2 := p.vals["udp.dst"]
	return ok1 && ok2 && src.Int == 68 && dst.Int == 67
}

// dhcpDiscover is a DISCOVER from the packet's Ethernet source.
func (p *packet) dhcpDiscover() []byte {
	mac, _ := net.ParseMAC(p.vals["eth.src"].MAC)
	m, err := dhcpv4.NewDiscovery(mac)
	if err != nil {
		return nil
	}
	return m.ToBytes()
}

// summary is a one-line account of the packet.
func (p *packet) summary() string {
	if p.bools["arp"] {
		op := "request"
		if p.vals["arp.op"].Int == 2 {
			op = "reply"
		}
		return fmt.Sprintf("ARP %s who-has %s tell %s (%s)", op, p.str("arp.tpa"), p.str("arp.spa"), p.str("eth.src"))
	}
	l4 := fmt.Sprintf("ICMP type %d", p.vals["icmp4.type"].Int)
	switch p.vals["ip.proto"].Int {
	case 6:
		l4 = fmt.Sprintf("TCP %d > %d", p.vals["tcp.src"].Int, p.vals["tcp.dst"].Int)
	case 17:
		l4 = fmt.Sprintf("UDP %d > %d", p.vals["udp.src"].Int, p.vals["udp.dst"].Int)
	}
	return fmt.Sprintf("%s > %s %s ttl %d (%s > %s)", p.str("ip4.src"), p.str("ip4.dst"), l4, p.vals["ip.ttl"].Int,
		p.str("eth.src"), p.str("eth.dst"))
}
