package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/courier-sdn/courier/internal/lab"
	"github.com/courier-sdn/courier/internal/testenv"
	"github.com/courier-sdn/courier/tools/sandbox"
)

// guests boots QEMU guests for ports, all at once (a boot is seconds of
// TCG), and fails the test if one does not come up.
func (e *env) guests(hostPorts ...string) {
	e.t.Helper()
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		e.t.Fatal("qemu-system-x86_64 is not installed (make deps)")
	}
	var wg sync.WaitGroup
	errs := make([]error, len(hostPorts)/2)
	for i := 0; i+1 < len(hostPorts); i += 2 {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			start := time.Now()
			errs[i/2] = e.s.AddVMWith(context.Background(), hostPorts[i], hostPorts[i+1], sandbox.VMOptions{QEMU: true})
			e.t.Logf("guest %s on %s: up and bound after %s", hostPorts[i+1], hostPorts[i], time.Since(start).Round(time.Millisecond))
		}(i)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			e.t.Fatal(err)
		}
	}
}

// Real VMs: a QEMU guest on a tap on each of two hosts, in two vxnets,
// and a namespace VM. The DVR delivers out of a guest's tap (a tap has no
// peer to redirect into), guests and namespace VMs talk, and a guest is
// held to its port's addresses as any port is. (busybox 1.35's wget -T
// crashes: wget runs without a timeout of its own here.)
func TestQEMUGuests(t *testing.T) {
	e := start(t, 2, 1)
	e.nb("vpc-add", "q", "--", "vxnet-add", "q", "qa", "10.5.1.0/24", "--", "vxnet-add", "q", "qb", "10.5.2.0/24",
		"--", "port-add", "qa", "g1", "02:00:00:05:01:0a", "10.5.1.10",
		"--", "port-add", "qb", "g2", "02:00:00:05:02:0a", "10.5.2.10",
		"--", "port-add", "qa", "n1", "02:00:00:05:01:0b", "10.5.1.11")
	e.vm("hv2", "n1")
	e.guests("hv1", "g1", "hv2", "g2")

	t.Run("guests on two hosts and vxnets ping each other", func(t *testing.T) {
		e.mustPing("g1", "10.5.2.10")
		e.mustPing("g2", "10.5.1.10")
		// For the record (no assertion): round trips between guests
		// under TCG, and from a guest to a namespace VM.
		for _, to := range []string{"10.5.2.10", "10.5.1.11"} {
			out, _ := e.s.Exec("g1", "ping", "-q", "-c", "20", "-i", "0.05", to)
			if i := strings.Index(out, "round-trip"); i >= 0 {
				t.Logf("g1 -> %s: %s", to, strings.TrimSpace(out[i:]))
			}
		}
	})
	t.Run("a guest fetches the other's page", func(t *testing.T) {
		for _, c := range []struct{ from, url, want string }{
			{"g1", "http://10.5.2.10/", "courier guest g2"}, {"g2", "http://10.5.1.10/", "courier guest g1"}} {
			out, err := e.s.Exec(c.from, "wget", "-q", "-O", "-", c.url)
			if err != nil || !strings.Contains(out, c.want) {
				t.Errorf("%s: wget %s: %v %q", c.from, c.url, err, out)
			}
		}
	})
	t.Run("a guest and a namespace VM talk", func(t *testing.T) {
		e.mustPing("g1", "10.5.1.11")
		e.mustPing("n1", "10.5.1.10")
		out, err := e.s.Exec("n1", "busybox", "wget", "-q", "-O", "-", "http://10.5.1.10/")
		if err != nil || !strings.Contains(out, "courier guest g1") {
			t.Errorf("n1: wget g1's page: %v %q", err, out)
		}
	})
	t.Run("the guest's MTU is its port's", func(t *testing.T) {
		out, err := e.s.Exec("g1", "cat", "/sys/class/net/eth0/mtu")
		if err != nil || strings.TrimSpace(out) != "1450" {
			t.Errorf("g1's MTU: %v %q", err, out)
		}
		// A full-sized frame crosses the overlay both ways (1450 - 28).
		if out, err := e.s.Exec("g1", "ping", "-c", "2", "-W", "2", "-s", "1422", "10.5.2.10"); err != nil {
			t.Errorf("full-sized ping g1 -> g2: %v\n%s", err, out)
		}
	})
	t.Run("courier-sandbox exec runs a command on the guest's console", func(t *testing.T) {
		cmd := exec.Command(filepath.Join(testenv.BinDir(t), "courier-sandbox"), "--run-dir", e.s.RunDir,
			"exec", "g2", "--", "sh", "-c", "hostname; exit 4")
		out, err := cmd.Output()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 4 || string(out) != "g2\n" {
			t.Errorf("exec g2: %v, output %q; want exit status 4 and g2", err, out)
		}
	})
	t.Run("a guest's spoofed source is dropped", func(t *testing.T) {
		before := e.dropsOf("hv1")["spoof_ip"]
		if out, err := e.s.Exec("g1", "ip", "addr", "add", "10.5.1.99/24", "dev", "eth0"); err != nil {
			t.Fatalf("%v %s", err, out)
		}
		out, err := e.s.Exec("g1", "ping", "-c", "2", "-W", "1", "-I", "10.5.1.99", "10.5.1.11")
		if err == nil {
			t.Errorf("a ping from a spoofed source was answered:\n%s", out)
		}
		if after := e.dropsOf("hv1")["spoof_ip"]; after < before+2 {
			t.Errorf("hv1 dropped %d packets as spoof_ip, want at least 2", after-before)
		}
		// The port's own address still works.
		e.mustPing("g1", "10.5.1.11")
	})
	t.Run("a guest that stops receiving is told from a network fault", func(t *testing.T) { deafnessVerdicts(t, e) })
}

