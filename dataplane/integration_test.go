package dataplane_test

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/courier-sdn/courier/dataplane"
	"github.com/courier-sdn/courier/internal/lab"
	"github.com/courier-sdn/courier/internal/testenv"
	"github.com/courier-sdn/courier/pipeline"
)

// The integration tests' world: VPC 1 and VPC 2 reuse the same CIDRs.
//
//	VPC 1: vxnet 5001 10.0.1.0/24, vxnet 5002 10.0.2.0/24
//	VPC 2: vxnet 6001 10.0.1.0/24, vxnet 6002 10.0.2.0/24
//	h1: a1 (5001, 10.0.1.11)  a2 (5002, 10.0.2.11)  b1 (6001, 10.0.1.11)
//	h2: a3 (5001, 10.0.1.12)  a4 (5002, 10.0.2.12)  b2 (6002, 10.0.2.12)
type vmSpec struct {
	name, host string
	vpc, vni   uint32
	ip         string
	mac        string
}

var vms = []vmSpec{
	{"a1", "h1", 1, 5001, "10.0.1.11", "02:00:00:01:01:11"},
	{"a2", "h1", 1, 5002, "10.0.2.11", "02:00:00:01:02:11"},
	{"b1", "h1", 2, 6001, "10.0.1.11", "02:00:00:02:01:11"},
	{"a3", "h2", 1, 5001, "10.0.1.12", "02:00:00:01:01:12"},
	{"a4", "h2", 1, 5002, "10.0.2.12", "02:00:00:01:02:12"},
	{"b2", "h2", 2, 6002, "10.0.2.12", "02:00:00:02:02:12"},
}

var (
	allVx = pipeline.AllFlags(pipeline.DPVxnet)
	// An open VPC: the security group tests turn groups on.
	allVPC = pipeline.AllFlags(pipeline.DPVPC) &^ (pipeline.VPCSGEgress | pipeline.VPCSGIngress)
)

func gwMAC(vpc uint32) net.HardwareAddr { return net.HardwareAddr{0x0a, 0xc0, 0, 0, 0, byte(vpc)} }

func vxnetOf(vni uint32) (uint32, netip.Prefix) {
	switch vni {
	case 5001:
		return 1, netip.MustParsePrefix("10.0.1.0/24")
	case 5002:
		return 1, netip.MustParsePrefix("10.0.2.0/24")
	case 6001:
		return 2, netip.MustParsePrefix("10.0.1.0/24")
	default:
		return 2, netip.MustParsePrefix("10.0.2.0/24")
	}
}

// world is a lab with the VMs above and a data plane on every host.
type world struct {
	lab   *lab.Lab
	dp    map[string]*dataplane.Datapath
	state map[string]*dataplane.State
	// kernelEncap: the hosts whose VXLAN device encapsulates everything
	kernelEncap map[string]bool
	// routeKeep: Config.RouteKeep (0: the default)
	routeKeep time.Duration
}

