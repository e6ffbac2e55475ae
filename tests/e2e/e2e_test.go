package e2e

import (
	"fmt"
	"math/rand"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/courier-sdn/courier/internal/testenv"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema/sbdb"
)

var interruptSignal = syscall.SIGINT

// blue: VPC blue, vxnets web (10.0.1.0/24) and db (10.0.2.0/24), VMs
// w1, w2 on hv3, w3 on hv1, d1 on hv2, d2 on hv3.
func (e *env) blue() {
	e.t.Helper()
	e.nb("vpc-add", "blue", "--", "vxnet-add", "blue", "web", "10.0.1.0/24", "--", "vxnet-add", "blue", "db", "10.0.2.0/24",
		"--", "port-add", "web", "w1", "02:00:00:01:01:0a", "10.0.1.10",
		"--", "port-add", "web", "w2", "02:00:00:01:01:0b", "10.0.1.11",
		"--", "port-add", "web", "w3", "02:00:00:01:01:0c", "10.0.1.12",
		"--", "port-add", "db", "d1", "02:00:00:01:02:0a", "10.0.2.10",
		"--", "port-add", "db", "d2", "02:00:00:01:02:0b", "10.0.2.11")
	for _, v := range []struct{ host, port string }{{"hv3", "w1"}, {"hv3", "w2"}, {"hv1", "w3"}, {"hv2", "d1"}, {"hv3", "d2"}} {
		e.vm(v.host, v.port)
	}
	e.nb("sync")
}

// 1. Same and cross vxnet, ping and TCP, across hosts and on one host.
func TestConnectivity(t *testing.T) {
	connectivity(t, start(t, 3, 2))
}

// The same over mutual TLS with role-based access control: every
// daemon presents its own certificate, each hostd its chassis's; the
// sandbox says where its TLS listeners are.
func TestConnectivityOverTLS(t *testing.T) {
	e := startTLS(t, 3, 2)
	connectivity(t, e)
	out, err := exec.Command(filepath.Join(testenv.BinDir(t), "courier-sandbox"), "--run-dir", e.s.RunDir, "status").CombinedOutput()
	for _, want := range []string{e.s.NBTLS(), e.s.SBTLS(), "role courier-chassis", "operator-cert.pem"} {
		if err != nil || !strings.Contains(string(out), want) {
			t.Errorf("courier-sandbox status does not say %q (%v):\n%s", want, err, out)
		}
	}
}

func connectivity(t *testing.T, e *env) {
	e.blue()
	e.mustPing("w1", "10.0.1.11") // same vxnet, same host
	e.mustPing("w1", "10.0.1.12") // same vxnet, other host
	e.mustPing("w1", "10.0.2.10") // other vxnet, other host
	e.mustPing("w1", "10.0.2.11") // other vxnet, same host
	e.mustPing("d1", "10.0.1.12") // hub to hub
	for _, c := range []struct{ client, server, addr string }{{"w1", "w3", "10.0.1.12"}, {"d1", "w1", "10.0.1.10"}, {"w1", "d2", "10.0.2.11"}} {
		srv := exec.Command("ip", "netns", "exec", e.s.VMNS(c.server), "iperf3", "-s", "-1", "-p", "5201")
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
		out, err := e.s.Exec(c.client, "iperf3", "-c", c.addr, "-p", "5201", "-t", "2", "--bidir")
		srv.Process.Kill()
		srv.Wait()
		if err != nil || !strings.Contains(out, "receiver") {
			t.Errorf("TCP %s <-> %s: %v\n%s", c.client, c.server, err, out)
		}
	}
}