// deafnessVerdicts checks guestDeaf, what TestQEMULiveMigration takes
// for a guest lost after QEMU's migration (its tap handed packets its
// interface never received), on g1 (10.5.1.10), pinged from n1, of
// TestQEMUGuests: deaf only when g1 hears nothing its tap is handed.
func deafnessVerdicts(t *testing.T, e *env) {
	if deaf := e.guestDeaf(t, "n1", "10.5.1.10", "g1"); deaf != "" {
		t.Fatalf("a guest that receives is taken for deaf: %s", deaf)
	}
	// Delivered to another MAC than the guest's (QEMU's receive filter
	// would drop those unseen): not deaf either.
	if out, err := e.s.Exec("n1", "ip", "neigh", "replace", "10.5.1.10", "lladdr", "02:00:00:05:01:99", "dev", "eth0"); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	deaf := e.guestDeaf(t, "n1", "10.5.1.10", "g1")
	if out, err := e.s.Exec("n1", "ip", "neigh", "del", "10.5.1.10", "dev", "eth0"); err != nil {
		t.Errorf("remove the wrong neighbour: %v %s", err, out)
	}
	if deaf != "" {
		t.Fatalf("a guest handed frames for another MAC is taken for deaf: %s", deaf)
	}
	// Its interface down, the guest posts no more receive buffers and
	// counts nothing; QEMU still reads the tap.
	if out, err := e.s.Exec("g1", "ip", "link", "set", "eth0", "down"); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	defer e.s.Exec("g1", "ip", "link", "set", "eth0", "up")
	if deaf := e.guestDeaf(t, "n1", "10.5.1.10", "g1"); deaf == "" {
		t.Error("a guest whose interface is down is not taken for deaf")
	}
	// Pings its tap is never handed (to an address nobody holds: the
	// spoof subtest's 10.5.1.99 is g1's own now) leave it the network's
	// fault, deaf guest or not.
	if deaf := e.guestDeaf(t, "n1", "10.5.1.98", "g1"); deaf != "" {
		t.Errorf("a guest handed nothing is taken for deaf: %s", deaf)
	}
}

// streamed is how many lines of the peer's TCP stream the guest has.
func (e *env) streamed(port string) int {
	out, err := e.s.Exec(port, "wc", "-l", "/tmp/stream")
	if err != nil {
		e.t.Fatalf("%s: wc: %v %s", port, err, out)
	}
	n, _ := strconv.Atoi(strings.Fields(out + " 0")[0])
	return n
}

// A guest live-migrates (QEMU's migration over the underlay) while a
// namespace VM on a third host pings it every 10 ms and streams to it
// over TCP: the port moves with the guest, the TCP connection survives,
// and the pings resume. The blackout (lost pings x 10 ms) is logged.
// A guest whose kernel crashed right after QEMU's migration (QEMU 7.2's
// TCG, TestQEMULiveMigrationKeepsASNATStream) proves nothing: the
// scenario runs again, and is skipped if it crashes twice.
func TestQEMULiveMigration(t *testing.T) {
	unlessTheGuestIsLost(t, qemuMigration)
}