func newWorld(t *testing.T, hosts ...string) *world {
	testenv.Root(t)
	if testing.Short() {
		t.Skip("needs root, namespaces and BPF")
	}
	for _, p := range []string{"ping", "iperf3", "ip"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Fatalf("%s is not installed (make deps)", p)
		}
	}
	prefix := "cdi" + testenv.ID() + "-"
	l, err := lab.New(prefix, netip.MustParsePrefix("192.168.77.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	pinRoot := "/sys/fs/bpf/courier-test-" + testenv.ID()
	w := &world{lab: l, dp: map[string]*dataplane.Datapath{}, state: map[string]*dataplane.State{}}
	t.Cleanup(func() {
		for name, d := range w.dp {
			lab.Do(l.Hosts[name].NS, d.Destroy)
		}
		os.RemoveAll(pinRoot)
		if err := l.Destroy(); err != nil {
			t.Errorf("destroy lab: %v", err)
		}
	})
	for i, h := range hosts {
		if _, err := l.AddHost(h, i+1); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range vms {
		h := l.Hosts[v.host]
		if h == nil {
			continue
		}
		_, cidr := vxnetOf(v.vni)
		m, _ := net.ParseMAC(v.mac)
		_, err := l.AddVM(v.name, h, lab.VMConfig{Port: v.name, MAC: m,
			Addr: netip.PrefixFrom(netip.MustParseAddr(v.ip), cidr.Bits()), Gateway: cidr.Addr().Next()})
		if err != nil {
			t.Fatal(err)
		}
	}
	return w
}

// load starts a data plane on host h.
func (w *world) load(t *testing.T, h string, hub bool) {
	t.Helper()
	host := w.lab.Hosts[h]
	// before loading: a load that fails may have pinned maps already
	t.Cleanup(func() { os.RemoveAll("/sys/fs/bpf/courier-test-" + w.lab.Prefix) })
	err := lab.Do(host.NS, func() error {
		d, err := dataplane.Load(dataplane.Config{Chassis: h, PinRoot: "/sys/fs/bpf/courier-test-" + w.lab.Prefix,
			VTEP: host.VTEP, Hub: hub, LearnInterval: time.Millisecond, KernelEncap: w.kernelEncap[h], RouteKeep: w.routeKeep})
		if err != nil {
			return err
		}
		w.dp[h] = d // only a loaded one: the cleanup destroys it
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// baseState: the host's own ports, and every VPC's vxnets and routes.
// loadKnowingAll starts a data plane on each host, a hub holding every
// binding: static full knowledge.
func (w *world) loadKnowingAll(t *testing.T, hosts ...string) {
	t.Helper()
	for _, h := range hosts {
		w.load(t, h, true)
		s := w.baseState(h)
		s.Bindings = w.bindings(h)
		w.apply(t, h, s)
	}
}

func (w *world) baseState(h string) *dataplane.State {
	s := &dataplane.State{}
	for _, vni := range []uint32{5001, 5002, 6001, 6002} {
		vpc, cidr := vxnetOf(vni)
		s.Vxnets = append(s.Vxnets, dataplane.Vxnet{VNI: vni, VPC: vpc, CIDR: cidr, GwIP: cidr.Addr().Next(), GwMAC: gwMAC(vpc), Flags: allVx})
		s.Routes = append(s.Routes, dataplane.Route{VPC: vpc, Prefix: cidr, VNI: vni})
	}
	for _, vpc := range []uint32{1, 2} {
		s.VPCs = append(s.VPCs, dataplane.VPC{ID: vpc, GwMAC: gwMAC(vpc), Flags: allVPC})
	}
	for _, v := range vms {
		if v.host != h {
			continue
		}
		m, _ := net.ParseMAC(v.mac)
		vm := w.lab.VMs[v.name]
		s.Ports = append(s.Ports, dataplane.Port{Ifindex: vm.Ifindex, Name: v.name, VNI: v.vni, VPC: v.vpc, MAC: m,
			MTU: 1450, Security: true, IPs: []netip.Addr{netip.MustParseAddr(v.ip)}})
	}
	return s
}

// bindings of every VM on every host but skip.
func (w *world) bindings(skip string) []dataplane.Binding {
	var out []dataplane.Binding
	for _, v := range vms {
		if v.host == skip || w.lab.Hosts[v.host] == nil {
			continue
		}
		m, _ := net.ParseMAC(v.mac)
		out = append(out, dataplane.Binding{VPC: v.vpc, IP: netip.MustParseAddr(v.ip), VTEP: w.lab.Hosts[v.host].VTEP, VNI: v.vni, MAC: m})
	}
	return out
}

func (w *world) apply(t *testing.T, h string, s *dataplane.State) {
	t.Helper()
	w.state[h] = s
	err := lab.Do(w.lab.Hosts[h].NS, func() error { _, err := w.dp[h].Apply(s); return err })
	if err != nil {
		t.Fatalf("apply on %s: %v", h, err)
	}
}

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

func (w *world) mustPing(t *testing.T, vm, dst string) {
	t.Helper()
	if n, out := w.lab.Ping(vm, ip(dst), 3, "0.2"); n != 3 {
		t.Errorf("%s -> %s: %d/3 answered\n%s", vm, dst, n, out)
	}
}

func (w *world) mustNotPing(t *testing.T, vm, dst string) {
	t.Helper()
	if n, out := w.lab.Ping(vm, ip(dst), 2, "0.2"); n != 0 {
		t.Errorf("%s -> %s: %d answered, want none\n%s", vm, dst, n, out)
	}
}

// tcp runs iperf3 for a second from vm to the server VM's address, both
// directions.
func (w *world) tcp(t *testing.T, client, server, addr string) {
	t.Helper()
	srv := exec.Command("ip", "netns", "exec", w.lab.VMs[server].NS, "iperf3", "-s", "-1", "-p", "5201")
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	time.Sleep(300 * time.Millisecond)
	out, err := lab.Exec(w.lab.VMs[client].NS, "iperf3", "-c", addr, "-p", "5201", "-t", "1", "--bidir")
	if err != nil || !strings.Contains(out, "receiver") {
		t.Errorf("TCP %s <-> %s: %v\n%s", client, server, err, out)
	}
}

func TestTwoHostsForward(t *testing.T) {
	w := newWorld(t, "h1", "h2")
	w.loadKnowingAll(t, "h1", "h2")
	t.Run("same vxnet, across hosts", func(t *testing.T) { w.mustPing(t, "a1", "10.0.1.12"); w.mustPing(t, "a3", "10.0.1.11") })
	t.Run("across vxnets and hosts", func(t *testing.T) { w.mustPing(t, "a1", "10.0.2.12"); w.mustPing(t, "a4", "10.0.1.11") })
	t.Run("across vxnets on one host", func(t *testing.T) { w.mustPing(t, "a1", "10.0.2.11"); w.mustPing(t, "a2", "10.0.1.11") })
	t.Run("the gateway answers", func(t *testing.T) { w.mustPing(t, "a1", "10.0.1.1") })
	t.Run("TCP both ways, same and across vxnets", func(t *testing.T) {
		w.tcp(t, "a1", "a3", "10.0.1.12")
		w.tcp(t, "a4", "a1", "10.0.1.11")
	})
	t.Run("a second VPC with the same CIDRs is its own world", func(t *testing.T) {
		// b1 (VPC 2, 10.0.1.11) reaches b2 (VPC 2, 10.0.2.12) ...
		w.mustPing(t, "b1", "10.0.2.12")
		// ... and not VPC 1's 10.0.1.12 (a3): VPC 2 has no such address.
		w.mustNotPing(t, "b1", "10.0.1.12")
		// b1's 10.0.2.12 is b2, not a4: b1 learnt b2's MAC for it.
		out, _ := lab.Exec(w.lab.VMs["b1"].NS, "ip", "neigh", "show", "10.0.1.1")
		if !strings.Contains(out, gwMAC(2).String()) {
			t.Errorf("b1's gateway is not VPC 2's: %s", out)
		}
	})
	t.Run("no packet crossed the VPCs", func(t *testing.T) {
		for _, h := range []string{"h1", "h2"} {
			var drops map[string]uint64
			lab.Do(w.lab.Hosts[h].NS, func() error { var err error; drops, err = w.dp[h].Drops(); return err })
			if drops["spoof_ip"]+drops["spoof_mac"] != 0 {
				t.Errorf("%s dropped spoofed packets: %v", h, drops)
			}
		}
	})
}

func TestLearningThroughAHub(t *testing.T) {
	w := newWorld(t, "h1", "h2", "hub")
	hubVTEP := w.lab.Hosts["hub"].VTEP
	w.load(t, "hub", true)
	hs := w.baseState("hub")
	hs.Bindings = w.bindings("hub")
	hs.Hubs = []dataplane.Hubs{{VPC: 1, VTEPs: []netip.Addr{hubVTEP}}, {VPC: 2, VTEPs: []netip.Addr{hubVTEP}}}
	w.apply(t, "hub", hs)
	for _, h := range []string{"h1", "h2"} {
		w.load(t, h, false)
		s := w.baseState(h) // its own ports only: the rest is learned
		s.Hubs = hs.Hubs
		w.apply(t, h, s)
	}
	counters := func(h string) map[string]uint64 {
		var c map[string]uint64
		lab.Do(w.lab.Hosts[h].NS, func() error { var err error; c, err = w.dp[h].Counters(); return err })
		return c
	}
	cache := func(h string) []dataplane.CacheEntry {
		var c []dataplane.CacheEntry
		lab.Do(w.lab.Hosts[h].NS, func() error { var err error; c, err = w.dp[h].Cache(); return err })
		return c
	}

	// The first packets of a flow go through the hub ...
	w.mustPing(t, "a1", "10.0.2.12")
	hub1 := counters("hub")
	if hub1["hub_forward"]+hub1["hub_arp_reply"] == 0 || hub1["learn_sent"] == 0 {
		t.Fatalf("nothing went through the hub: %v", hub1)
	}
	// ... which taught both ends where the other lives.
	var found bool
	for _, e := range cache("h1") {
		if e.VPC == 1 && e.IP == ip("10.0.2.12") && e.VTEP == w.lab.Hosts["h2"].VTEP && e.VNI == 5002 {
			found = true
		}
	}
	if !found {
		t.Fatalf("h1 did not learn a4's location: %+v", cache("h1"))
	}
	// Then the flow goes direct: the hub sees none of it.
	w.mustPing(t, "a1", "10.0.2.12")
	hub2 := counters("hub")
	if hub2["hub_forward"] != hub1["hub_forward"] || hub2["tunnel_rx"] != hub1["tunnel_rx"] {
		t.Errorf("the hub kept forwarding a learned flow: before %v after %v", hub1, hub2)
	}
	h1 := counters("h1")
	if h1["remote_tx"] == 0 {
		t.Errorf("h1 sent nothing direct: %v", h1)
	}
	// Learning took well under a millisecond, first miss to entry.
	var lat []uint64
	lab.Do(w.lab.Hosts["h1"].NS, func() error { var err error; lat, err = w.dp["h1"].LearnLatency(); return err })
	t.Logf("h1 learning latency histogram (2^i µs): %v", lat)
	// A host holds only its active peers.
	for _, e := range cache("h2") {
		if e.IP != ip("10.0.1.11") {
			t.Errorf("h2 caches %s, which it never talked to", e.IP)
		}
	}
	// VPC 2, overlapping addresses, learns independently.
	w.mustPing(t, "b1", "10.0.2.12")
	w.mustNotPing(t, "b1", "10.0.1.12")
	fmt.Fprint(os.Stderr)
}
