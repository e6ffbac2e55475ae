package dataplane_test

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/courier-sdn/courier/dataplane"
	"github.com/courier-sdn/courier/internal/lab"
)

// A QEMU guest's port is a tap, which has no peer for bpf_redirect_peer:
// the DVR must send out of it. Here the test itself is the guest, on the
// tap's file descriptor as QEMU would be: it answers pings and asks the
// gateway, and namespace VMs on the same and another host ping it.

var tapGuest = struct {
	ip  netip.Addr
	mac net.HardwareAddr
}{netip.MustParseAddr("10.0.1.21"), net.HardwareAddr{2, 0, 0, 1, 1, 0x21}}

// guestTap is the user-space end of a tap: what the DVR sends out of it
// is read here, and what is written here enters the host through it.
type guestTap struct {
	f      *os.File
	frames chan []byte // frames the guest did not answer itself
}

// openTap opens the tap name of the current namespace as a hypervisor
// does (TUNSETIFF), without a virtio-net header.
func openTap(name string) (*os.File, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	ifr, err := unix.NewIfreq(name)
	if err == nil {
		ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
		err = unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr)
	}
	if err == nil {
		// Non-blocking, so that Go's poller reads it and Close ends a read.
		err = unix.SetNonblock(fd, true)
	}
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), name), nil
}

// serve answers echo requests to the guest's address and hands every
// other frame to the test.
func (g *guestTap) serve() {
	buf := make([]byte, 65536)
	for {
		n, err := g.f.Read(buf)
		if err != nil {
			close(g.frames)
			return
		}
		fr := append([]byte(nil), buf[:n]...)
		if reply := echoReply(fr, tapGuest.ip); reply != nil {
			g.f.Write(reply)
			continue
		}
		select {
		case g.frames <- fr:
		default:
		}
	}
}

// echoReply turns an ICMP echo request to ip into its reply, or returns
// nil.
func echoReply(fr []byte, ip netip.Addr) []byte {
	if len(fr) < 14+20+8 || binary.BigEndian.Uint16(fr[12:]) != 0x0800 || fr[14+9] != 1 {
		return nil
	}
	ihl := int(fr[14]&0xf) * 4
	dst := ip.As4()
	if string(fr[14+16:14+20]) != string(dst[:]) || len(fr) < 14+ihl+8 || fr[14+ihl] != 8 {
		return nil
	}
	r := append([]byte(nil), fr...)
	copy(r[0:6], fr[6:12])
	copy(r[6:12], fr[0:6])
	copy(r[14+12:14+16], fr[14+16:14+20])
	copy(r[14+16:14+20], fr[14+12:14+16])
	icmp := r[14+ihl:]
	icmp[0] = 0
	icmp[2], icmp[3] = 0, 0
	binary.BigEndian.PutUint16(icmp[2:], csum16(icmp))
	return r
}