func qemuMigration(t *testing.T) (crash string) {
	e := start(t, 3, 1)
	e.nb("vpc-add", "m", "--", "vxnet-add", "m", "ma", "10.6.1.0/24",
		"--", "port-add", "ma", "g1", "02:00:00:06:01:0a", "10.6.1.10",
		"--", "port-add", "ma", "n1", "02:00:00:06:01:0b", "10.6.1.11")
	e.vm("hv3", "n1")
	e.guests("hv1", "g1")
	e.mustPing("n1", "10.6.1.10")

	ctx := t.Context()
	// busybox nc ends the connection at the end of its input: give it none.
	if out, st, err := e.s.GuestExec(ctx, "g1", "sleep 100000 | nc -l -p 5001 >/tmp/stream 2>&1 &"); err != nil || st != 0 {
		t.Fatalf("start the guest's listener: %v %d %s", err, st, out)
	}
	testenv.Eventually(t, 20*time.Second, "the guest listens on 5001", func() error {
		if out, st, err := e.s.GuestExec(ctx, "g1", "netstat -ltn | grep -q ':5001 '"); err != nil || st != 0 {
			return fmt.Errorf("not yet: %v %d %s", err, st, out)
		}
		return nil
	})
	stream := exec.Command("ip", "netns", "exec", e.s.VMNS("n1"), "sh", "-c",
		"i=0; while i=$((i+1)); do echo $i; sleep 0.02; done | busybox nc 10.6.1.10 5001")
	stream.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var streamOut strings.Builder
	stream.Stdout, stream.Stderr = &streamOut, &streamOut
	if err := stream.Start(); err != nil {
		t.Fatal(err)
	}
	streamDone := make(chan error, 1)
	go func() { streamDone <- stream.Wait() }()
	t.Cleanup(func() { syscall.Kill(-stream.Process.Pid, syscall.SIGKILL); <-streamDone })
	testenv.Eventually(t, 20*time.Second, "the TCP stream reaches the guest", func() error {
		if n := e.streamed("g1"); n == 0 {
			return fmt.Errorf("nothing streamed yet: %s", streamOut.String())
		}
		return nil
	})

	first := e.streamed("g1")
	testenv.Eventually(t, 20*time.Second, "the stream flows before the migration", func() error {
		if n := e.streamed("g1"); n <= first {
			return fmt.Errorf("the guest has %d lines, as before: %s", n, streamOut.String())
		}
		return nil
	})
	p := e.startPing("n1", "10.6.1.10", 0, "0.01") // until stopped
	time.Sleep(500 * time.Millisecond)             // pings before the migration
	start := time.Now()
	downtime, err := e.s.MigrateVM(ctx, "g1", "hv2")
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	// Pings after it: whatever was lost, the guest answers again.
	if crash := e.answersAfterMigration(t, "n1", "10.6.1.10", "g1"); crash != "" {
		p.stop()
		return crash
	}
	sent, recv := p.stop()
	t.Logf("live migration hv1 -> hv2: %s end to end, QEMU downtime %s; %d of %d pings (10 ms) lost: a blackout of about %d ms",
		took.Round(time.Millisecond), downtime, sent-recv, sent, (sent-recv)*10)

	if host, _ := e.s.HasVM("g1"); host != "hv2" {
		t.Errorf("g1 is recorded on %s", host)
	}
	t.Run("the TCP connection survives", func(t *testing.T) {
		before := e.streamed("g1")
		testenv.Eventually(t, 20*time.Second, "the stream goes on after the migration", func() error {
			if n := e.streamed("g1"); n <= before {
				return fmt.Errorf("the guest has %d lines, as before", n)
			}
			return nil
		})
		select {
		case err := <-streamDone:
			streamDone <- err
			t.Errorf("the peer's TCP stream ended: %v %s", err, streamOut.String())
		default:
		}
	})
	t.Run("the guest runs on hv2 only", func(t *testing.T) {
		if out, err := e.s.Exec("g1", "hostname"); err != nil || strings.TrimSpace(out) != "g1" {
			t.Errorf("console after migration: %v %q", err, out)
		}
		if pid, err := os.ReadFile(filepath.Join(e.s.RunDir, "guest-g1@hv2.pid")); err != nil || len(pid) == 0 {
			t.Errorf("no pid file for the migrated guest: %v", err)
		}
		if _, err := os.Stat(filepath.Join(e.s.RunDir, "guest-g1@hv1.pid")); err == nil {
			t.Error("the source QEMU's pid file is still there")
		}
	})
	// A migrated guest's QEMU exiting after a second migration removed
	// its successor's sockets (their paths had been renamed to its).
	t.Run("and back, the stream still going", func(t *testing.T) {
		if _, err := e.s.MigrateVM(ctx, "g1", "hv1"); err != nil {
			t.Fatal(err)
		}
		// What the first migration showed stands; a crash on the way
		// back skips only this.
		if crash := e.answersAfterMigration(t, "n1", "10.6.1.10", "g1"); crash != "" {
			t.Skipf("the guest's kernel crashed after QEMU's migration back (%s): nothing was checked across it", crash)
		}
		before := e.streamed("g1")
		testenv.Eventually(t, 20*time.Second, "the stream goes on after the second migration", func() error {
			if n := e.streamed("g1"); n <= before {
				return fmt.Errorf("the guest has %d lines, as before", n)
			}
			return nil
		})
	})
	return ""
}

