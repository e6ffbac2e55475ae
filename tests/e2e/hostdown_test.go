package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"

	"github.com/courier-sdn/courier/internal/lab"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema/sbdb"
	"github.com/courier-sdn/courier/tools/sandbox"
)

// sbView is what the southbound says of a chassis and a port: the
// chassis's liveness (southd's) and where the port is bound and whether
// it is up.
type sbView struct {
	Alive   bool
	Chassis string
	Up      bool
}

// sbWatch reads Chassis_Private and Port_Binding from a monitoring
// session; view is the current state of chassis and port.
func (e *env) sbWatch() func(chassis, port string) sbView {
	e.t.Helper()
	m, _ := sbdb.FullDatabaseModel()
	s, err := ops.Open(e.t.Context(), m, ops.SessionOptions{Remotes: []string{e.s.SB()},
		Monitor: []client.MonitorOption{client.WithTable(&sbdb.ChassisPrivate{}), client.WithTable(&sbdb.PortBinding{})}})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { s.Close() })
	return func(chassis, port string) sbView {
		var v sbView
		cp, _ := ops.First[sbdb.ChassisPrivate](e.t.Context(), s, func(c *sbdb.ChassisPrivate) bool { return c.Name == chassis })
		if cp != nil && cp.Alive != nil {
			v.Alive = *cp.Alive
		}
		pb, _ := ops.First[sbdb.PortBinding](e.t.Context(), s, func(p *sbdb.PortBinding) bool { return p.LogicalPort == port })
		if pb != nil {
			if pb.Chassis != nil {
				v.Chassis = *pb.Chassis
			}
			v.Up = pb.Up != nil && *pb.Up
		}
		return v
	}
}

// hostdCmdline is the command line of a host's running hostd.
func (e *env) hostdCmdline(host string) string {
	e.t.Helper()
	pid := e.s.HostdPID(host)
	if pid == 0 {
		e.t.Fatalf("hostd of %s is not running", host)
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		e.t.Fatal(err)
	}
	return strings.ReplaceAll(string(b), "\x00", " ")
}

// A hypervisor fails and returns (courier-sandbox host-down, host-up).
// Down: its hostd is gone, both ends of its underlay link are down, a VM
// on another host loses its VM, and southd declares the chassis dead
// (dead-after 2 s here) and the port down, still bound there. Up: the
// same hostd command line, southd declares it alive, the port comes up
// where it was, and the VMs talk again.
func TestHostDownAndUpOfAHypervisor(t *testing.T) {
	// hv1 is the hub; every hostd gets an argument of the test's, which host-up keeps.
	e := startWith(t, 2, 1, "--heartbeat", "500ms")
	e.nb("vpc-add", "v", "--", "vxnet-add", "v", "x", "10.9.0.0/24",
		"--", "port-add", "x", "a", "02:00:00:0f:00:0a", "10.9.0.10", "--", "port-add", "x", "b", "02:00:00:0f:00:0b", "10.9.0.11")
	e.vm("hv1", "a")
	e.vm("hv2", "b")
	e.mustPing("a", "10.9.0.11")
	view := e.sbWatch()
	if v := view("hv2", "b"); v != (sbView{Alive: true, Chassis: "hv2", Up: true}) {
		t.Fatalf("before: the southbound says %+v", v)
	}
	cmdline := e.hostdCmdline("hv2")
	ends := e.s.Lab().UnderlayEnds(e.s.Lab().Hosts["hv2"])

	was, err := e.s.HostDown("hv2")
	if err != nil || was {
		t.Fatalf("host-down hv2: was down %v, %v", was, err)
	}
	down := time.Now()
	if pid := e.s.HostdPID("hv2"); pid != 0 {
		t.Errorf("hv2's hostd still runs (pid %d)", pid)
	}
	for _, end := range ends {
		if up, err := lab.LinksUp([]lab.LinkEnd{end}); up || err != nil {
			t.Errorf("%s is up (%v), want down", end, err)
		}
	}
	if !e.s.IsDown("hv2") {
		t.Error("the sandbox does not record hv2 as down")
	}
	e.mustNotPing("a", "10.9.0.11")
	var v sbView
	if !waitFor(5*time.Second, func() bool { v = view("hv2", "b"); return !v.Alive && !v.Up }) {
		t.Fatalf("%v after host-down the southbound says %+v, want hv2 dead and b down", time.Since(down).Round(time.Millisecond), v)
	}
	t.Logf("southd declared hv2 dead %v after host-down", time.Since(down).Round(time.Millisecond))
	if v.Chassis != "hv2" {
		t.Errorf("b's binding moved to %q while hv2 was down, want it kept on hv2", v.Chassis)
	}
	if was, err := e.s.HostDown("hv2"); err != nil || !was {
		t.Errorf("host-down hv2 again: was down %v, %v; want it told it was", was, err)
	}

	was, err = e.s.HostUp("hv2")
	if err != nil || was {
		t.Fatalf("host-up hv2: was up %v, %v", was, err)
	}
	up := time.Now()
	if got := e.hostdCmdline("hv2"); got != cmdline {
		t.Errorf("hostd restarted as %q, want %q", got, cmdline)
	}
	if up, err := lab.LinksUp(ends); !up || err != nil {
		t.Errorf("hv2's links %v up after host-up (%v)", ends, err)
	}
	if !waitFor(5*time.Second, func() bool { v = view("hv2", "b"); return v == sbView{Alive: true, Chassis: "hv2", Up: true} }) {
		t.Fatalf("%v after host-up the southbound says %+v, want hv2 alive and b up on it", time.Since(up).Round(time.Millisecond), v)
	}
	t.Logf("southd declared hv2 alive and b up %v after host-up", time.Since(up).Round(time.Millisecond))
	e.mustPing("a", "10.9.0.11")
	e.mustPing("b", "10.9.0.10")
	if was, err := e.s.HostUp("hv2"); err != nil || !was {
		t.Errorf("host-up hv2 again: was up %v, %v; want it told it was", was, err)
	}
}