func csum16(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// arpRequest asks who has tpa, from the guest.
func arpRequest(tpa netip.Addr) []byte {
	b := make([]byte, 14+28)
	copy(b[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(b[6:12], tapGuest.mac)
	binary.BigEndian.PutUint16(b[12:], 0x0806)
	a := b[14:]
	binary.BigEndian.PutUint16(a[0:], 1)
	binary.BigEndian.PutUint16(a[2:], 0x0800)
	a[4], a[5] = 6, 4
	binary.BigEndian.PutUint16(a[6:], 1)
	copy(a[8:14], tapGuest.mac)
	s, t := tapGuest.ip.As4(), tpa.As4()
	copy(a[14:18], s[:])
	copy(a[24:28], t[:])
	return b
}

// addTapGuest makes a tap for the guest on host h, tied to port "t1",
// and starts the guest on it.
func (w *world) addTapGuest(t *testing.T, h string) (ifindex int, g *guestTap) {
	t.Helper()
	name := "tap-t1"
	err := lab.Do(w.lab.Hosts[h].NS, func() error {
		var err error
		if ifindex, err = dataplane.CreateTap(name, dataplane.AliasPrefix+"t1"); err != nil {
			return err
		}
		l, err := netlink.LinkByIndex(ifindex)
		if err != nil {
			return err
		}
		if !dataplane.IsTap(l) {
			return errors.New("CreateTap's link is not a tap to IsTap")
		}
		f, err := openTap(name)
		g = &guestTap{f: f, frames: make(chan []byte, 64)}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		g.f.Close()
		lab.Do(w.lab.Hosts[h].NS, func() error {
			return netlink.LinkDel(&netlink.Tuntap{LinkAttrs: netlink.LinkAttrs{Name: name}})
		})
	})
	go g.serve()
	return ifindex, g
}

// await waits for a frame the guest did not answer that match accepts.
func (g *guestTap) await(t *testing.T, what string, match func([]byte) bool) []byte {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case fr, ok := <-g.frames:
			if !ok {
				t.Fatalf("tap closed before %s", what)
			}
			if match(fr) {
				return fr
			}
		case <-deadline:
			t.Fatalf("no %s came out of the tap", what)
		}
	}
}

func TestTapPortDeliversOutOfTheTap(t *testing.T) {
	w := newWorld(t, "h1", "h2")
	ifindex, g := w.addTapGuest(t, "h1")
	guestPort := dataplane.Port{Ifindex: ifindex, Name: "t1", VNI: 5001, VPC: 1, MAC: tapGuest.mac, MTU: 1450,
		Security: true, Tap: true, IPs: []netip.Addr{tapGuest.ip}}
	for _, h := range []string{"h1", "h2"} {
		w.load(t, h, true)
		s := w.baseState(h)
		s.Bindings = w.bindings(h)
		if h == "h1" {
			s.Ports = append(s.Ports, guestPort)
		} else {
			s.Bindings = append(s.Bindings, dataplane.Binding{VPC: 1, IP: tapGuest.ip, VTEP: w.lab.Hosts["h1"].VTEP, VNI: 5001, MAC: tapGuest.mac})
		}
		w.apply(t, h, s)
	}
	t.Run("a veth VM on the same host pings the guest", func(t *testing.T) { w.mustPing(t, "a1", "10.0.1.21") })
	t.Run("a veth VM on another host pings the guest", func(t *testing.T) { w.mustPing(t, "a3", "10.0.1.21") })
	t.Run("across vxnets", func(t *testing.T) { w.mustPing(t, "a4", "10.0.1.21") })
	t.Run("the DVR's own answers go out of the tap", func(t *testing.T) {
		if _, err := g.f.Write(arpRequest(netip.MustParseAddr("10.0.1.1"))); err != nil {
			t.Fatal(err)
		}
		r := g.await(t, "ARP reply for the gateway", func(fr []byte) bool {
			return len(fr) >= 42 && binary.BigEndian.Uint16(fr[12:]) == 0x0806 && binary.BigEndian.Uint16(fr[20:]) == 2
		})
		if got := net.HardwareAddr(r[22:28]); got.String() != gwMAC(1).String() {
			t.Errorf("gateway's MAC answered as %s, want %s", got, gwMAC(1))
		}
	})
	t.Run("a port flagged as a veth is not reached through a tap", func(t *testing.T) {
		// Without the flag the DVR redirects to a peer the tap does not
		// have: the guest must become unreachable, which shows the flag
		// is what delivers.
		s := w.state["h1"]
		veth := *s
		veth.Ports = append([]dataplane.Port(nil), s.Ports...)
		veth.Ports[len(veth.Ports)-1].Tap = false
		w.apply(t, "h1", &veth)
		w.mustNotPing(t, "a1", "10.0.1.21")
		w.apply(t, "h1", s)
		w.mustPing(t, "a1", "10.0.1.21")
	})
}