// 2 and 3. Two VPCs with identical CIDRs never meet, and the underlay
// carries no ARP and no broadcast or multicast frame at all.
func TestIsolationAndNoFlooding(t *testing.T) {
	e := start(t, 3, 2)
	cap := e.capture("arp or ether broadcast or ether multicast or ip multicast")
	e.blue()
	e.nb("vpc-add", "red", "--", "vxnet-add", "red", "app", "10.0.1.0/24", "--", "vxnet-add", "red", "data", "10.0.2.0/24",
		"--", "port-add", "app", "r1", "02:00:00:02:01:0a", "10.0.1.10",
		"--", "port-add", "data", "r2", "02:00:00:02:02:0a", "10.0.2.10")
	e.vm("hv3", "r1")
	e.vm("hv1", "r2")
	e.nb("sync")
	e.mustPing("r1", "10.0.2.10") // red's own 10.0.2.10 (r2)
	e.mustPing("w1", "10.0.2.10") // blue's 10.0.2.10 (d1)
	e.mustNotPing("r1", "10.0.1.12")
	e.mustNotPing("r1", "10.0.2.11")
	// r1's host learned where r2 lived; deleting the port takes that
	// path out of its cache (the hub that taught it says forget). The
	// port goes before the VM: a VM's interface going away releases its
	// binding, which would make the hub say forget as well.
	toR2 := func() bool {
		for _, c := range e.cache("hv3") {
			if c.IP == ip("10.0.2.10") && c.VTEP == e.vtep("hv1") {
				return true
			}
		}
		return false
	}
	if !toR2() {
		t.Fatal("hv3 did not learn r2's location")
	}
	e.nb("port-del", "r2")
	testenv.Eventually(t, 3*time.Second, "r2 forgotten by hv3", func() error {
		if toR2() {
			return fmt.Errorf("hv3 still sends 10.0.2.10 of VPC red to hv1: %v", e.cache("hv3"))
		}
		return nil
	})
	// Red's 10.0.2.10 is gone: red can no longer reach it, although
	// blue's machine with the same address is still there.
	if err := e.s.DelVM("r2"); err != nil {
		t.Fatal(err)
	}
	e.mustNotPing("r1", "10.0.2.10")
	e.mustPing("w1", "10.0.2.10")
	if lines := cap.stop(); len(lines) > 0 {
		t.Errorf("the underlay carried %d ARP, broadcast or multicast frames:\n%s", len(lines), strings.Join(lines, "\n"))
	}
}

// 4. Learning: the first packet goes through a hub; the sender then holds
// the direct entry and the hub sees the flow no more. With many VMs each
// talking to a few peers, each host holds those peers and nothing else.
func TestLearning(t *testing.T) {
	e := start(t, 4, 1) // hv1 is the hub; hv2..hv4 learn
	const vms = 200
	var args []string
	args = append(args, "vpc-add", "big", "--", "vxnet-add", "big", "a", "10.8.0.0/24", "--", "vxnet-add", "big", "b", "10.9.0.0/24")
	addr := func(i int) string { return fmt.Sprintf("10.%d.0.%d", 8+i%2, 10+i/2) }
	host := func(i int) string { return fmt.Sprintf("hv%d", 1+i%4) }
	for i := 0; i < vms; i++ {
		args = append(args, "--", "port-add", []string{"a", "b"}[i%2], fmt.Sprintf("m%d", i),
			fmt.Sprintf("02:00:00:08:%02x:%02x", i>>8, i&255), addr(i))
	}
	e.nb(args...)
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := 0; i < vms; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			if err := e.s.AddVM(t.Context(), host(i), fmt.Sprintf("m%d", i)); err != nil {
				mu.Lock()
				t.Error(err)
				mu.Unlock()
			}
		}(i)
	}
	wg.Wait()
	e.nb("sync")

	// The first flow: through the hub, then direct.
	hub0 := e.counters("hv1")
	e.mustPing("m1", addr(2)) // hv2 -> hv3, across vxnets
	hub1 := e.counters("hv1")
	if hub1["hub_forward"]+hub1["hub_arp_reply"] == hub0["hub_forward"]+hub0["hub_arp_reply"] {
		t.Fatalf("the first packets did not go through the hub: %v", hub1)
	}
	if c, ok := e.cache("hv2")["1/"+addr(2)]; !ok || c.VTEP != e.vtep("hv3") {
		t.Fatalf("hv2 did not learn where %s lives: %+v", addr(2), e.cache("hv2"))
	}
	e.mustPing("m1", addr(2))
	hub2 := e.counters("hv1")
	// What the hub did with packets (it also answers the hosts' liveness
	// probes meanwhile).
	data := func(c map[string]uint64) uint64 {
		return c["hub_forward"] + c["hub_arp_reply"] + c["learn_sent"] + c["local_tx"] + c["unknown_sent"]
	}
	if data(hub2) != data(hub1) {
		t.Errorf("the hub still handled the learned flow: %d packets", data(hub2)-data(hub1))
	}

	// Each VM talks to three peers; each host then holds exactly the
	// remote peers its VMs talked with, either way.
	r := rand.New(rand.NewSource(1))
	want := map[string]map[string]bool{"hv2": {}, "hv3": {}, "hv4": {}}
	want["hv2"]["1/"+addr(2)] = true
	want["hv3"]["1/"+addr(1)] = true
	type talk struct{ from, to int }
	var talks []talk
	for i := 0; i < vms; i++ {
		for k := 0; k < 3; k++ {
			j := r.Intn(vms)
			if j == i {
				continue
			}
			talks = append(talks, talk{i, j})
			if host(i) != host(j) {
				if w, ok := want[host(i)]; ok {
					w["1/"+addr(j)] = true
				}
				if w, ok := want[host(j)]; ok {
					w["1/"+addr(i)] = true
				}
			}
		}
	}
	failed := 0
	for _, tk := range talks {
		wg.Add(1)
		sem <- struct{}{}
		go func(tk talk) {
			defer wg.Done()
			defer func() { <-sem }()
			if n, _ := e.s.Ping(fmt.Sprintf("m%d", tk.from), ip(addr(tk.to)), 1, "0.2"); n != 1 {
				mu.Lock()
				failed++
				mu.Unlock()
			}
		}(tk)
	}
	wg.Wait()
	if failed > 0 {
		t.Errorf("%d of %d pings failed", failed, len(talks))
	}
	for h, w := range want {
		got := e.cache(h)
		var extra, missing []string
		for k := range got {
			if !w[k] {
				extra = append(extra, k)
			}
		}
		for k := range w {
			if _, ok := got[k]; !ok {
				missing = append(missing, k)
			}
		}
		if len(extra) > 0 || len(missing) > 0 {
			t.Errorf("%s caches %d entries; not its peers: %v; peers missing: %v", h, len(got), extra, missing)
		}
		t.Logf("%s holds %d learned paths of a %d-VM VPC", h, len(got), vms)
	}
}

