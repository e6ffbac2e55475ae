package e2e

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"github.com/courier-sdn/courier/internal/lab"
)

// What a hostile VM sends, frame by frame: an AF_PACKET socket on the
// VM's eth0 sends whatever Ethernet frames the test builds, as a tenant
// with root in its VM could.

type injector struct {
	fd  int
	mac net.HardwareAddr
}

// injector opens a raw socket on eth0 of a VM.
func (e *env) injector(vm string) *injector {
	e.t.Helper()
	var in injector
	err := lab.Do(e.s.VMNS(vm), func() error {
		l, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: l.Index}); err != nil {
			unix.Close(fd)
			return err
		}
		in = injector{fd: fd, mac: l.HardwareAddr}
		return nil
	})
	if err != nil {
		e.t.Fatalf("raw socket in %s: %v", vm, err)
	}
	e.t.Cleanup(func() { unix.Close(in.fd) })
	return &in
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// send sends one frame; a full socket buffer is waited out.
func (in *injector) send(frame []byte) error {
	for {
		_, err := unix.Write(in.fd, frame)
		if err != unix.ENOBUFS && err != unix.EAGAIN {
			return err
		}
		time.Sleep(50 * time.Microsecond)
	}
}

// flood sends frames from gen(i) for d, as fast as it can, and returns
// how many it sent.
func (in *injector) flood(d time.Duration, gen func(i int) []byte) int {
	end := time.Now().Add(d)
	n := 0
	for ; time.Now().Before(end); n++ {
		for k := 0; k < 64; k++ {
			in.send(gen(n*64 + k))
		}
	}
	return n * 64
}

func ethFrame(dst, src net.HardwareAddr, proto uint16, payload []byte) []byte {
	b := make([]byte, 14, 14+len(payload))
	copy(b[0:6], dst)
	copy(b[6:12], src)
	binary.BigEndian.PutUint16(b[12:], proto)
	return append(b, payload...)
}

var broadcastMAC = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// garp is a gratuitous ARP request: "ip is at mac".
func garp(mac net.HardwareAddr, ip netip.Addr) []byte {
	a := make([]byte, 28)
	binary.BigEndian.PutUint16(a[0:], 1)
	binary.BigEndian.PutUint16(a[2:], 0x0800)
	a[4], a[5] = 6, 4
	binary.BigEndian.PutUint16(a[6:], 1)
	copy(a[8:14], mac)
	s := ip.As4()
	copy(a[14:18], s[:])
	copy(a[24:28], s[:])
	return ethFrame(broadcastMAC, mac, 0x0806, a)
}

// arpRequest asks who has tpa.
func arpRequest(mac net.HardwareAddr, spa, tpa netip.Addr) []byte {
	f := garp(mac, spa)
	t := tpa.As4()
	copy(f[14+24:14+28], t[:])
	return f
}

// udpFrame is an IPv4/UDP frame with an 18-byte payload.
func udpFrame(dst, src net.HardwareAddr, sip, dip netip.Addr) []byte {
	ip := make([]byte, 20+8+18)
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(len(ip)))
	ip[8] = 64
	ip[9] = 17
	s, d := sip.As4(), dip.As4()
	copy(ip[12:16], s[:])
	copy(ip[16:20], d[:])
	binary.BigEndian.PutUint16(ip[10:], ipChecksum(ip[:20]))
	binary.BigEndian.PutUint16(ip[20:], 40000)
	binary.BigEndian.PutUint16(ip[22:], 9)
	binary.BigEndian.PutUint16(ip[24:], 8+18)
	return ethFrame(dst, src, 0x0800, ip)
}

func ipChecksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// nth is the n-th address after p's network address.
func nth(p netip.Prefix, n int) netip.Addr {
	a := p.Masked().Addr().As4()
	v := binary.BigEndian.Uint32(a[:]) + uint32(n)
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

// gatewayMAC is the distributed gateway's MAC of the one VPC a host
// takes part in, as its data plane holds it.
func (e *env) gatewayMAC(host string) net.HardwareAddr {
	e.t.Helper()
	dump, err := e.dp(host).Dump()
	if err != nil {
		e.t.Fatal(err)
	}
	if len(dump.VPCs) != 1 {
		e.t.Fatalf("%s takes part in %d VPCs, want one: %v", host, len(dump.VPCs), dump.VPCs)
	}
	var id uint32
	var m string
	if _, err := fmt.Sscanf(dump.VPCs[0], "vpc %d: gateway %s", &id, &m); err != nil {
		e.t.Fatalf("%q: %v", dump.VPCs[0], err)
	}
	return mac(m)
}

// waitFor polls cond for up to d and reports whether it held.
func waitFor(d time.Duration, cond func() bool) bool {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if cond() {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return cond()
}
