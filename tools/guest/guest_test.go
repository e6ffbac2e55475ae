package guest

import (
	"context"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/courier-sdn/courier/dataplane"
	"github.com/courier-sdn/courier/internal/lab"
	"github.com/courier-sdn/courier/internal/testenv"
)

// startGuest boots a guest on a tap of namespace ns and stops it at the
// end of the test.
func startGuest(t *testing.T, ns string, s Spec) {
	t.Helper()
	cmd := exec.Command("qemu-system-x86_64", s.Args()...)
	logf, err := os.Create(filepath.Join(filepath.Dir(s.Console), "qemu.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := lab.Do(ns, cmd.Start); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-exited })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	addr, err := WaitReady(ctx, s.ConsoleLog, 0, exited)
	if err != nil {
		b, _ := os.ReadFile(logf.Name())
		t.Fatalf("%v\n%s", err, b)
	}
	t.Logf("guest %s up with %s after %s (%s)", s.Name, addr, time.Since(start).Round(time.Millisecond), s.Args()[3])
}

// A guest boots from the built image on a tap, configures its NIC from
// the command line, runs console commands with their exit status and
// serves its page. No Courier here: the tap's host side is a plain
// interface with an address.
func TestGuestBootsOnATap(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a QEMU guest")
	}
	testenv.Root(t)
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Fatal("qemu-system-x86_64 is not installed (make deps)")
	}
	img, err := Build(context.Background(), os.Getenv("COURIER_GUEST_CACHE"))
	if err != nil {
		t.Fatal(err)
	}
	id := testenv.ID()
	l, err := lab.New("cgt"+id+"-", netip.MustParsePrefix("192.168.78.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Destroy() })
	h, err := l.AddHost("h", 1)
	if err != nil {
		t.Fatal(err)
	}
	err = lab.Do(h.NS, func() error {
		if _, err := dataplane.CreateTap("tapg", ""); err != nil {
			return err
		}
		tap, err := netlink.LinkByName("tapg")
		if err != nil {
			return err
		}
		return netlink.AddrAdd(tap, &netlink.Addr{IPNet: &net.IPNet{IP: net.IPv4(10, 9, 0, 1), Mask: net.CIDRMask(24, 32)}})
	})
	if err != nil {
		t.Fatal(err)
	}
	dir := testenv.RunDir(t)
	s := Spec{Name: "g1", Image: img, Tap: "tapg", MAC: net.HardwareAddr{2, 0, 0, 9, 0, 2}, MTU: 1450,
		Addr: netip.MustParsePrefix("10.9.0.2/24"), GW: netip.MustParseAddr("10.9.0.1"),
		Console: filepath.Join(dir, "con"), ConsoleLog: filepath.Join(dir, "con.log"), QMP: filepath.Join(dir, "qmp")}
	startGuest(t, h.NS, s)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run := func(cmd string) (string, int) {
		t.Helper()
		out, status, err := Exec(ctx, s.Console, cmd)
		if err != nil {
			t.Fatalf("%s: %v (%q)", cmd, err, out)
		}
		return out, status
	}
	if out, st := run("echo hello; cat /sys/class/net/eth0/address /sys/class/net/eth0/mtu"); st != 0 ||
		out != "hello\n02:00:00:09:00:02\n1450\n" {
		t.Errorf("echo: status %d, output %q", st, out)
	}
	if _, st := run("exit 3"); st != 3 {
		t.Errorf("exit 3: status %d", st)
	}
	if out, st := run("ping -c 2 -W 5 10.9.0.1"); st != 0 {
		t.Errorf("the guest cannot ping its tap's host side: %d\n%s", st, out)
	}
	out, err := lab.Exec(h.NS, "busybox", "wget", "-q", "-O", "-", "http://10.9.0.2/")
	if err != nil || !strings.Contains(out, "courier guest g1") {
		t.Errorf("the guest's page: %v %q", err, out)
	}
}

// Guests started at once from one process all write the script: none
// may find another's temporary file gone (a name by PID was shared).
func TestScriptWrittenConcurrently(t *testing.T) {
	script := filepath.Join(t.TempDir(), "mkguest.sh")
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- writeScript(script)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if b, err := os.ReadFile(script); err != nil || string(b) != string(mkguest) {
		t.Errorf("the script is not the embedded one: %v", err)
	}
	if left, _ := filepath.Glob(script + ".tmp*"); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}
