package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/courier-sdn/courier/dataplane"
	"github.com/courier-sdn/courier/internal/lab"
	"github.com/courier-sdn/courier/internal/testenv"
	"github.com/courier-sdn/courier/schema/sbdb"
	"github.com/courier-sdn/courier/tools/dpctl"
	"github.com/courier-sdn/courier/tools/sandbox"
)

// Distributed SNAT (#15): VMs without an EIP reach the internet through
// their VPC's SNAT address, translated on their own host within port
// blocks southd allocated, through stateless gateways.

// snatBlocks lists the southbound's SNAT blocks as "port address:lo".
func (e *env) snatBlocks() []string {
	e.t.Helper()
	var out []string
	for _, r := range e.sbRows(sbdb.SNATBlockTable, "logical_port", "address", "port_lo") {
		out = append(out, fmt.Sprintf("%v %v:%v", r["logical_port"], r["address"], r["port_lo"]))
	}
	return out
}

// blocksOf counts a port's blocks.
func blocksOf(blocks []string, port string) int {
	n := 0
	for _, b := range blocks {
		if strings.HasPrefix(b, port+" ") {
			n++
		}
	}
	return n
}

// fetch opens a TCP connection to addr and reads it to its end.
func fetch(addr string) error {
	c, err := net.DialTimeout("tcp4", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	_, err = io.Copy(io.Discard, c)
	return err
}

// connectMany opens n TCP connections from a namespace to addr, w at a
// time, each read to its end; it returns the errors and how many took
// longer than a second (a SYN retransmitted). It gives up after 90 s.
func connectMany(ns, addr string, n, w int) (errs map[string]int, slow int, took time.Duration) {
	errs = map[string]int{}
	var mu sync.Mutex
	var slowN atomic.Int64
	next := atomic.Int64{}
	start := time.Now()
	var wg sync.WaitGroup
	for range w {
		wg.Add(1)
		// Each worker enters the namespace itself: a goroutine started
		// inside lab.Do runs on another thread, outside it.
		go func() {
			defer wg.Done()
			lab.Do(ns, func() error {
				for next.Add(1) <= int64(n) && time.Since(start) < 90*time.Second {
					t0 := time.Now()
					err := fetch(addr)
					if time.Since(t0) > time.Second {
						slowN.Add(1)
					}
					if err != nil {
						mu.Lock()
						errs[err.Error()]++
						mu.Unlock()
					}
				}
				return nil
			})
		}()
	}
	wg.Wait()
	return errs, int(slowN.Load()), time.Since(start)
}

func TestSNATToTheInternet(t *testing.T) {
	e := startOpts(t, sandbox.Options{Hosts: 2, Hubs: 1, Gateways: 2})
	inet := e.s.InternetNS()
	client := sandbox.InternetAddr.Addr().String()
	e.nb("vpc-add", "blue", "--open", "--", "vxnet-add", "blue", "web", "10.0.1.0/24")
	e.nb("port-add", "web", "vm1", "02:00:00:00:01:0a", "10.0.1.10", "--", "port-add", "web", "vm2", "02:00:00:00:01:0b", "10.0.1.11")
	e.vm("hv1", "vm1")
	e.vm("hv2", "vm2")
	e.nb("snat-set", "blue", "internet", "203.0.113.100", "--block", "1024")
	serve(t, inet, 8081, "internet")
	serve(t, e.s.VMNS("vm1"), 8080, "vm1")

	t.Run("a VM without EIP reaches the internet from the VPC's SNAT address", func(t *testing.T) {
		e.mustPing("vm1", client)
		out, err := dial(e.s.VMNS("vm1"), client+":8081")
		if err != nil || !strings.HasPrefix(out, "internet 203.0.113.100:") {
			t.Fatalf("vm1 -> %s:8081: %q %v; want the server seeing 203.0.113.100", client, out, err)
		}
		var port int
		fmt.Sscanf(out[len("internet 203.0.113.100:"):], "%d", &port)
		if port < 1024 {
			t.Errorf("translated to port %d, outside every block", port)
		}
		out, err = dial(e.s.VMNS("vm2"), client+":80", "GET / HTTP/1.0\r\n\r\n")
		if err != nil || !strings.Contains(out, "hello from the internet") {
			t.Errorf("vm2 GET http://%s/: %q %v", client, out, err)
		}
		if b := e.snatBlocks(); blocksOf(b, "vm1") < 1 || blocksOf(b, "vm2") < 1 {
			t.Errorf("blocks %v: want each port to hold one", b)
		}
		d, err := e.dp("hv1").Dump()
		if err != nil || !strings.Contains(strings.Join(d.EIPs, "\n"), "snat 10.0.1.10") {
			t.Errorf("courier-dpctl --chassis hv1 eips: %q %v, want vm1's SNAT entry", d.EIPs, err)
		}
	})
	t.Run("a datagram in fragments crosses SNAT both ways", func(t *testing.T) {
		// 3,000 bytes: three fragments from the VM (MTU 1450), three
		// back from the internet (MTU 1500), the gateway cutting its
		// 1,500-byte ones again for the overlay; only the first of each
		// datagram carries the ports.
		echoUDP(t, inet, 7007)
		got, err := udpExchange(e.s.VMNS("vm1"), client+":7007", 3000)
		if err != nil || len(got) != 3000 || !strings.HasPrefix(got, "from 203.0.113.100:") {
			t.Errorf("vm1's 3000-byte datagram: answer of %d bytes %.40q, %v; want 3000 bytes from the SNAT address", len(got), got, err)
		}
	})
	t.Run("the internet cannot open a connection to a VM without EIP", func(t *testing.T) {
		if out, err := dial(inet, "203.0.113.100:8080"); err == nil {
			t.Errorf("internet -> 203.0.113.100:8080 answered %q", out)
		}
		if n, _ := pingFrom(inet, "203.0.113.100", 2); n != 0 {
			t.Errorf("the SNAT address answered %d pings", n)
		}
	})
	t.Run("a translated stream survives restarting its host's and the gateways' hostds", func(t *testing.T) {
		done := e.stream(t, "vm1", inet, client, 5299, 6)
		time.Sleep(1500 * time.Millisecond)
		for _, h := range []string{"hv1", "gw1", "gw2"} {
			if err := e.s.RestartHostd(h); err != nil {
				t.Fatal(err)
			}
		}
		rep, err := parseIperf(<-done)
		if err != nil {
			t.Fatalf("the stream failed: %v", err)
		}
		for i, iv := range rep.Intervals {
			if iv.Sum.Bytes == 0 {
				t.Errorf("second %d of the stream carried nothing", i+1)
			}
		}
		if len(rep.Intervals) < 6 {
			t.Errorf("the stream lasted %d s, want 6", len(rep.Intervals))
		}
	})
	t.Run("pings through SNAT pass over a dead gateway", func(t *testing.T) {
		// A ping's flow hash never changes (a TCP socket's changes on each
		// timeout, which can hide a host still sending to a dead gateway):
		// the host must judge the gateway dead by its probes.
		before := map[string]uint64{"gw1": e.counters("gw1")["gw_up"], "gw2": e.counters("gw2")["gw_up"]}
		p := e.startPing("vm1", client, 0, "0.02")
		time.Sleep(time.Second)
		busy := "gw1"
		if e.counters("gw2")["gw_up"]-before["gw2"] > e.counters("gw1")["gw_up"]-before["gw1"] {
			busy = "gw2"
		}
		skip := e.hostdLogSize("hv1")
		e.hostDown(busy)
		// Once the DVR passes over it (300 ms), the operator's view
		// says so, naming it among the probed.
		time.Sleep(700 * time.Millisecond)
		var hubs bytes.Buffer
		hubsErr := dpctl.App(&hubs).Run([]string{"courier-dpctl", "--pin-root", e.s.State.PinRoot, "--chassis", "hv1", "hubs"})
		time.Sleep(2300 * time.Millisecond)
		sent, recv := p.stop()
		t.Logf("%s died: %d of %d pings lost (every 20 ms)", busy, sent-recv, sent)
		down := regexp.MustCompile(`probe ` + regexp.QuoteMeta(e.vtep(busy).String()) + `: last answered \S+ ago, down: the DVR passes over it\n`)
		if hubsErr != nil || !down.MatchString(hubs.String()) {
			t.Errorf("courier-dpctl hubs on hv1, %s dead for 700 ms: %v\n%s", busy, hubsErr, hubs.String())
		}
		if sent < 100 || sent-recv > 50 {
			t.Errorf("%d of %d pings lost after %s died, want its silence (300 ms) noticed within a second", sent-recv, sent, busy)
		}
		e.hostdSays("hv1", skip, 10*time.Second, "a gateway stopped answering probes", "gateway="+e.vtep(busy).String())
		if _, err := e.s.HostUp(busy); err != nil {
			t.Fatal(err)
		}
		e.gatewayAnswers("hv1", busy)
	})
	t.Run("a translated stream survives its gateway's death and the control plane's restarts", func(t *testing.T) {
		before := map[string]uint64{"gw1": e.counters("gw1")["gw_up"], "gw2": e.counters("gw2")["gw_up"]}
		done := e.stream(t, "vm1", inet, client, 5298, 8)
		time.Sleep(1500 * time.Millisecond)
		busy := "gw1"
		if e.counters("gw2")["gw_up"]-before["gw2"] > e.counters("gw1")["gw_up"]-before["gw1"] {
			busy = "gw2"
		}
		e.hostDown(busy) // the gateway carrying the stream out: the host's probes pass over it
		c := e.s.Ctl()
		for _, d := range []string{"courier-southd", "courier-northd"} {
			if err := c.StopDaemon(d); err != nil {
				t.Fatal(err)
			}
			if err := c.StartDaemon(d); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.StopServer("sb"); err != nil {
			t.Fatal(err)
		}
		if err := c.StartServer(t.Context(), "sb"); err != nil {
			t.Fatal(err)
		}
		rep, err := parseIperf(<-done)
		if err != nil {
			t.Fatalf("the stream failed: %v", err)
		}
		n := len(rep.Intervals)
		if n < 8 || rep.Intervals[n-1].Sum.Bytes == 0 || rep.Intervals[n-2].Sum.Bytes == 0 {
			t.Errorf("the stream stopped after %s died: %d intervals", busy, n)
		}
		t.Logf("%.1f MB across %s's death and restarts of southd, northd and the southbound", rep.End.SumReceived.Bytes/1e6, busy)
		if _, err := e.s.HostUp(busy); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("20,000 connections from one VM, none refused or reset", func(t *testing.T) {
		errs, slow, took := connectMany(e.s.VMNS("vm1"), client+":8081", 20000, 64)
		drops := e.dropsOf("hv1")
		b := e.snatBlocks()
		t.Logf("20,000 connections in %v: %d took over a second (a SYN retransmitted), snat_exhausted drops %d, vm1 holds %d blocks",
			took.Round(time.Millisecond), slow, drops["snat_exhausted"], blocksOf(b, "vm1"))
		if len(errs) > 0 || took > 90*time.Second {
			t.Errorf("errors: %v (after %v)", errs, took)
		}
		if blocksOf(b, "vm1") < 20 {
			t.Errorf("vm1 holds %d blocks of 1,024 after 20,000 connections; its host should have asked for more", blocksOf(b, "vm1"))
		}
	})
	t.Run("a deleted VM's blocks are returned", func(t *testing.T) {
		e.nb("port-del", "vm2")
		deadline := time.Now().Add(5 * time.Second)
		for blocksOf(e.snatBlocks(), "vm2") > 0 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if b := e.snatBlocks(); blocksOf(b, "vm2") > 0 {
			t.Errorf("vm2 deleted, its blocks stay: %v", b)
		}
	})
	t.Run("snat-del cuts the VPC off the internet", func(t *testing.T) {
		e.nb("snat-del", "blue")
		if _, err := dial(e.s.VMNS("vm1"), client+":8081"); err == nil {
			t.Errorf("vm1 still reaches the internet")
		}
		if b := e.snatBlocks(); len(b) > 0 {
			t.Errorf("blocks stay after snat-del: %v", b)
		}
	})
}

// echoUDP answers each datagram on port in namespace ns with one as long,
// which starts with the address it came from.
func echoUDP(t *testing.T, ns string, port int) {
	t.Helper()
	var c net.PacketConn
	err := lab.Do(ns, func() error {
		var err error
		c, err = net.ListenPacket("udp4", fmt.Sprintf(":%d", port))
		return err
	})
	if err != nil {
		t.Fatalf("listen in %s: %v", ns, err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			out := []byte(strings.Repeat(".", n))
			copy(out, "from "+from.String()+" ")
			c.WriteTo(out, from)
		}
	}()
}

// udpExchange sends one datagram of size bytes from namespace ns and
// returns the answer.
func udpExchange(ns, addr string, size int) (string, error) {
	var out string
	err := lab.Do(ns, func() error {
		c, err := net.Dial("udp4", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := c.Write([]byte(strings.Repeat("x", size))); err != nil {
			return err
		}
		buf := make([]byte, 65536)
		n, err := c.Read(buf)
		out = string(buf[:n])
		return err
	})
	return out, err
}

// stream runs an iperf3 server on port in namespace ns (at addr) and a
// 20 Mbit/s stream of secs seconds to it from VM vm; its JSON report
// comes on the channel. The server goes with the test.
func (e *env) stream(t *testing.T, vm, ns, addr string, port, secs int) <-chan string {
	t.Helper()
	srv := exec.Command("ip", "netns", "exec", ns, "iperf3", "-s", "-1", "-p", fmt.Sprint(port))
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	time.Sleep(300 * time.Millisecond)
	done := make(chan string, 1)
	go func() {
		out, _ := e.s.Exec(vm, "timeout", fmt.Sprint(2*secs+12), "iperf3", "-c", addr, "-p", fmt.Sprint(port), "-t", fmt.Sprint(secs), "-b", "20M", "-J")
		done <- out
	}()
	return done
}

// streamKeptOn waits for a stream of secs seconds (e.stream) that what
// was done to and fails the test unless it ran its whole length and was
// still carrying data in its last two seconds: the stream did not stop.
// It logs each second that carried nothing and returns the report and
// how many there were.
func streamKeptOn(t *testing.T, done <-chan string, secs int, what string) (iperfReport, int) {
	t.Helper()
	rep, err := parseIperf(<-done)
	if err != nil {
		t.Fatalf("the stream did not survive %s: %v", what, err)
	}
	n := len(rep.Intervals)
	if n < secs || rep.Intervals[n-1].Sum.Bytes == 0 || rep.Intervals[n-2].Sum.Bytes == 0 {
		t.Errorf("the stream stopped: %d intervals, last ones %+v", n, rep.Intervals[max(0, n-3):])
	}
	quiet := 0
	for i, iv := range rep.Intervals {
		if iv.Sum.Bytes == 0 {
			t.Logf("second %d of the stream carried nothing", i+1)
			quiet++
		}
	}
	return rep, quiet
}

// gatewayAnswers waits until host has heard gateway gw answer its probes
// within hostd's default threshold: the host sends through it again.
func (e *env) gatewayAnswers(host, gw string) {
	e.t.Helper()
	vtep := e.vtep(gw)
	d := e.dp(host)
	testenv.Eventually(e.t, 20*time.Second, host+" hears "+gw+" answer its probes", func() error {
		seen, err := d.HubSeen()
		if err != nil {
			return err
		}
		if ago, ok := seen[vtep]; !ok || ago >= dataplane.DefaultHubDownAfter { // hostd's default
			return fmt.Errorf("%s last answered %v ago (probed: %v)", gw, ago, ok)
		}
		return nil
	})
}
