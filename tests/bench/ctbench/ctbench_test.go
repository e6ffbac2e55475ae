package ctbench

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/cilium/ebpf"
)

// frame is an Ethernet/IPv4/TCP ACK from src to dst, without payload
// (the programs check no checksum).
func frame(src, dst netip.AddrPort) []byte {
	b := make([]byte, 14+20+20)
	binary.BigEndian.PutUint16(b[12:], 0x0800)
	ip := b[14:34]
	ip[0], ip[8], ip[9] = 0x45, 64, 6
	binary.BigEndian.PutUint16(ip[2:], 40)
	s, d := src.Addr().As4(), dst.Addr().As4()
	copy(ip[12:], s[:])
	copy(ip[16:], d[:])
	tcp := b[34:]
	binary.BigEndian.PutUint16(tcp[0:], src.Port())
	binary.BigEndian.PutUint16(tcp[2:], dst.Port())
	tcp[12], tcp[13] = 5<<4, 0x10
	return b
}

func open(t *testing.T) *Bench {
	t.Helper()
	if testing.Short() || os.Geteuid() != 0 {
		t.Skip("needs root: namespaces and BPF")
	}
	b, err := Open(fmt.Sprintf("ctbt%d-", os.Getpid()))
	if errors.Is(err, ebpf.ErrNotSupported) {
		t.Skipf("no conntrack kfuncs on this kernel (modprobe nf_conntrack): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Error(err)
		}
	})
	return b
}

// Both trackers find the connection they inserted, from either end, and
// only in its own zone; the kernel's entries are in the measurement's
// namespace.
func TestTrackersFindWhatTheyInserted(t *testing.T) {
	b := open(t)
	a, z := netip.MustParseAddrPort("10.0.0.1:40000"), netip.MustParseAddrPort("10.0.0.2:80")
	fwd, rev := frame(a, z), frame(z, a)
	for _, tr := range []Tracker{LRU, Kfunc} {
		steps := []struct {
			zone  uint16
			frame []byte
			want  uint32
			what  string
		}{
			{7, fwd, New, "first packet"},
			{7, fwd, Hit, "second packet"},
			{7, rev, Hit, "reply"},
			{8, rev, New, "reply in another zone"},
			{8, fwd, Hit, "the other zone's own entry"},
		}
		for _, s := range steps {
			if err := b.SetZone(s.zone); err != nil {
				t.Fatal(err)
			}
			ret, _, err := b.Run(tr, s.frame, 1)
			if err != nil {
				t.Fatalf("%s, %s: %v", tr, s.what, err)
			}
			if ret != s.want {
				t.Fatalf("%s, %s: got %d, want %d (last error %d)", tr, s.what, ret, s.want, b.LastError())
			}
		}
	}
	if n, err := b.KernelEntries(); err != nil || n != 2 {
		t.Fatalf("conntrack entries in %s: %d (%v), want 2 (one per zone)", b.NS, n, err)
	}
}

// Varying, every run is a new connection; the kernel's table grows by
// one entry a run.
func TestVaryMakesNewConnections(t *testing.T) {
	b := open(t)
	f := frame(netip.MustParseAddrPort("10.0.0.1:40000"), netip.MustParseAddrPort("10.0.0.2:80"))
	if err := b.SetVary(true); err != nil {
		t.Fatal(err)
	}
	const runs = 1000
	for _, tr := range []Tracker{LRU, Kfunc} {
		ret, _, err := b.Run(tr, f, runs)
		if err != nil || ret != New {
			t.Fatalf("%s: got %d (%v), want %d (last error %d)", tr, ret, err, New, b.LastError())
		}
	}
	if n, err := b.KernelEntries(); err != nil || n != runs {
		t.Fatalf("conntrack entries: %d (%v), want %d", n, err, runs)
	}
}

// The kernel's entry is in the port's zone with Courier's idle timeout,
// and a packet restarts that timeout once it has run a second or more
// (as ct_touch does ct_v1's), which netfilter would do if it saw the
// packets.
func TestKernelEntryTimesOutAsCouriers(t *testing.T) {
	b := open(t)
	f := frame(netip.MustParseAddrPort("10.0.0.1:40000"), netip.MustParseAddrPort("10.0.0.2:80"))
	if err := b.SetZone(7); err != nil {
		t.Fatal(err)
	}
	timeout := func() uint32 {
		t.Helper()
		flows, err := b.KernelFlows()
		if err != nil || len(flows) != 1 || flows[0].Zone != 7 || flows[0].Forward.SrcPort != 40000 {
			t.Fatalf("conntrack -L: %v (%v), want the one connection in zone 7", flows, err)
		}
		return flows[0].TimeOut
	}
	if ret, _, err := b.Run(Kfunc, f, 1); err != nil || ret != New {
		t.Fatalf("first packet: %d (%v)", ret, err)
	}
	if s := timeout(); s < 299 || s > 300 {
		t.Fatalf("a new entry expires in %d s, want 300", s)
	}
	time.Sleep(2100 * time.Millisecond)
	if s := timeout(); s > 298 {
		t.Fatalf("2.1 s later it expires in %d s, want at most 298", s)
	}
	if ret, _, err := b.Run(Kfunc, f, 1); err != nil || ret != Hit {
		t.Fatalf("second packet: %d (%v)", ret, err)
	}
	if s := timeout(); s < 299 {
		t.Fatalf("after a packet it expires in %d s, want 300 again", s)
	}
}
