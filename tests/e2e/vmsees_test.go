package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/courier-sdn/courier/internal/lab"
	"github.com/courier-sdn/courier/internal/testenv"
	"github.com/courier-sdn/courier/tools/sandbox"
)

// What a VM sees (#13): VMs with nothing configured learn everything
// from DHCP answered on their host; traceroute, tracepath and path MTU
// discovery work; a VM left at MTU 1500 still moves bulk TCP.

// dhcpVM adds a VM that runs client and configures nothing itself.
func (e *env) dhcpVM(host, port, client string) {
	e.t.Helper()
	if err := e.s.AddVMWith(context.Background(), host, port, sandbox.VMOptions{DHCP: client}); err != nil {
		e.t.Fatal(err)
	}
}

// vmOut runs a command in a VM and returns its output, failing the test
// if it fails.
func (e *env) vmOut(port string, args ...string) string {
	e.t.Helper()
	out, err := e.s.Exec(port, args...)
	if err != nil {
		e.t.Fatalf("%s: %s: %v\n%s", port, strings.Join(args, " "), err, out)
	}
	return out
}

// ipJSON runs ip -j in a VM.
func (e *env) ipJSON(port string, v any, args ...string) {
	e.t.Helper()
	if err := json.Unmarshal([]byte(e.vmOut(port, append([]string{"ip", "-j"}, args...)...)), v); err != nil {
		e.t.Fatal(err)
	}
}

// checkLease checks what a DHCP client made of its answers: the port's
// address in its vxnet, the gateway as default route, the overlay MTU
// (on the interface, or as dhcpcd does, on its routes), the DNS server
// and domain in the VM's resolv.conf.
func (e *env) checkLease(port, addr, gw string) {
	e.t.Helper()
	var addrs []struct {
		MTU  int `json:"mtu"`
		Info []struct {
			Family string `json:"family"`
			Local  string `json:"local"`
			Prefix int    `json:"prefixlen"`
		} `json:"addr_info"`
	}
	e.ipJSON(port, &addrs, "addr", "show", "eth0")
	var got []string
	for _, i := range addrs[0].Info {
		if i.Family == "inet" {
			got = append(got, fmt.Sprintf("%s/%d", i.Local, i.Prefix))
		}
	}
	if len(got) != 1 || got[0] != addr {
		e.t.Errorf("%s: addresses %v, want %s", port, got, addr)
	}
	var routes []struct {
		Dst     string   `json:"dst"`
		Gateway string   `json:"gateway"`
		Metrics []any    `json:"metrics"`
		Flags   []string `json:"flags"`
	}
	e.ipJSON(port, &routes, "route", "show", "default")
	if len(routes) != 1 || routes[0].Gateway != gw {
		e.t.Errorf("%s: default routes %+v, want via %s", port, routes, gw)
	}
	mtuRoute := strings.Contains(e.vmOut(port, "ip", "route", "show", "default"), "mtu 1450")
	if addrs[0].MTU != 1450 && !mtuRoute {
		e.t.Errorf("%s: MTU %d and no route MTU: the overlay MTU (1450) was not learned", port, addrs[0].MTU)
	}
	rc, err := e.s.ResolvConf(port)
	if err != nil || !strings.Contains(rc, "nameserver 192.0.2.53") || !strings.Contains(rc, "blue.internal") {
		e.t.Errorf("%s: resolv.conf %q (%v), want nameserver 192.0.2.53 and domain blue.internal", port, rc, err)
	}
}

