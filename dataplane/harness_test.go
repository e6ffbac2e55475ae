package dataplane

import (
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"runtime"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/courier-sdn/courier/internal/testenv"
	"github.com/courier-sdn/courier/pipeline"
)

// Verdicts of tc programs.
const (
	actOK       = 0
	actShot     = 2
	actRedirect = 7
)

// testNS is the namespace of the running test. Every program run and
// every netlink call must happen inside it (see within): BPF_PROG_RUN
// resolves ifindexes, and bpf_clone_redirect transmits, in the calling
// thread's namespace.
var testNS netns.NsHandle = -1

// within runs fn on a thread locked into the test namespace; subtests run
// in goroutines of their own, which would otherwise be in the root
// namespace.
func within(fn func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		panic(err)
	}
	defer orig.Close()
	if err := netns.Set(testNS); err != nil {
		panic(err)
	}
	defer netns.Set(orig)
	fn()
}

// inNetns runs the test's goroutine, locked to its thread, inside a fresh
// network namespace named with a test-unique prefix, and removes it at the
// end, also when the test fails.
func inNetns(t *testing.T) string {
	t.Helper()
	testenv.Root(t)
	if testing.Short() {
		t.Skip("needs root and BPF (skipped with -short)")
	}
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	name := "cdp-" + testenv.ID()
	ns, err := netns.NewNamed(name)
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("create netns: %v", err)
	}
	testNS = ns
	t.Cleanup(func() {
		testNS = -1
		netns.Set(orig)
		ns.Close()
		orig.Close()
		netns.DeleteNamed(name)
		runtime.UnlockOSThread()
	})
	lo, _ := netlink.LinkByName("lo")
	netlink.LinkSetUp(lo)
	// Links made here stay quiet: a new link's IPv6 router solicitations
	// and duplicate address probes would otherwise run through the port
	// program (as spoof_mac drops) while a test counts drops.
	if err := os.WriteFile("/proc/sys/net/ipv6/conf/default/disable_ipv6", []byte("1"), 0o644); err != nil {
		t.Fatalf("disable IPv6 in the test namespace: %v", err)
	}
	return name
}

// underlay gives this namespace an underlay interface holding vteps (a
// veth pair: some kernels, this CI's among them, have no dummy driver).
func underlay(t *testing.T, vteps ...netip.Addr) {
	t.Helper()
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "ul0", MTU: 1500}, PeerName: "ul0p"}); err != nil {
		t.Fatal(err)
	}
	if p, err := netlink.LinkByName("ul0p"); err == nil {
		netlink.LinkSetUp(p)
	}
	l, _ := netlink.LinkByName("ul0")
	for _, v := range vteps {
		if err := netlink.AddrAdd(l, &netlink.Addr{IPNet: &net.IPNet{IP: v.AsSlice(), Mask: net.CIDRMask(24, 32)}}); err != nil {
			t.Fatal(err)
		}
	}
	netlink.LinkSetUp(l)
}

// loadTest loads a data plane with test hooks, pinned under a
// test-unique root that is removed afterwards. The VXLAN device
// encapsulates (KernelEncap): these tests read where the pipeline sent a
// packet from the tunnel key it set (tunnel_out); the programs' own
// encapsulation is tested with real packets (encap_test.go).
func loadTest(t *testing.T, cfg Config) *Datapath {
	t.Helper()
	cfg.TestHooks = true
	cfg.KernelEncap = true
	cfg.PinRoot = "/sys/fs/bpf/courier-test-" + testenv.ID()
	if cfg.Chassis == "" {
		cfg.Chassis = "t"
	}
	t.Cleanup(func() { os.RemoveAll(cfg.PinRoot) }) // also when Load fails
	d, err := Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Destroy() })
	return d
}

// skbCtx is struct __sk_buff as BPF_PROG_RUN takes it: ifindex, and
// gso_segs and gso_size to play a GSO packet (what GRO hands a host).
type skbCtx struct {
	_       [8]byte
	Mark    uint32
	_       [28]byte
	Ifindex uint32
	_       [120]byte
	GSOSegs uint32
	_       [8]byte
	GSOSize uint32
	_       [12]byte
}

type runResult struct {
	verdict uint32
	out     []byte
}

func run(t *testing.T, prog *ebpf.Program, ifindex int, pkt []byte) runResult {
	t.Helper()
	return runCtx(t, prog, skbCtx{Ifindex: uint32(ifindex)}, pkt)
}

func runCtx(t *testing.T, prog *ebpf.Program, ctx skbCtx, pkt []byte) runResult {
	t.Helper()
	out := make([]byte, len(pkt)+256)
	var ret uint32
	var err error
	if testNS < 0 {
		t.Fatal("program run outside a test namespace")
	}
	within(func() { ret, err = prog.Run(&ebpf.RunOptions{Data: pkt, DataOut: out, Context: &ctx}) })
	if err != nil {
		t.Fatalf("BPF_PROG_RUN: %v", err)
	}
	return runResult{verdict: ret, out: out}
}