// 5. A VM moves to another host, keeping its IP and MAC, while a ping
// runs; every cache that held the old location is updated.
func TestMigration(t *testing.T) {
	e := start(t, 4, 1)
	e.nb("vpc-add", "v", "--", "vxnet-add", "v", "x", "10.1.0.0/24",
		"--", "port-add", "x", "src", "02:00:00:03:00:0a", "10.1.0.10",
		"--", "port-add", "x", "mover", "02:00:00:03:00:0b", "10.1.0.11", "--chassis", "hv2")
	e.vm("hv3", "src")
	e.vm("hv2", "mover")
	e.nb("sync")
	e.mustPing("src", "10.1.0.11")
	if c := e.cache("hv3")["1/10.1.0.11"]; c.VTEP != e.vtep("hv2") {
		t.Fatalf("hv3 did not learn mover on hv2: %+v", c)
	}
	p := e.startPing("src", "10.1.0.11", 400, "0.01") // 4 s
	time.Sleep(time.Second)
	e.nb("port-set", "mover", "--chassis", "hv4")
	if err := e.s.MoveVM(t.Context(), "mover", "hv4"); err != nil {
		t.Fatal(err)
	}
	sent, recv := p.wait()
	lost := sent - recv
	t.Logf("migration: %d of %d pings lost, a window of about %d ms", lost, sent, lost*10)
	if lost*10 > 1000 {
		t.Errorf("mover unreachable for about %d ms (more than a second)", lost*10)
	}
	if c, ok := e.cache("hv3")["1/10.1.0.11"]; ok && c.VTEP != e.vtep("hv4") {
		t.Errorf("hv3 still sends to mover's old host: %+v", c)
	}
	e.mustPing("src", "10.1.0.11")
}