// Gateways fail and return (#15). Every gateway down: the internet has
// no route to the EIPs left (the kernel deletes a multipath route whose
// every next hop is dead). One back: host-up puts its next hop back, its
// hostd is restarted as it was, and the EIP answers through it alone.
func TestHostDownAndUpOfEveryGateway(t *testing.T) {
	e := startOpts(t, sandbox.Options{Hosts: 1, Hubs: 1, Gateways: 2})
	e.nb("vpc-add", "blue", "--open", "--", "vxnet-add", "blue", "web", "10.0.1.0/24")
	e.nb("port-add", "web", "vm1", "02:00:00:00:01:0a", "10.0.1.10", "--", "eip-add", "internet", "203.0.113.5", "--port", "vm1")
	e.vm("hv1", "vm1")
	inet := e.s.InternetNS()
	// Nothing waits for the gateways to know the port's binding (vm-add
	// binds it): until then a gateway drops what the host sends it from
	// the EIP (its first reply was once lost, unknown_vni, on gw2, whose
	// hostd had started last). Their failures are this test's subject.
	waitFor(10*time.Second, func() bool { n, _ := pingFrom(inet, "203.0.113.5", 1); return n == 1 })
	if n, out := pingFrom(inet, "203.0.113.5", 3); n != 3 {
		t.Fatalf("from the internet before: %d/3\n%s", n, out)
	}
	cmdline := e.hostdCmdline("gw2")
	for _, g := range []string{"gw1", "gw2"} {
		e.hostDown(g)
		for _, end := range e.s.Lab().UplinkEnds(e.s.Lab().Hosts[g]) {
			if up, err := lab.LinksUp([]lab.LinkEnd{end}); up || err != nil {
				t.Errorf("%s is up (%v), want down", end, err)
			}
		}
	}
	if n, out := pingFrom(inet, "203.0.113.5", 2); n != 0 {
		t.Errorf("from the internet with every gateway down: %d answered\n%s", n, out)
	}
	if was, err := e.s.HostUp("gw2"); err != nil || was {
		t.Fatalf("host-up gw2: was up %v, %v", was, err)
	}
	if got := e.hostdCmdline("gw2"); got != cmdline {
		t.Errorf("gw2's hostd restarted as %q, want %q", got, cmdline)
	}
	before := e.counters("gw2")["gw_down"]
	// The host passes over gw1, silent to its probes, within 300 ms.
	if !waitFor(5*time.Second, func() bool { n, _ := pingFrom(inet, "203.0.113.5", 1); return n == 1 }) {
		t.Fatal("the EIP does not answer through gw2 after host-up gw2")
	}
	if n, out := pingFrom(inet, "203.0.113.5", 3); n != 3 {
		t.Errorf("from the internet through gw2 alone: %d/3\n%s", n, out)
	}
	if in := e.counters("gw2")["gw_down"] - before; in == 0 {
		t.Error("gw2 carried nothing in after host-up")
	}
	if !e.s.IsDown("gw1") || e.s.IsDown("gw2") {
		t.Errorf("down: gw1 %v gw2 %v, want gw1 only", e.s.IsDown("gw1"), e.s.IsDown("gw2"))
	}
}