// runTunnel runs tunnel_ingress as if pkt came from host src with vni.
func runTunnel(t *testing.T, d *Datapath, src netip.Addr, vni uint32, pkt []byte) runResult {
	t.Helper()
	rec := dvrTunnelRec{Vtep: host32(src), Vni: vni}
	if err := d.objs.TunnelIn.Put(uint32(0), rec); err != nil {
		t.Fatal(err)
	}
	return run(t, d.objs.TunnelIngress, d.vxlan, pkt)
}

// runTunnelGSO is runTunnel for a GSO packet of segments of mss bytes.
func runTunnelGSO(t *testing.T, d *Datapath, src netip.Addr, vni uint32, pkt []byte, segs, mss uint32) runResult {
	t.Helper()
	if err := d.objs.TunnelIn.Put(uint32(0), dvrTunnelRec{Vtep: host32(src), Vni: vni}); err != nil {
		t.Fatal(err)
	}
	return runCtx(t, d.objs.TunnelIngress, skbCtx{Ifindex: uint32(d.vxlan), GSOSegs: segs, GSOSize: mss}, pkt)
}

// sent reads where the program last sent a packet: the tunnel key and
// the redirect target.
func sent(t *testing.T, d *Datapath) (vtep netip.Addr, vni uint32, ifindex int, peer bool) {
	t.Helper()
	var tr dvrTunnelRec
	d.objs.TunnelOut.Lookup(uint32(0), &tr)
	var rr dvrRedirectRec
	d.objs.RedirectOut.Lookup(uint32(0), &rr)
	return fromHost32(tr.Vtep), tr.Vni, int(rr.Ifindex), rr.Peer == 1
}

func resetSent(d *Datapath) {
	d.objs.TunnelOut.Put(uint32(0), dvrTunnelRec{})
	d.objs.RedirectOut.Put(uint32(0), dvrRedirectRec{})
}

func drops(t *testing.T, d *Datapath) map[string]uint64 {
	m, err := d.Drops()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// expectDrop runs fn and checks that it dropped exactly one packet, for
// reason.
func expectDrop(t *testing.T, d *Datapath, reason string, fn func() runResult) {
	t.Helper()
	if _, ok := pipeline.DropByName(reason); !ok {
		t.Fatalf("no drop reason %s", reason)
	}
	before := drops(t, d)
	r := fn()
	after := drops(t, d)
	if r.verdict != actShot {
		t.Errorf("want drop (%s), got verdict %d", reason, r.verdict)
	}
	for name, v := range after {
		delta := v - before[name]
		switch {
		case name == reason && delta != 1:
			t.Errorf("drop counter %s moved by %d, want 1", name, delta)
		case name != reason && delta != 0:
			t.Errorf("unexpected drop %s (want %s)", name, reason)
		}
	}
}

// ---- packet building ----

func mac(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func ip4(s string) netip.Addr { return netip.MustParseAddr(s) }

func ethHdr(dst, src net.HardwareAddr, proto uint16) []byte {
	b := make([]byte, 14)
	copy(b[0:6], dst)
	copy(b[6:12], src)
	binary.BigEndian.PutUint16(b[12:], proto)
	return b
}

func arpPkt(op uint16, sha net.HardwareAddr, spa netip.Addr, tha net.HardwareAddr, tpa netip.Addr) []byte {
	dst := net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	if op == 2 {
		dst = tha
	}
	b := ethHdr(dst, sha, 0x0806)
	a := make([]byte, 28)
	binary.BigEndian.PutUint16(a[0:], 1)
	binary.BigEndian.PutUint16(a[2:], 0x0800)
	a[4], a[5] = 6, 4
	binary.BigEndian.PutUint16(a[6:], op)
	copy(a[8:14], sha)
	s := spa.As4()
	copy(a[14:18], s[:])
	copy(a[18:24], tha)
	tp := tpa.As4()
	copy(a[24:28], tp[:])
	return append(b, a...)
}

func csum(b []byte) uint16 {
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

// udpPkt is an Ethernet/IPv4/UDP frame with payload of n bytes.
func udpPkt(dst, src net.HardwareAddr, sip, dip netip.Addr, ttl uint8, n int) []byte {
	b := ethHdr(dst, src, 0x0800)
	ip := make([]byte, 20)
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(20+8+n))
	ip[8] = ttl
	ip[9] = 17
	s, d := sip.As4(), dip.As4()
	copy(ip[12:16], s[:])
	copy(ip[16:20], d[:])
	binary.BigEndian.PutUint16(ip[10:], csum(ip))
	udp := make([]byte, 8+n)
	binary.BigEndian.PutUint16(udp[0:], 40000)
	binary.BigEndian.PutUint16(udp[2:], 7)
	binary.BigEndian.PutUint16(udp[4:], uint16(8+n))
	return append(append(b, ip...), udp...)
}
