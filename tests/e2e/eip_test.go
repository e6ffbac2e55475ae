package e2e

import (
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/courier-sdn/courier/dataplane"
	"github.com/courier-sdn/courier/internal/lab"
	"github.com/courier-sdn/courier/pipeline"
	"github.com/courier-sdn/courier/tools/sandbox"
	"github.com/courier-sdn/courier/tools/trace"
)

// EIPs from the internet (#15): a sandbox with two gateways and the
// internet namespace, real packets through the gateways' uplinks, VXLAN
// and both hosts' DVRs.

// serve listens on port inside a namespace and answers each connection
// with tag and the address it came from, as the VM saw it.
func serve(t *testing.T, ns string, port int, tag string) {
	t.Helper()
	var ln net.Listener
	err := lab.Do(ns, func() error {
		var err error
		ln, err = net.Listen("tcp4", fmt.Sprintf(":%d", port))
		return err
	})
	if err != nil {
		t.Fatalf("listen in %s: %v", ns, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "%s %s", tag, c.RemoteAddr())
			c.Close()
		}
	}()
}

// dial connects from a namespace, sends req and returns what the server
// said.
func dial(ns, addr string, req ...string) (string, error) {
	var out string
	err := lab.Do(ns, func() error {
		c, err := net.DialTimeout("tcp4", addr, 2*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := io.WriteString(c, strings.Join(req, "")); err != nil {
			return err
		}
		b, err := io.ReadAll(c)
		out = string(b)
		return err
	})
	return out, err
}

// pingFrom pings from any namespace; it returns how many were answered.
func pingFrom(ns, addr string, count int) (int, string) {
	out, _ := lab.Exec(ns, "ping", "-n", "-q", "-c", fmt.Sprint(count), "-i", "0.2", "-W", "1", addr)
	_, recv := lab.PingSummary(out)
	return recv, out
}

func TestEIPFromTheInternet(t *testing.T) {
	e := startOpts(t, sandbox.Options{Hosts: 2, Hubs: 1, Gateways: 2})
	inet := e.s.InternetNS()
	client := sandbox.InternetAddr.Addr().String()
	e.nb("vpc-add", "blue", "--open", "--", "vxnet-add", "blue", "web", "10.0.1.0/24")
	e.nb("port-add", "web", "vm1", "02:00:00:00:01:0a", "10.0.1.10", "--", "port-add", "web", "vm2", "02:00:00:00:01:0b", "10.0.1.11")
	e.vm("hv1", "vm1")
	e.vm("hv2", "vm2")
	e.nb("eip-add", "internet", "203.0.113.5", "--port", "vm1", "--", "eip-add", "internet", "203.0.113.6")
	serve(t, e.s.VMNS("vm1"), 8080, "vm1")
	serve(t, e.s.VMNS("vm2"), 8080, "vm2")
	serve(t, inet, 8081, "internet")

	t.Run("ping and TCP reach the VM, which sees the client's address; replies cross no hub", func(t *testing.T) {
		before := e.counters("hv1")
		if n, out := pingFrom(inet, "203.0.113.5", 3); n != 3 {
			t.Fatalf("internet -> 203.0.113.5: %d/3 answered\n%s", n, out)
		}
		out, err := dial(inet, "203.0.113.5:8080")
		if err != nil || !strings.HasPrefix(out, "vm1 "+client+":") {
			t.Errorf("TCP to 203.0.113.5:8080: %q %v; want vm1 seeing %s", out, err, client)
		}
		for host, want := range map[string]string{"hv1": "eip 203.0.113.5 -> 10.0.1.10", "gw1": "gateway eip 203.0.113.5 -> host 192.168.100.1 "} {
			d, err := e.dp(host).Dump()
			if err != nil || !strings.Contains(strings.Join(d.EIPs, "\n"), want) {
				t.Errorf("courier-dpctl --chassis %s eips: %q %v, want a line with %q", host, d.EIPs, err, want)
			}
		}
		after := e.counters("hv1")
		if after["hub_tx"] != before["hub_tx"] || after["remote_tx"]-before["remote_tx"] < 3 {
			t.Errorf("vm1's host sent %d packets to hubs and %d straight to a host; want none to hubs, the replies to gateways",
				after["hub_tx"]-before["hub_tx"], after["remote_tx"]-before["remote_tx"])
		}
	})
	t.Run("the VM reaches the internet from its EIP", func(t *testing.T) {
		e.mustPing("vm1", client)
		out, err := dial(e.s.VMNS("vm1"), client+":80", "GET / HTTP/1.0\r\n\r\n")
		if err != nil || !strings.Contains(out, "hello from the internet") {
			t.Errorf("vm1 GET http://%s/: %q %v", client, out, err)
		}
		out, err = dial(e.s.VMNS("vm1"), client+":8081")
		if err != nil || !strings.HasPrefix(out, "internet 203.0.113.5:") {
			t.Errorf("vm1 -> %s:8081 seen from %q (%v), want from the EIP 203.0.113.5", client, out, err)
		}
	})
	t.Run("gateways send upstream through the network's next hop", func(t *testing.T) {
		// An address of the internet that the gateways' own tables
		// send to a router that is down: only the next hop the sandbox
		// gave the network reaches it. (With no route at all, the
		// kernel would take the address as on the uplink's link and
		// find it there by ARP.)
		const far = "192.0.2.80"
		if out, err := lab.Exec(inet, "ip", "addr", "add", far+"/32", "dev", "lo"); err != nil {
			t.Fatalf("ip addr add: %v %s", err, out)
		}
		for _, gw := range []string{"gw1", "gw2"} {
			if out, err := lab.Exec(e.s.HostNS(gw), "ip", "route", "add", "192.0.2.0/24", "via", "198.51.100.99", "dev", lab.UplinkName); err != nil {
				t.Fatalf("route on %s: %v %s", gw, err, out)
			}
		}
		if n, out := pingFrom(e.s.VMNS("vm1"), far, 3); n != 3 {
			t.Fatalf("vm1 -> %s through next hop %s: %d/3 answered\n%s", far, client, n, out)
		}
		e.nb("clear", "External_Network", "internet", "next_hop")
		if n, _ := pingFrom(e.s.VMNS("vm1"), far, 2); n != 0 {
			t.Errorf("without a next hop, the gateways still reached %s (%d answered): the next hop decided nothing", far, n)
		}
		e.nb("set", "External_Network", "internet", "next_hop="+client)
		if n, out := pingFrom(e.s.VMNS("vm1"), far, 3); n != 3 {
			t.Errorf("next hop set again: %d/3 answered\n%s", n, out)
		}
	})
	t.Run("what the overlay cannot carry is cut, or refused with fragmentation needed", func(t *testing.T) {
		// 1,500-byte pings: the upstream carries them, the overlay's
		// 1,450 does not.
		big := func(df string) string {
			out, _ := lab.Exec(inet, "ping", "-n", "-c", "2", "-i", "0.2", "-W", "1", "-s", "1472", "-M", df, "203.0.113.5")
			return out
		}
		if out := big("dont"); !strings.Contains(out, "2 received") {
			t.Errorf("1,500-byte pings without DF: want both answered (cut by a gateway)\n%s", out)
		}
		out := big("do")
		route, _ := lab.Exec(inet, "ip", "route", "get", "203.0.113.5")
		if !strings.Contains(out, "mtu = 1450") || !strings.Contains(route, "mtu 1450") {
			t.Errorf("1,500-byte pings with DF: want fragmentation needed naming 1450, and the path MTU learnt\n%s\n%s", out, route)
		}
		lab.Exec(inet, "ip", "route", "flush", "cache")
	})
	t.Run("an unbound EIP and a VM without EIP are unreachable", func(t *testing.T) {
		if n, _ := pingFrom(inet, "203.0.113.6", 2); n != 0 {
			t.Errorf("the unbound EIP 203.0.113.6 answered %d pings", n)
		}
		if _, err := dial(inet, "203.0.113.6:8080"); err == nil {
			t.Errorf("TCP to the unbound EIP connected")
		}
		e.mustNotPing("vm2", client)
	})
	t.Run("unbinding cuts inbound at once; binding elsewhere moves it", func(t *testing.T) {
		e.nb("eip-unbind", "203.0.113.5")
		if n, _ := pingFrom(inet, "203.0.113.5", 2); n != 0 {
			t.Errorf("after eip-unbind, 203.0.113.5 answered %d pings", n)
		}
		e.nb("eip-bind", "203.0.113.5", "vm2")
		out, err := dial(inet, "203.0.113.5:8080")
		if err != nil || !strings.HasPrefix(out, "vm2 "+client+":") {
			t.Errorf("after binding to vm2 (on hv2): %q %v", out, err)
		}
		e.nb("eip-unbind", "203.0.113.5")
		e.nb("eip-bind", "203.0.113.5", "vm1")
	})
	t.Run("same-CIDR VPCs with EIPs stay apart", func(t *testing.T) {
		// red's vm3 has vm1's address, on vm1's host.
		e.nb("vpc-add", "red", "--open", "--", "vxnet-add", "red", "web-red", "10.0.1.0/24")
		e.nb("port-add", "web-red", "vm3", "02:00:00:00:01:0c", "10.0.1.10", "--", "eip-add", "internet", "203.0.113.7", "--port", "vm3")
		e.vm("hv1", "vm3")
		serve(t, e.s.VMNS("vm3"), 8080, "vm3")
		for addr, want := range map[string]string{"203.0.113.5": "vm1", "203.0.113.7": "vm3"} {
			out, err := dial(inet, addr+":8080")
			if err != nil || !strings.HasPrefix(out, want+" "+client+":") {
				t.Errorf("TCP to %s: %q %v, want %s", addr, out, err, want)
			}
		}
		// vm3's traffic leaves from its own EIP.
		out, err := dial(e.s.VMNS("vm3"), client+":8081")
		if err != nil || !strings.HasPrefix(out, "internet 203.0.113.7:") {
			t.Errorf("vm3 -> internet seen from %q (%v), want 203.0.113.7", out, err)
		}
	})
	t.Run("security groups see the VM's own address both ways", func(t *testing.T) {
		// green is not open: vm4 is in the default group (all egress,
		// ingress from members only: a rule naming a group, which the
		// internet's identity is never a member of).
		e.nb("vpc-add", "green", "--", "vxnet-add", "green", "app", "10.2.0.0/24")
		e.nb("port-add", "app", "vm4", "02:00:00:00:02:0a", "10.2.0.10", "--", "eip-add", "internet", "203.0.113.8", "--port", "vm4")
		e.vm("hv2", "vm4")
		serve(t, e.s.VMNS("vm4"), 8080, "vm4")
		before := e.dropsOf("hv2")["sg_ingress"]
		if out, err := dial(inet, "203.0.113.8:8080"); err == nil {
			t.Errorf("the default group let the internet in: %q", out)
		}
		if e.dropsOf("hv2")["sg_ingress"] == before {
			t.Errorf("the refused connection was not dropped as sg_ingress on vm4's host")
		}
		// The gateway stamped the internet's identity, and vm4's host
		// counted the refusal under it (courier-dpctl sg).
		if v, err := e.dp("hv2").SecurityGroups(); err != nil || !slices.ContainsFunc(v.Denials, func(l string) bool {
			return strings.Contains(l, "identity 65535 (internet): ") && strings.Contains(l, "refused by ports' ingress rules")
		}) {
			t.Errorf("hv2's denials %q (%v), want the internet's", v.Denials, err)
		}
		// A connection vm4 opens is tracked by its own address: the
		// replies, translated back on the way in, pass.
		if out, err := dial(e.s.VMNS("vm4"), client+":8081"); err != nil || !strings.HasPrefix(out, "internet 203.0.113.8:") {
			t.Errorf("vm4 -> internet: %q %v", out, err)
		}
		tr := e.trace("", `inport == "vm4" && ip4.dst == `+client+` && tcp.dst == 8081 && eip.gateway`)
		if !slices.ContainsFunc(tr.Hops[0].Steps, func(s trace.Step) bool {
			return s.Stage == "sg_egress" && strings.Contains(s.Detail, "the other end is the internet, identity 65535 (internet)")
		}) {
			t.Errorf("logical trace of vm4 -> internet: %+v, want sg_egress naming the internet", tr.Hops)
		}
		e.nb("sg-add", "green", "web", "--", "sg-rule-add", "green/web", "egress", "any",
			"--", "sg-rule-add", "green/web", "ingress", "tcp", "8080", "--remote", "198.51.100.0/24")
		e.nb("port-set", "vm4", "--sg", "web")
		if out, err := dial(inet, "203.0.113.8:8080"); err != nil || !strings.HasPrefix(out, "vm4 "+client+":") {
			t.Errorf("after an ingress rule for the internet's prefix: %q %v", out, err)
		}
		cs, err := e.dp("hv2").Connections()
		if err != nil || !slices.ContainsFunc(cs, func(c dataplane.Conn) bool {
			return c.Ingress && c.Src.Addr().String() == client && c.RemoteID == pipeline.InternetIdentity
		}) {
			t.Errorf("hv2's connections %+v (%v), want the internet's, opened to vm4 by identity 65535", cs, err)
		}
	})
}

// A long-lived TCP stream through an EIP survives the death of the
// gateway carrying it in (courier-sandbox host-down: hostd killed, links
// down): no reset, every byte echoed, the survivor carrying it from then
// on. Gateways hold no state, the internet's multipath route drops the
// dead one's next hop with its link, and the VM's host passes over a
// gateway silent to its probes.
func TestEIPStreamSurvivesAGatewayDeath(t *testing.T) {
	e := startOpts(t, sandbox.Options{Hosts: 1, Hubs: 1, Gateways: 2})
	e.nb("vpc-add", "blue", "--open", "--", "vxnet-add", "blue", "web", "10.0.1.0/24")
	e.nb("port-add", "web", "vm1", "02:00:00:00:01:0a", "10.0.1.10", "--", "eip-add", "internet", "203.0.113.5", "--port", "vm1")
	e.vm("hv1", "vm1")
	var ln net.Listener
	if err := lab.Do(e.s.VMNS("vm1"), func() error {
		var err error
		ln, err = net.Listen("tcp4", ":9090")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err == nil {
			io.Copy(c, c)
			c.Close()
		}
	}()
	var c net.Conn
	if err := lab.Do(e.s.InternetNS(), func() error {
		var err error
		c, err = net.DialTimeout("tcp4", "203.0.113.5:9090", 2*time.Second)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 64)
	echo := func(i int) {
		t.Helper()
		msg := fmt.Sprintf("message %04d\n", i)
		c.SetDeadline(time.Now().Add(20 * time.Second)) // a failure guard, not a measurement
		if _, err := io.WriteString(c, msg); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		if _, err := io.ReadFull(c, buf[:len(msg)]); err != nil || string(buf[:len(msg)]) != msg {
			t.Fatalf("echo %d: %q %v", i, buf[:len(msg)], err)
		}
	}
	for i := 0; i < 20; i++ {
		echo(i)
	}
	// One flow takes one next hop of the internet's multipath route:
	// the gateway that carried it in dies, its link going down with it.
	busy, seen := "", ""
	before := map[string]map[string]uint64{}
	for _, g := range []string{"gw1", "gw2"} {
		cs := e.counters(g)
		before[g] = cs
		seen += fmt.Sprintf(" %s: %d in, %d out;", g, cs["gw_down"], cs["gw_up"])
		if cs["gw_down"] > 0 {
			if busy != "" {
				t.Fatalf("both gateways carried the stream in (%s): the internet's route does not hash a flow to one", seen)
			}
			busy = g
		}
	}
	if busy == "" {
		t.Fatalf("no gateway counted the stream in:%s", seen)
	}
	e.hostDown(busy)
	t.Logf("took down %s (before:%s)", busy, seen)
	for i := 20; i < 60; i++ {
		echo(i)
		time.Sleep(50 * time.Millisecond) // keep the stream going across the failover
	}
	// The survivor took the stream in: the internet's route lost the
	// dead gateway's next hop.
	cs := e.counters(other(busy))
	in := cs["gw_down"] - before[other(busy)]["gw_down"]
	t.Logf("after: %s carried %d in, %d out", other(busy), in, cs["gw_up"]-before[other(busy)]["gw_up"])
	if in < 40 {
		t.Errorf("%s carried %d packets of the stream in after %s died, want the 40 messages' at least", other(busy), in, busy)
	}
}

func other(gw string) string {
	if gw == "gw1" {
		return "gw2"
	}
	return "gw1"
}
