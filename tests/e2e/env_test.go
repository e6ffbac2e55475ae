// Package e2e runs the whole system: a fresh sandbox per scenario (real
// ovsdb-servers, northd, southd, one hostd per host namespace, VMs as
// namespaces, real VXLAN), asserting on what the kernel and the databases
// show.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/dataplane"
	"github.com/courier-sdn/courier/internal/lab"
	"github.com/courier-sdn/courier/internal/pki"
	"github.com/courier-sdn/courier/internal/testenv"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema/sbdb"
	"github.com/courier-sdn/courier/tools/nbctl"
	"github.com/courier-sdn/courier/tools/sandbox"
)

type env struct {
	t *testing.T
	s *sandbox.Sandbox
}

// start runs a sandbox with a test-unique prefix and run directory,
// removed at the end whatever happens.
func start(t *testing.T, hosts, hubs int) *env {
	t.Helper()
	return startWith(t, hosts, hubs)
}

// startWith is start with more arguments for every hostd.
func startWith(t *testing.T, hosts, hubs int, hostdArgs ...string) *env {
	t.Helper()
	return startOpts(t, sandbox.Options{Hosts: hosts, Hubs: hubs, HostdArgs: hostdArgs})
}

// startTLS is start over mutual TLS with role-based access control; the
// tests' courier-nbctl presents the sandbox's operator certificate.
func startTLS(t *testing.T, hosts, hubs int) *env {
	t.Helper()
	return startOpts(t, sandbox.Options{Hosts: hosts, Hubs: hubs, TLS: true})
}

func startOpts(t *testing.T, o sandbox.Options) *env {
	t.Helper()
	testenv.Integration(t, "ping", "iperf3", "tcpdump", "ip")
	testenv.Root(t)
	o.RunDir, o.Prefix, o.BinDir = testenv.RunDir(t), "ce"+testenv.ID()+"-", testenv.BinDir(t)
	o.DeadAfter, o.Log = 2*time.Second, testenv.Logger(t)
	s, err := sandbox.Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, s: s}
	t.Cleanup(func() {
		if t.Failed() {
			testenv.DumpLogs(t, s.RunDir)
			e.dumpCounters()
		}
		if err := s.Stop(); err != nil {
			t.Errorf("sandbox stop: %v", err)
		}
	})
	return e
}

// dumpCounters logs every host's data-plane counters and drops that are
// not zero, as the test failed: what each host's programs did with the
// packets that went missing (the programs' own ways out: a redirect the
// device made, one they made, a drop by reason).
func (e *env) dumpCounters() {
	for _, h := range e.s.State.Hosts {
		d, err := dataplane.OpenPinned(e.s.State.PinRoot, h.Name)
		if err != nil {
			e.t.Logf("==== %s: counters: %v", h.Name, err)
			continue
		}
		c, cerr := d.Counters()
		ds, derr := d.Drops()
		d.ClosePinned()
		zero := func(_ string, v uint64) bool { return v == 0 }
		maps.DeleteFunc(c, zero)
		maps.DeleteFunc(ds, zero)
		e.t.Logf("==== %s: counters %v (%v), drops %v (%v)", h.Name, c, cerr, ds, derr)
	}
}

// nb runs courier-nbctl with --wait=hv.
func (e *env) nb(args ...string) {
	e.t.Helper()
	if err := e.nbErr("hv", args...); err != nil {
		e.t.Fatalf("courier-nbctl %s: %v", strings.Join(args, " "), err)
	}
}

func (e *env) nbErr(wait string, args ...string) error {
	o := nbctl.Options{DB: e.s.NB(), Wait: wait, Format: "table", Timeout: 20 * time.Second}
	if e.s.TLS() {
		creds, err := pki.Load(e.s.Operator())
		if err != nil {
			return err
		}
		o.DB, o.TLS = e.s.NBTLS(), creds.TLSConfig()
	}
	return nbctl.Run(context.Background(), o, args, &bytes.Buffer{})
}

func (e *env) vm(host, port string) {
	e.t.Helper()
	if err := e.s.AddVM(context.Background(), host, port); err != nil {
		e.t.Fatal(err)
	}
}

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

func (e *env) ping(from, to string) bool {
	n, _ := e.s.Ping(from, ip(to), 3, "0.2")
	return n == 3
}

func (e *env) mustPing(from, to string) {
	e.t.Helper()
	if n, out := e.s.Ping(from, ip(to), 3, "0.2"); n != 3 {
		e.t.Errorf("%s -> %s: %d/3 answered\n%s", from, to, n, out)
	}
}

func (e *env) mustNotPing(from, to string) {
	e.t.Helper()
	if n, out := e.s.Ping(from, ip(to), 2, "0.2"); n != 0 {
		e.t.Errorf("%s -> %s: %d answered, want none\n%s", from, to, n, out)
	}
}

// dp opens a host's data plane read-only.
func (e *env) dp(host string) *dataplane.Datapath {
	e.t.Helper()
	d, err := dataplane.OpenPinned(e.s.State.PinRoot, host)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { d.ClosePinned() })
	return d
}

func (e *env) counters(host string) map[string]uint64 {
	c, err := e.dp(host).Counters()
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *env) cache(host string) map[string]dataplane.CacheEntry {
	es, err := e.dp(host).Cache()
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]dataplane.CacheEntry{}
	for _, c := range es {
		out[fmt.Sprintf("%d/%s", c.VPC, c.IP)] = c
	}
	return out
}