func TestDHCPClientsGetEverythingFromTheHost(t *testing.T) {
	e := start(t, 3, 2)
	e.nb("vpc-add", "blue", "--", "vxnet-add", "blue", "web", "10.0.1.0/24", "--", "vxnet-add", "blue", "db", "10.0.2.0/24",
		"--", "set", "Vxnet", "web", "options:dns_servers=192.0.2.53")
	e.nb("port-add", "db", "srv", "02:00:00:00:02:0a", "10.0.2.10",
		"--", "port-add", "web", "u1", "02:00:00:00:01:0a", "10.0.1.10",
		"--", "port-add", "web", "d1", "02:00:00:00:01:0b", "10.0.1.11",
		"--", "port-add", "web", "p1", "02:00:00:00:01:0c", "10.0.1.12")
	e.vm("hv2", "srv")
	dhcp := e.capture("udp port 4789 and (udp[52:2] = 67 or udp[52:2] = 68)")
	for port, c := range map[string][2]string{"u1": {"hv3", "udhcpc"}, "d1": {"hv1", "dhclient"}, "p1": {"hv3", "dhcpcd"}} {
		e.dhcpVM(c[0], port, c[1])
	}
	if lines := dhcp.stop(); len(lines) > 0 {
		t.Errorf("DHCP crossed the underlay:\n%s", strings.Join(lines, "\n"))
	}
	for port, addr := range map[string]string{"u1": "10.0.1.10/24", "d1": "10.0.1.11/24", "p1": "10.0.1.12/24"} {
		t.Run(port, func(t *testing.T) {
			e := &env{t: t, s: e.s}
			e.checkLease(port, addr, "10.0.1.1")
			e.mustPing(port, "10.0.2.10")
		})
	}
	if n := e.counters("hv3")["dhcp_reply"]; n < 4 {
		t.Errorf("hv3 answered %d DHCP messages, want the offers and acks of two clients", n)
	}

	// traceroute: the gateway, then the destination, one logical hop.
	out := e.vmOut("u1", "traceroute", "-n", "-q", "1", "-w", "2", "10.0.2.10")
	if hops := regexp.MustCompile(`(?m)^\s*(\d+)\s+(\S+)`).FindAllStringSubmatch(out, -1); len(hops) != 2 ||
		hops[0][2] != "10.0.1.1" || hops[1][2] != "10.0.2.10" {
		t.Errorf("traceroute, want 10.0.1.1 then 10.0.2.10:\n%s", out)
	}
	// tracepath from a VM that believes in 1500 finds the overlay's MTU.
	e.nb("port-add", "web", "big", "02:00:00:00:01:0d", "10.0.1.13")
	if err := e.s.AddVMWith(context.Background(), "hv1", "big", sandbox.VMOptions{MTU: 1500}); err != nil {
		t.Fatal(err)
	}
	if out := e.vmOut("big", "tracepath", "-n", "10.0.2.10"); !strings.Contains(out, "pmtu 1450") || !strings.Contains(out, "10.0.2.10") {
		t.Errorf("tracepath, want pmtu 1450 and the destination reached:\n%s", out)
	}
	// The overlay's MTU as the gateway says it, not a silent drop.
	e.nb("port-add", "web", "big2", "02:00:00:00:01:0e", "10.0.1.14")
	if err := e.s.AddVMWith(context.Background(), "hv1", "big2", sandbox.VMOptions{MTU: 1500}); err != nil {
		t.Fatal(err)
	}
	out, _ = e.s.Exec("big2", "ping", "-n", "-c", "2", "-i", "0.2", "-M", "do", "-s", "1472", "10.0.2.10")
	if !strings.Contains(out, "mtu = 1450") && !strings.Contains(out, "mtu=1450") {
		t.Errorf("ping -M do -s 1472 from an MTU 1500 VM, want frag needed with mtu 1450:\n%s", out)
	}
	// hv1's underlay MTU lowered under a running hostd: its ports allow,
	// and say, the new one (1400 less VXLAN's 50) within seconds.
	if out, err := lab.Exec(e.s.HostNS("hv1"), "ip", "link", "set", "dev", "eth0", "mtu", "1400"); err != nil {
		t.Fatalf("lower hv1's underlay MTU: %v: %s", err, out)
	}
	testenv.Eventually(t, 10*time.Second, "an MTU 1500 VM on hv1 told the lowered MTU (1350)", func() error {
		out, _ := e.s.Exec("big2", "ping", "-n", "-c", "1", "-W", "1", "-M", "do", "-s", "1400", "10.0.2.10")
		if !strings.Contains(out, "mtu = 1350") && !strings.Contains(out, "mtu=1350") {
			return fmt.Errorf("ping -M do -s 1400:\n%s", out)
		}
		return nil
	})
	if out, _ := lab.Exec(e.s.HostNS("hv1"), "ip", "link", "show", "courier0"); !strings.Contains(out, "mtu 1350 ") {
		t.Errorf("hv1's VXLAN device, want mtu 1350:\n%s", out)
	}
}

// A VM left at MTU 1500, on a host that is no hub, sends bulk TCP to a
// VM on a hub's host: its SYNs' MSS is clamped, and when its learned
// path goes stale (every second here) the hub's lesson comes back even
// though GRO merged the packets that asked for it (hostd sends it), so
// nearly everything goes direct rather than through the hub.
func TestBulkTCPFromAnMTU1500VM(t *testing.T) {
	e := startWith(t, 3, 2, "--refresh", "1s")
	e.nb("vpc-add", "blue", "--", "vxnet-add", "blue", "web", "10.0.1.0/24", "--", "vxnet-add", "blue", "db", "10.0.2.0/24")
	e.nb("port-add", "db", "srv", "02:00:00:00:02:0a", "10.0.2.10", "--", "port-add", "web", "big", "02:00:00:00:01:0d", "10.0.1.13")
	e.vm("hv2", "srv")
	if err := e.s.AddVMWith(context.Background(), "hv3", "big", sandbox.VMOptions{MTU: 1500}); err != nil {
		t.Fatal(err)
	}
	e.mustPing("big", "10.0.2.10")
	before3, before2 := e.counters("hv3"), e.counters("hv2")
	srv := exec.Command("ip", "netns", "exec", e.s.VMNS("srv"), "iperf3", "-s", "-1", "-p", "5201")
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	var out []byte
	var err error
	for i := 0; i < 20; i++ { // until the server listens
		out, err = exec.Command("ip", "netns", "exec", e.s.VMNS("big"), "iperf3", "-c", "10.0.2.10", "-p", "5201", "-t", "4", "-J").CombinedOutput()
		if !strings.Contains(string(out), "Connection refused") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("iperf3: %v\n%s", err, out)
	}
	var res struct {
		End struct {
			Received struct {
				Bytes float64 `json:"bytes"`
				Bps   float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	json.Unmarshal(out, &res)
	after3, after2 := e.counters("hv3"), e.counters("hv2")
	d := func(a, b map[string]uint64, k string) uint64 { return a[k] - b[k] }
	t.Logf("%.2f Gbit/s; hv3: %d direct, %d through a hub, %d SYNs clamped; hv2: %d lessons through hostd",
		res.End.Received.Bps/1e9, d(after3, before3, "remote_tx"), d(after3, before3, "hub_tx"),
		d(after3, before3, "mss_clamped"), d(after2, before2, "learn_via_hostd"))
	if res.End.Received.Bytes == 0 {
		t.Errorf("nothing received:\n%s", out)
	}
	if d(after3, before3, "mss_clamped") == 0 {
		t.Error("no SYN had its MSS clamped")
	}
	direct, viaHub := d(after3, before3, "remote_tx"), d(after3, before3, "hub_tx")
	if viaHub*20 > direct+viaHub {
		t.Errorf("%d of %d packets went through a hub: stale paths were not refreshed", viaHub, direct+viaHub)
	}
	if d(after2, before2, "learn_via_hostd") == 0 {
		t.Error("no lesson went through hostd: the stale path was refreshed by small packets only, or not at all")
	}
}