// answersAfterMigration waits up to 20 s for guest port (at addr) to
// answer a ping from vm. If it does not, it returns the sign that the
// guest is lost: a crash on its console, a console that no longer
// answers a command (a guest hung without a word, seen in CI, hv2's
// programs receiving nothing from it but QEMU's announcements), or an
// interface that receives nothing its tap is handed (guestDeaf, also
// seen in CI); it fails the test if the guest lives and hears.
func (e *env) answersAfterMigration(t *testing.T, vm, addr, port string) (crash string) {
	t.Helper()
	var out string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
		var n int
		if n, out = e.s.Ping(vm, ip(addr), 1, "0.2"); n == 1 {
			return ""
		}
	}
	if crash = e.guestLost(t, port); crash != "" {
		return crash
	}
	if deaf := e.guestDeaf(t, vm, addr, port); deaf != "" {
		return deaf
	}
	t.Fatalf("%s reaches %s after the migration: not after 20s, its console answering: %s", vm, port, out)
	return ""
}

// guestDeaf says whether a guest that answers its console but not
// pings no longer receives at all: five pings from vm to addr reach its
// tap (QEMU reads them, or the tap drops them: its ring full because
// QEMU stopped reading, or the tap down) and its interface counts none
// of them. Seen once in CI after QEMU's migration: hv2's programs
// delivered 1,245 packets to the guest, which sent only IPv6 of its own.
// Such a guest is lost, not the network: Courier's part ends at the
// tap. The interface is promiscuous meanwhile, so that QEMU's receive
// filter passes what Courier addressed wrongly (another MAC) and the
// guest counts it: a wrong delivery is not taken for deafness; a guest
// that takes no such setting is lost. "" when the guest received
// anything, or its tap was handed nothing (the network's fault).
func (e *env) guestDeaf(t *testing.T, vm, addr, port string) string {
	t.Helper()
	ns, tap, ok := e.s.GuestTap(port)
	if !ok {
		return ""
	}
	// The setting goes by virtio's control queue: a guest whose device
	// no longer answers it is lost too (Courier has no part in it).
	if lost, err := e.guestIfaceSet(t, port, "promisc", "on"); lost != "" || err != nil {
		if err != nil {
			t.Logf("whether %s receives: %v", port, err)
		}
		return lost
	}
	defer e.guestIfaceSet(t, port, "promisc", "off")
	read0, dropped0, err1 := tapHanded(ns, tap)
	rx0, err2 := e.guestReceived(t, port)
	e.s.Ping(vm, ip(addr), 5, "0.2")
	read1, dropped1, err3 := tapHanded(ns, tap)
	rx1, err4 := e.guestReceived(t, port)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		t.Logf("whether %s receives: %v", port, err)
		return ""
	}
	handed := read1 - read0 + dropped1 - dropped0
	t.Logf("five pings from %s to %s: %s's tap was handed %d packets (QEMU read %d, the tap dropped %d), its interface received %d",
		vm, addr, port, handed, read1-read0, dropped1-dropped0, rx1-rx0)
	if handed >= 5 && rx1 == rx0 {
		return fmt.Sprintf("its interface received none of the %d packets its tap was handed", handed)
	}
	return ""
}

// guestIfaceSet sets a flag of guest port's eth0 (ip link set eth0
// ARGS) within 15 s; lost says why the guest is lost if its console
// does not come back.
func (e *env) guestIfaceSet(t *testing.T, port string, args ...string) (lost string, err error) {
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	out, st, err := e.s.GuestExec(ctx, port, "ip link set eth0 "+strings.Join(args, " "))
	if ctx.Err() != nil {
		return fmt.Sprintf("its interface took no setting (%s) in 15 s", strings.Join(args, " ")), nil
	}
	if err != nil || st != 0 {
		return "", fmt.Errorf("ip link set eth0 %s: %v (status %d) %s", strings.Join(args, " "), err, st, out)
	}
	return "", nil
}

// tapHanded is what tap (in namespace ns) was handed for its guest:
// the packets QEMU read and those the tap dropped.
func tapHanded(ns, tap string) (read, dropped uint64, err error) {
	err = lab.Do(ns, func() error {
		l, err := netlink.LinkByName(tap)
		if err != nil {
			return err
		}
		st := l.Attrs().Statistics
		if st == nil {
			return fmt.Errorf("%s has no statistics", tap)
		}
		read, dropped = st.TxPackets, st.TxDropped
		return nil
	})
	return read, dropped, err
}

// guestReceived is the count of packets guest port's interface received.
func (e *env) guestReceived(t *testing.T, port string) (uint64, error) {
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	out, st, err := e.s.GuestExec(ctx, port, "cat /sys/class/net/eth0/statistics/rx_packets")
	if err != nil || st != 0 {
		return 0, fmt.Errorf("guest %s: %v (status %d) %s", port, err, st, out)
	}
	return strconv.ParseUint(strings.TrimSpace(out), 10, 64)
}