// 6. Restarts during a 100-per-second ping: hostd on both ends, northd,
// southd lose nothing; with a database down the data plane keeps
// forwarding, and everything converges when it is back.
func TestRestarts(t *testing.T) {
	e := start(t, 3, 2)
	e.blue()
	e.mustPing("w1", "10.0.2.10")
	p := e.startPing("w1", "10.0.2.10", 1300, "0.01")
	time.Sleep(500 * time.Millisecond)
	step := func(what string, fn func() error) {
		t.Helper()
		if err := fn(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(700 * time.Millisecond)
	}
	step("restart hostd on hv3", func() error { return e.s.RestartHostd("hv3") })
	step("kill and start hostd on hv2", func() error {
		if err := e.s.KillHostd("hv2"); err != nil {
			return err
		}
		return e.s.StartHostd("hv2")
	})
	c := e.s.Ctl()
	for _, d := range []string{"courier-northd", "courier-southd"} {
		step("restart "+d, func() error {
			if err := c.StopDaemon(d); err != nil {
				return err
			}
			return c.StartDaemon(d)
		})
	}
	step("stop the southbound database", func() error { return c.StopServer("sb") })
	step("start it again", func() error { return c.StartServer(t.Context(), "sb") })
	step("stop the northbound database", func() error { return c.StopServer("nb") })
	step("start it again", func() error { return c.StartServer(t.Context(), "nb") })
	sent, recv := p.wait()
	t.Logf("%d pings across restarts, %d answered", sent, recv)
	if sent-recv > 0 {
		t.Errorf("%d pings lost across restarts", sent-recv)
		e.diagnose("hv3", "hv2", "hv1")
	}
	// Converged: a new port works end to end.
	testenv.Eventually(t, 20*time.Second, "new port after restarts", func() error {
		return e.nbErr("hv", "--may-exist", "port-add", "web", "w4", "02:00:00:01:01:0d", "10.0.1.13")
	})
	e.vm("hv2", "w4")
	e.nb("sync")
	e.mustPing("w1", "10.0.1.13")
}

// 7. The hub a flow's first packets used dies: new destinations are
// still reached, and southd puts another hub in its place.
func TestHubFailover(t *testing.T) {
	e := start(t, 5, 3) // hubs-per-VPC is 2: hv1..hv3 are candidates
	e.nb("vpc-add", "v", "--", "vxnet-add", "v", "x", "10.2.0.0/24")
	for i := 0; i < 6; i++ {
		e.nb("port-add", "x", fmt.Sprintf("p%d", i), fmt.Sprintf("02:00:00:04:00:%02x", i), fmt.Sprintf("10.2.0.%d", 10+i))
	}
	e.vm("hv4", "p0")
	for i := 1; i < 6; i++ {
		e.vm([]string{"", "hv5", "hv5", "hv4", "hv5", "hv4"}[i], fmt.Sprintf("p%d", i))
	}
	e.nb("sync")
	hubsOf := func() []string {
		m, _ := sbdb.FullDatabaseModel()
		s, err := ops.Open(t.Context(), m, ops.SessionOptions{Remotes: []string{e.s.SB()}})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		res, err := ops.Transact(t.Context(), s, ops.SelectAll(sbdb.HubTable, "chassis")...)
		if err != nil || len(res[0].Rows) != 1 {
			t.Fatalf("hubs: %v %v", res, err)
		}
		return ops.StringSet(res[0].Rows[0]["chassis"])
	}
	before := hubsOf()
	e.mustPing("p0", "10.2.0.11")
	used := ""
	for _, h := range before {
		if c := e.counters(h); c["hub_forward"]+c["hub_arp_reply"] > 0 {
			used = h
		}
	}
	if used == "" {
		t.Fatalf("no hub of %v forwarded the first packets", before)
	}
	t.Logf("hubs %v; %s carried the first packets; taking it down", before, used)
	e.hostDown(used)
	testenv.Eventually(t, 10*time.Second, "a replacement hub", func() error {
		now := hubsOf()
		for _, h := range now {
			if h == used {
				return fmt.Errorf("still %v", now)
			}
		}
		if len(now) != 2 {
			return fmt.Errorf("only %v", now)
		}
		return nil
	})
	t.Logf("hubs now %v", hubsOf())
	// New destinations are still reached.
	for _, dst := range []string{"10.2.0.12", "10.2.0.14"} {
		e.mustPing("p0", dst)
	}
}

// 8. --wait=hv: once it returns, the new VM is reachable from every host.
func TestWaitHV(t *testing.T) {
	e := start(t, 3, 2)
	e.nb("vpc-add", "v", "--", "vxnet-add", "v", "x", "10.3.0.0/24")
	for i, h := range []string{"hv1", "hv2", "hv3"} {
		port := fmt.Sprintf("s%d", i)
		e.nb("port-add", "x", port, fmt.Sprintf("02:00:00:05:00:%02x", i), fmt.Sprintf("10.3.0.%d", 10+i), "--chassis", h)
		e.vm(h, port)
	}
	e.nb("sync")
	// The VM's interface exists first; its port is declared after.
	gw := ip("10.3.0.1")
	if err := e.s.AddVMAt("hv3", "fresh", mac("02:00:00:05:00:99"), netip.MustParsePrefix("10.3.0.99/24"), gw); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	e.nb("port-add", "x", "fresh", "02:00:00:05:00:99", "10.3.0.99", "--chassis", "hv3")
	t.Logf("port-add --wait=hv took %v", time.Since(start))
	for _, from := range []string{"s0", "s1", "s2"} {
		if n, out := e.s.Ping(from, ip("10.3.0.99"), 1, "0.2"); n != 1 {
			t.Errorf("%s could not reach the new VM right after --wait=hv:\n%s", from, out)
		}
	}
}

// 9. Bad input, through the CLI and raw transactions, is refused or
// reported, and traffic of unrelated VMs never stops.
func TestBadInputKeepsTrafficFlowing(t *testing.T) {
	e := start(t, 2, 1)
	e.nb("vpc-add", "v", "--", "vxnet-add", "v", "x", "10.4.0.0/24", "--vni", "4000",
		"--", "port-add", "x", "a", "02:00:00:06:00:0a", "10.4.0.10", "--", "port-add", "x", "b", "02:00:00:06:00:0b", "10.4.0.11")
	e.vm("hv1", "a")
	e.vm("hv2", "b")
	e.nb("sync")
	p := e.startPing("a", "10.4.0.11", 300, "0.01")
	for _, bad := range [][]string{
		{"port-add", "x", "c", "02:00:00:06:00:0c", "10.9.9.9"},
		{"port-add", "x", "c", "02:00:00:06:00:0c", "10.4.0.11"},
		{"port-add", "x", "c", "02:00:00:06:00:0b", "10.4.0.12"},
		{"vxnet-add", "v", "y", "10.4.0.128/25"},
		{"vxnet-add", "v", "y", "10.5.0.0/24", "--vni", "4000"},
		{"route-add", "v", "0.0.0.0/0", "10.7.7.7"},
	} {
		if err := e.nbErr("none", bad...); err == nil {
			t.Errorf("accepted: %v", bad)
		}
	}
	// The same through a raw transaction: northd refuses the rows.
	out, err := exec.Command("ovsdb-client", "transact", e.s.NB(), fmt.Sprintf(`["Courier_Northbound",
	  {"op":"insert","table":"Port","uuid-name":"p","row":{"name":"rawdup","mac":"02:00:00:06:00:0d","ips":"10.4.0.11"}},
	  {"op":"mutate","table":"Vxnet","where":[["name","==","x"]],"mutations":[["ports","insert",["set",[["named-uuid","p"]]]]]},
	  {"op":"insert","table":"Vxnet","uuid-name":"v","row":{"name":"rawover","cidr":"10.4.0.0/25"}},
	  {"op":"mutate","table":"VPC","where":[["name","==","v"]],"mutations":[["vxnets","insert",["set",[["named-uuid","v"]]]]]}]`)).CombinedOutput()
	if err != nil {
		t.Fatalf("raw transaction: %v %s", err, out)
	}
	e.nb("sync")
	dump, _ := exec.Command("ovsdb-client", "dump", e.s.NB(), "Courier_Northbound").CombinedOutput()
	for _, want := range []string{"IP 10.4.0.11 is already used by port b", "CIDR 10.4.0.0/25 overlaps vxnet x"} {
		if !strings.Contains(string(dump), want) {
			t.Errorf("no status says %q", want)
		}
	}
	sent, recv := p.wait()
	if sent != recv {
		t.Errorf("unrelated traffic lost %d of %d pings during the bad changes", sent-recv, sent)
	}
}