func (e *env) vtep(host string) netip.Addr {
	for _, h := range e.s.State.Hosts {
		if h.Name == host {
			return netip.MustParseAddr(h.VTEP)
		}
	}
	e.t.Fatalf("no host %s", host)
	return netip.Addr{}
}

// pingLoop pings from a VM in the background; wait returns transmitted
// and received counts.
type pingLoop struct {
	cmd *exec.Cmd
	out bytes.Buffer
}

// startPing pings every interval from a VM, count times (0: until stop).
func (e *env) startPing(from, to string, count int, interval string) *pingLoop {
	e.t.Helper()
	args := []string{"netns", "exec", e.s.VMNS(from), "ping", "-n", "-q", "-i", interval, "-W", "1", to}
	if count > 0 {
		args = append(args, "-c", fmt.Sprint(count))
	}
	p := &pingLoop{cmd: exec.Command("ip", args...)}
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			p.cmd.Wait()
		}
	})
	return p
}

// stop ends a ping started with no count (SIGINT: it prints its
// summary) and counts.
func (p *pingLoop) stop() (sent, recv int) {
	p.cmd.Process.Signal(os.Interrupt)
	return p.wait()
}

func (p *pingLoop) wait() (sent, recv int) {
	p.cmd.Wait()
	return lab.PingSummary(p.out.String())
}

// capture counts frames matching filter on the fabric bridge (the
// underlay) until stop is called.
type capture struct {
	cmd *exec.Cmd
	out bytes.Buffer
}

func (e *env) capture(filter string) *capture {
	e.t.Helper()
	c := &capture{cmd: exec.Command("ip", "netns", "exec", e.s.State.Prefix+"fabric", "tcpdump", "-i", "br0", "-n", "-e", "-l", "-p", filter)}
	c.cmd.Stdout, c.cmd.Stderr = &c.out, &c.out
	if err := c.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // tcpdump attaches
	e.t.Cleanup(func() { c.cmd.Process.Kill(); c.cmd.Wait() })
	return c
}

// stop ends the capture and returns the captured lines.
func (c *capture) stop() []string {
	time.Sleep(300 * time.Millisecond)
	c.cmd.Process.Signal(interruptSignal)
	c.cmd.Wait()
	var lines []string
	for _, l := range strings.Split(c.out.String(), "\n") {
		if l == "" || strings.HasPrefix(l, "tcpdump:") || strings.HasPrefix(l, "listening") ||
			strings.Contains(l, "packets captured") || strings.Contains(l, "received by filter") || strings.Contains(l, "dropped by kernel") {
			continue
		}
		lines = append(lines, l)
	}
	return lines
}

func mac(s string) net.HardwareAddr {
	m, _ := net.ParseMAC(s)
	return m
}

// hostDown takes a host down as courier-sandbox host-down does: its
// hostd killed, its links down on both sides. As far as the rest is
// concerned, the machine died.
func (e *env) hostDown(host string) {
	e.t.Helper()
	if _, err := e.s.HostDown(host); err != nil {
		e.t.Fatal(err)
	}
}

// diagnose logs what the hosts' data planes hold, and keeps a copy of the
// run directory's logs in $COURIER_E2E_KEEP if set.
func (e *env) diagnose(hosts ...string) {
	if keep := os.Getenv("COURIER_E2E_KEEP"); keep != "" {
		exec.Command("cp", "-r", e.s.RunDir, keep).Run()
	}
	for _, h := range hosts {
		d := e.dp(h)
		dump, _ := d.Dump()
		c, _ := d.Cache()
		cs, _ := d.Counters()
		ds, _ := d.Drops()
		var nz []string
		for k, v := range ds {
			if v > 0 {
				nz = append(nz, fmt.Sprintf("%s=%d", k, v))
			}
		}
		e.t.Logf("%s: ports %v vxnets %v vpcs %v hubs %v routes %v locals %v bindings %d\ncache %+v\ncounters %v\ndrops %v",
			h, dump.Ports, dump.Vxnets, dump.VPCs, dump.Hubs, dump.Routes, dump.Locals, dump.Bindings, c, cs, nz)
	}
}

// sbRows selects columns of every row of a southbound table.
func (e *env) sbRows(table string, columns ...string) []ovsdb.Row {
	e.t.Helper()
	m, _ := sbdb.FullDatabaseModel()
	s, err := ops.Open(e.t.Context(), m, ops.SessionOptions{Remotes: []string{e.s.SB()}})
	if err != nil {
		e.t.Fatal(err)
	}
	defer s.Close()
	res, err := ops.Transact(e.t.Context(), s, ops.SelectAll(table, columns...)...)
	if err != nil {
		e.t.Fatal(err)
	}
	return res[0].Rows
}

// iperfReport is what the tests read of iperf3 -J.
type iperfReport struct {
	Intervals []struct {
		Sum struct {
			Bytes float64 `json:"bytes"`
		} `json:"sum"`
	} `json:"intervals"`
	End struct {
		SumReceived struct {
			Bytes float64 `json:"bytes"`
		} `json:"sum_received"`
	} `json:"end"`
	Error string `json:"error"`
}

// parseIperf reads iperf3 -J's output; a run iperf3 says failed is an
// error.
func parseIperf(out string) (iperfReport, error) {
	var rep iperfReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		return rep, fmt.Errorf("iperf3 output: %w", err)
	}
	if rep.Error != "" {
		return rep, fmt.Errorf("iperf3: %s", rep.Error)
	}
	return rep, nil
}
