package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/courier-sdn/courier/internal/testenv"
	"github.com/courier-sdn/courier/schema/sbdb"
	"github.com/courier-sdn/courier/tools/sandbox"
)

// #15: a VM's SNAT connections survive its live migration. The VM's old
// host hands the connections it translated to the new one through the
// southbound (SNAT_Handoff), so that the stream keeps its external port:
// without them the new host would drop its segments (only a SYN opens a
// mapping) and, before that rule, map them anew from another port, which
// the server reset.
//
// The migration is an orchestrator's (the port is requested on hv1 and
// named migrating to hv2, prepared there, bound on the guest's first ARP
// out of its new host, then requested there), with a namespace VM whose
// interface moves between the hosts' namespaces, its TCP state intact.
// It goes there and back, the second time with the destination's hostd
// restarted before it could install what it was handed.
func TestSNATConnectionsFollowALiveMigration(t *testing.T) {
	e, inet, client := snatMigrationLab(t)

	const secs = 14
	done := e.stream(t, "vm1", inet, client, 5297, secs)
	time.Sleep(2 * time.Second)
	untracked := e.dropsOf("hv2")["snat_untracked"]
	e.liveMigrate("vm1", "hv1", "hv2", nil)
	time.Sleep(3 * time.Second)
	// Back, with hv1's hostd restarted while the handoff waits for it
	// (stopped once the port is bound to it, started once the migration
	// ended):
	// southd is stopped, so the port's blocks stay hv2's and hv1 cannot
	// install what hv2 handed it until southd is back; by then the
	// migration has ended (the port is requested on hv1), and only what
	// hv1 recorded of the port's origin before its restart vouches for
	// hv2's handoff.
	c := e.s.Ctl()
	if err := c.StopDaemon("courier-southd"); err != nil {
		t.Fatal(err)
	}
	e.liveMigrate("vm1", "hv2", "hv1", func() {
		e.waitHandoffs(func(n int) bool { return n > 0 }, "hv2 to hand vm1's connections to hv1")
		if err := e.s.StopHostd("hv1"); err != nil {
			t.Fatal(err)
		}
	})
	if err := e.s.StartHostd("hv1"); err != nil { // the migration has ended
		t.Fatal(err)
	}
	if err := c.StartDaemon("courier-southd"); err != nil {
		t.Fatal(err)
	}
	e.waitHandoffs(func(n int) bool { return n == 0 }, "hv1 to install and delete the handoff")

	rep, _ := streamKeptOn(t, done, secs, "the migrations")
	t.Logf("%.1f MB across two live migrations; hv2 dropped %d untracked segments meanwhile", rep.End.SumReceived.Bytes/1e6,
		e.dropsOf("hv2")["snat_untracked"]-untracked)
	// From hv2's log: how long after binding the port it installed its
	// connections (the first move, nothing held back).
	if log, err := os.ReadFile(filepath.Join(e.s.RunDir, "hostd-hv2.log")); err == nil {
		at := func(msg string) time.Time {
			for _, l := range strings.Split(string(log), "\n") {
				if strings.Contains(l, msg) && strings.HasPrefix(l, "time=") {
					ts, _ := time.Parse(time.RFC3339Nano, strings.Fields(l)[0][len("time="):])
					return ts
				}
			}
			return time.Time{}
		}
		act, in := at("activated migrated port"), at("installed a migrated port's SNAT connections")
		t.Logf("hv2 installed vm1's connections %v after activating the port", in.Sub(act))
	}
}

// snatMigrationLab is two hosts and two gateways, vm1 on hv1 (requested
// there, as an orchestrator does) translated by SNAT, reaching the
// internet namespace at client.
func snatMigrationLab(t *testing.T) (e *env, inet, client string) {
	e = startOpts(t, sandbox.Options{Hosts: 2, Hubs: 1, Gateways: 2})
	inet = e.s.InternetNS()
	client = sandbox.InternetAddr.Addr().String()
	e.nb("vpc-add", "blue", "--open", "--", "vxnet-add", "blue", "web", "10.0.1.0/24")
	e.nb("port-add", "web", "vm1", "02:00:00:00:01:0a", "10.0.1.10", "--chassis", "hv1")
	e.vm("hv1", "vm1")
	e.nb("snat-set", "blue", "internet", "203.0.113.100", "--block", "1024")
	// The port's blocks come from southd after the command: until hv1
	// holds one, vm1's first packets have no port to leave from.
	testenv.Eventually(t, 10*time.Second, "hv1 to translate vm1", func() error {
		d, err := e.dp("hv1").Dump()
		if err != nil || !regexp.MustCompile(`snat 10\.0\.1\.10, network \d+, [1-9]\d* blocks`).MatchString(strings.Join(d.EIPs, "\n")) {
			return fmt.Errorf("courier-dpctl --chassis hv1 eips: %q %v", d.EIPs, err)
		}
		return nil
	})
	e.mustPing("vm1", client)
	return e, inet, client
}

// #15: the old host's hostd dies between the port leaving it and the
// port being bound elsewhere, and the connections it exported still
// follow the port. They were in its memory only; now it also keeps them
// in a pinned map, reads them back when it starts again and hands them
// over once it sees the port bound to its new host. (A hostd dead
// before the port leaves is TestQEMULiveMigrationKeepsASNATStream's: a
// namespace VM's interface would carry the dead hostd's program along.)
func TestSNATHandoffSurvivesTheOldHostsRestart(t *testing.T) {
	e, inet, client := snatMigrationLab(t)

	const secs = 12
	done := e.stream(t, "vm1", inet, client, 5298, secs)
	time.Sleep(2 * time.Second)
	// vm1's announcement on hv2 (its next ARP) waits until hv1's hostd
	// is dead: a permanent neighbour for its gateway, so that its stream
	// sends no ARP from hv2 before that.
	neigh := strings.Fields(e.vmExec("vm1", "ip", "neigh", "show", "10.0.1.1"))
	if len(neigh) < 5 || neigh[3] != "lladdr" {
		t.Fatalf("vm1's neighbour 10.0.1.1: %q", neigh)
	}
	e.vmExec("vm1", "ip", "neigh", "replace", "10.0.1.1", "lladdr", neigh[4], "dev", neigh[2], "nud", "permanent")
	e.liveMigrateHooks("vm1", "hv1", "hv2", func() {
		// The interface is on hv2 now: hv1 exported the port's
		// connections. It dies before the port is bound on hv2.
		e.waitLog("hv1", "a port translated by SNAT left; its connections wait", "hv1 to export vm1's connections")
		if err := e.s.KillHostd("hv1"); err != nil {
			t.Fatal(err)
		}
		e.vmExec("vm1", "ip", "neigh", "del", "10.0.1.1", "dev", neigh[2])
		for _, r := range e.sbRows(sbdb.PortBindingTable, "logical_port", "chassis") {
			if r["logical_port"] == "vm1" && fmt.Sprint(r["chassis"]) == "hv2" {
				t.Fatalf("vm1 was bound to %v before hv1's hostd died: the guest announced itself early", r["chassis"])
			}
		}
	}, func() {
		time.Sleep(time.Second) // hv2 has bound it; nobody hands anything over
		if n := len(e.sbRows(sbdb.SNATHandoffTable, "logical_port")); n != 0 {
			t.Fatalf("%d handoffs written while hv1's hostd was dead", n)
		}
		if err := e.s.StartHostd("hv1"); err != nil {
			t.Fatal(err)
		}
	})
	e.waitLog("hv2", "installed a migrated port's SNAT connections", "hv2 to install what the restarted hv1 handed over")
	if !strings.Contains(e.hostdLog("hv1"), "a port translated by SNAT left before this restart") {
		t.Error("hv1 did not read back vm1's connections after its restart")
	}

	rep, quiet := streamKeptOn(t, done, secs, "the migration")
	t.Logf("%.1f MB across a live migration whose source hostd was killed and restarted; %d seconds carried nothing",
		rep.End.SumReceived.Bytes/1e6, quiet)
}

// hostdLog is a host's hostd log so far.
func (e *env) hostdLog(host string) string {
	b, _ := os.ReadFile(filepath.Join(e.s.RunDir, "hostd-"+host+".log"))
	return string(b)
}

// waitLog waits up to 15 s until a host's hostd logged line.
func (e *env) waitLog(host, line, what string) {
	e.t.Helper()
	testenv.Eventually(e.t, 15*time.Second, what, func() error {
		if !strings.Contains(e.hostdLog(host), line) {
			return fmt.Errorf("not in hostd-%s.log yet", host)
		}
		return nil
	})
}

// waitHandoffs waits up to 15 s until the number of SNAT_Handoff rows
// satisfies ok.
func (e *env) waitHandoffs(ok func(int) bool, what string) {
	e.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !ok(len(e.sbRows(sbdb.SNATHandoffTable, "logical_port"))) {
		if time.Now().After(deadline) {
			e.t.Fatalf("waited 15 s for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// liveMigrate migrates a namespace VM whose port is requested on from to
// to, as an orchestrator does with a guest (courier-sandbox vm-migrate):
// destination named, its interface there, prepared, the guest's
// announcement, bound there (then bound runs, if not nil), then
// requested there.
func (e *env) liveMigrate(port, from, to string, bound func()) {
	e.t.Helper()
	e.liveMigrateHooks(port, from, to, nil, bound)
}

// vmExec runs a command in a VM's namespace, failing the test if it fails.
func (e *env) vmExec(vm string, args ...string) string {
	e.t.Helper()
	out, err := e.s.Exec(vm, args...)
	if err != nil {
		e.t.Fatalf("%s: %v: %v %s", vm, args, err, out)
	}
	return out
}

// liveMigrateHooks is liveMigrate, with prepared run (if not nil) once
// the port is prepared on to, before the guest announces itself there.
func (e *env) liveMigrateHooks(port, from, to string, prepared, bound func()) {
	e.t.Helper()
	if err := e.nbErr("sb", "port-set", port, "--migrating-to", to); err != nil { // southd may be stopped
		e.t.Fatal(err)
	}
	op, err := sandbox.Open(e.s.RunDir)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := op.MigrateVM(e.t.Context(), port, to); err != nil {
		e.t.Fatal(err)
	}
	e.waitPrepared(port, to)
	if prepared != nil {
		prepared()
	}
	// QEMU's RARP on resuming: here the VM's next packet's ARP (or
	// the ARP it sent already, which activated the port)
	if _, err := e.s.Exec(port, "ip", "neigh", "flush", "all"); err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(e.t.Context(), 15*time.Second)
	defer cancel()
	if err := e.s.WaitBound(ctx, port, to, 15*time.Second); err != nil {
		e.t.Fatalf("%s migrating from %s: %v", port, from, err)
	}
	if bound != nil {
		bound()
	}
	if err := e.nbErr("sb", "port-set", port, "--chassis", to, "--migrating-to", "none"); err != nil {
		e.t.Fatal(err)
	}
}

// waitPrepared waits until a port is prepared on chassis for its
// migration, or already activated there.
func (e *env) waitPrepared(port, chassis string) {
	e.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		for _, r := range e.sbRows(sbdb.PortBindingTable, "logical_port", "migration_prepared", "chassis") {
			if r["logical_port"] == port && (fmt.Sprint(r["migration_prepared"]) == chassis || fmt.Sprint(r["chassis"]) == chassis) {
				return
			}
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("port %s is not prepared on %s after 15 s", port, chassis)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// #15: a QEMU guest without an EIP live-migrates (QEMU's own migration,
// vm-migrate) in the middle of a TCP stream to the internet through its
// SNAT: its old host hands the connection to the new one, the stream
// goes on from the same external address and port, and the server sees
// no reset (busybox nc -l ends at one). Then back, with its old host's
// hostd dead before the guest leaves.
//
// Under load, QEMU 7.2's TCG guest was seen to crash right after a
// migration (its console shows a kernel BUG or panic: memory it had
// before was corrupt), with either encapsulation: the stream stops
// because the guest is dead. Such an attempt proves nothing either way;
// the scenario runs again in a new sandbox, and is skipped, saying why,
// if the guest crashes again. A stream that stops while the guest lives
// fails the test, unless the guest ended it itself (its socket shows it
// sent the first FIN, which no fault of the network makes it do): such
// an attempt runs again too.
func TestQEMULiveMigrationKeepsASNATStream(t *testing.T) {
	unlessTheGuestIsLost(t, snatAcrossMigration)
}

// unlessTheGuestIsLost runs a migration scenario, which returns why
// its guest could not be judged when it stopped on that (guestLost: its
// kernel crashed or it hung; guestDeaf: it stopped receiving;
// guestClosedFirst: it ended its own stream; after a migration as a
// rule), again in a new sandbox if it did, and skips the test, saying
// why, if it does twice.
func unlessTheGuestIsLost(t *testing.T, scenario func(*testing.T) (crash string)) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		crash := scenario(t)
		if crash == "" {
			return
		}
		if attempt == 2 {
			t.Skipf("the guest could not be judged in both attempts (%s): nothing was checked across QEMU's live migration", crash)
		}
		t.Logf("attempt %d: the guest could not be judged (%s), not a network fault; again in a new sandbox", attempt, crash)
	}
}

// snatGuestStream starts a sandbox whose guest g1, on hv1 and
// translated by SNAT, sends a line every 20 ms to a server on the
// internet (port 5400): the server's lines and whether its connection
// lives.
func snatGuestStream(t *testing.T) (e *env, got *lines, alive func() bool) {
	e = startOpts(t, sandbox.Options{Hosts: 2, Hubs: 1, Gateways: 1})
	inet := e.s.InternetNS()
	server := sandbox.InternetAddr.Addr().String()
	e.nb("vpc-add", "q", "--open", "--", "vxnet-add", "q", "qa", "10.7.1.0/24",
		"--", "port-add", "qa", "g1", "02:00:00:07:01:0a", "10.7.1.10", "--chassis", "hv1")
	e.nb("snat-set", "q", "internet", "203.0.113.100", "--block", "1024")
	e.guests("hv1", "g1")
	e.mustPing("g1", server)

	got, alive = ncServer(t, inet, 5400)
	// A line every 20 ms from shell builtins (read times out on a pipe
	// that never speaks): a sleep forked every 20 ms made the guest's
	// memory churn through the migration, and its kernel crash after it
	// more often (TestQEMULiveMigrationKeepsASNATStream's comment).
	loop := "sleep 100000 | (i=0; while i=$((i+1)); do echo $i; read -t 0.02 x; done)"
	if out, st, err := e.s.GuestExec(t.Context(), "g1", "("+loop+" | nc "+server+" 5400) >/dev/null 2>&1 &"); err != nil || st != 0 {
		t.Fatalf("start the guest's stream: %v %d %s", err, st, out)
	}
	return e, got, alive
}

// snatAcrossMigration runs the scenario once. It returns why the guest
// was lost (guestLost) or ended the stream itself (guestClosedFirst),
// when a stream stopped with it; a stream that stopped otherwise fails
// t.
func snatAcrossMigration(t *testing.T) (crash string) {
	e, got, alive := snatGuestStream(t)
	inet := e.s.InternetNS()
	ctx := t.Context()
	// flows: the server receives more lines within 20 s; or the guest
	// was lost (crash is set, false).
	flows := func(what string) bool {
		t.Helper()
		before := got.count()
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if got.count() > before+10 {
				return true
			}
		}
		if crash = e.guestLost(t, "g1"); crash != "" {
			return false
		}
		if crash = e.guestClosedFirst(t, "g1", netip.AddrPortFrom(sandbox.InternetAddr.Addr(), 5400)); crash != "" {
			t.Logf("%s: %s; the guest says:\n%s", what, crash, e.guestNetState(t, "g1"))
			return false
		}
		t.Fatalf("%s: not after 20s: the server has %d lines, %d before; the guest says:\n%s", what, got.count(), before,
			e.guestNetState(t, "g1"))
		return false
	}
	if !flows("the stream flows before the migration") {
		return crash
	}
	from := serverPeer(t, inet, 5400)
	kept := func(what string) bool { // the stream goes on, from the same address and port
		t.Helper()
		if !flows(what) {
			return false
		}
		if !alive() {
			t.Fatalf("the server's connection ended")
		}
		if after := serverPeer(t, inet, 5400); after != from {
			t.Errorf("the stream came from %s, now from %s", from, after)
		}
		return true
	}
	m, err := e.s.MigrateVMTimed(ctx, "g1", "hv2", sandbox.MigrationParams())
	if err != nil {
		t.Fatal(err)
	}
	if !kept("the stream goes on after the migration") {
		return crash
	}
	if !strings.Contains(e.hostdLog("hv2"), "installed a migrated port's SNAT connections") {
		t.Error("hv2 installed no handed-off connections")
	}
	t.Logf("stream from %s kept across QEMU's migration (downtime %s, bound %s after it completed); %d lines so far",
		from, m.Downtime, m.Activated, got.count())

	// And back, with hv2's hostd dead before the guest leaves it (its
	// tap goes, the migration ends): the restarted hostd finds the port
	// among those its data plane still translates, named by the
	// southbound, and hands its connections to hv1 then.
	if err := e.s.KillHostd("hv2"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.MigrateVMTimed(ctx, "g1", "hv1", sandbox.MigrationParams()); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	if err := e.s.StartHostd("hv2"); err != nil {
		t.Fatal(err)
	}
	e.waitLog("hv1", "installed a migrated port's SNAT connections", "hv1 to install what the restarted hv2 handed over")
	t.Logf("hv1 installed what hv2 handed over %v after hv2's hostd was started again", time.Since(restarted).Round(time.Millisecond))
	kept("the stream goes on after the migration back")
	return crash
}

// guestLost says why a guest cannot be judged after QEMU's live
// migration: its kernel crashed (guestCrashed), or its console does
// not answer within 15 s (hung, as one was once after a migration in
// CI: only QEMU's five RARP announcements left it). "" when it answers:
// a guest that answers its console but not the network is a network
// fault, unless it ended its stream itself (guestClosedFirst).
func (e *env) guestLost(t *testing.T, port string) string {
	t.Helper()
	if crash := e.guestCrashed(port); crash != "" {
		return crash
	}
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	if _, st, err := e.s.GuestExec(ctx, port, "true"); err != nil || st != 0 {
		return fmt.Sprintf("its console does not answer: %v (status %d)", err, st)
	}
	return ""
}

// guestClosedFirst says why a guest's stream to remote ended by the
// guest's own doing: its socket is in a state only the guest's sending
// a FIN first leads to (its writer ended or was killed), which no fault
// of the network makes it do (a reset, from the server or from a
// translation gone wrong, leaves no socket; the server's FIN first
// leads to other states). "" when no such socket is there.
//
// Seen once in CI (stop 38): after the migration the guest answered
// its console, its nc and the loop feeding it were gone, and its socket
// to the server was in TIME_WAIT.
func (e *env) guestClosedFirst(t *testing.T, port string, remote netip.AddrPort) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	out, st, err := e.s.GuestExec(ctx, port, "cat /proc/net/tcp")
	if err != nil || st != 0 {
		return ""
	}
	if state := closedFirst(out, remote); state != "" {
		return fmt.Sprintf("the guest closed its stream first: its socket to %s is in %s", remote, state)
	}
	return ""
}

// closedFirst finds, in the text of /proc/net/tcp, a socket to remote
// in a state its own FIN leads to, and names the state.
func closedFirst(procNetTCP string, remote netip.AddrPort) string {
	states := map[string]string{"04": "FIN_WAIT1", "05": "FIN_WAIT2", "06": "TIME_WAIT", "0B": "CLOSING"}
	for _, l := range strings.Split(procNetTCP, "\n") {
		f := strings.Fields(l)
		if len(f) < 4 {
			continue
		}
		// The address is the 32 bits in the kernel's byte order
		// (little-endian here), the port in the host's.
		a, p, ok := strings.Cut(f[2], ":")
		ip, aerr := strconv.ParseUint(a, 16, 32)
		port, perr := strconv.ParseUint(p, 16, 16)
		if !ok || aerr != nil || perr != nil {
			continue
		}
		if netip.AddrPortFrom(netip.AddrFrom4([4]byte{byte(ip), byte(ip >> 8), byte(ip >> 16), byte(ip >> 24)}), uint16(port)) != remote {
			continue
		}
		if name := states[f[3]]; name != "" {
			return name
		}
	}
	return ""
}

// guestNetState is what a guest's console says of its network, for a
// failure's message: its interface's counters, its TCP sockets, its
// processes and its kernel's last messages (the console shows only the
// gravest).
func (e *env) guestNetState(t *testing.T, port string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	out, st, err := e.s.GuestExec(ctx, port, "cat /proc/net/dev /proc/net/tcp; ps; dmesg | tail -n 20")
	return fmt.Sprintf("%s(status %d, %v)", out, st, err)
}

// guestCrashed names the console log of a QEMU guest whose kernel
// crashed or found itself corrupt, on any host it ran on; "" if none
// did.
func (e *env) guestCrashed(port string) string {
	logs, _ := filepath.Glob(filepath.Join(e.s.RunDir, "guest-"+port+"@*.con.log"))
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		// A panic, a BUG or oops, or a warning with its stack (list
		// corruption is a warning in Debian's kernel; the guest goes on
		// with corrupt memory).
		for _, sign := range []string{"Kernel panic", "BUG", "Oops", "general protection fault", "Call Trace"} {
			if bytes.Contains(b, []byte(sign)) {
				return filepath.Base(l) + ": " + sign
			}
		}
	}
	return ""
}

// ncServer is busybox nc listening on port in namespace ns until the test
// ends, given no input (it ends its connection at the end of its input
// and at a reset): got counts the lines it received, alive says whether
// it still runs.
func ncServer(t *testing.T, ns string, port int) (got *lines, alive func() bool) {
	t.Helper()
	srv := exec.Command("ip", "netns", "exec", ns, "busybox", "nc", "-l", "-p", strconv.Itoa(port))
	srv.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	got = &lines{}
	srv.Stdout = got
	in, hold, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	srv.Stdin = in
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	in.Close()
	done := make(chan error, 1)
	go func() { done <- srv.Wait() }()
	t.Cleanup(func() { syscall.Kill(-srv.Process.Pid, syscall.SIGKILL); <-done; hold.Close() })
	time.Sleep(300 * time.Millisecond)
	alive = func() bool {
		select {
		case err := <-done:
			done <- err
			return false
		default:
			return true
		}
	}
	return got, alive
}

// serverPeer is the address and port the one TCP connection established
// to port in namespace ns comes from.
func serverPeer(t *testing.T, ns string, port int) string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", ns, "ss", "-Htn", "state", "established", "sport", fmt.Sprintf("= :%d", port)).CombinedOutput()
	if f := strings.Fields(string(out)); err == nil && len(f) >= 4 && strings.Count(string(out), "\n") == 1 {
		return f[len(f)-1]
	}
	t.Fatalf("the server's connections: %v\n%s", err, out)
	return ""
}

// lines counts the lines written to it.
type lines struct {
	mu sync.Mutex
	n  int
}

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n += bytes.Count(p, []byte("\n"))
	return len(p), nil
}

func (l *lines) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

// closedFirst tells a socket the guest closed first from one a reset
// ended or that still runs, by the remote address and port.
func TestClosedFirst(t *testing.T) {
	// /proc/net/tcp as the guest's console gave it in CI (stop 38).
	const seen = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0A01070A:DCCA 0A6433C6:1518 06 00000000:00000000 03:00000F98 00000000     0        0 0 3 (____ptrval____)
`
	established := strings.Replace(seen, " 06 ", " 01 ", 1)
	server := netip.MustParseAddrPort("198.51.100.10:5400")
	for _, c := range []struct {
		text   string
		remote netip.AddrPort
		want   string
	}{
		{seen, server, "TIME_WAIT"},
		{seen, netip.MustParseAddrPort("198.51.100.10:5401"), ""},       // another port
		{seen, netip.MustParseAddrPort("198.51.100.11:5400"), ""},       // another server
		{established, server, ""},                                       // still open
		{strings.Replace(seen, " 06 ", " 05 ", 1), server, "FIN_WAIT2"}, // closed, not yet answered
		{"", server, ""}, // reset: no socket left
	} {
		if got := closedFirst(c.text, c.remote); got != c.want {
			t.Errorf("closedFirst(%s) = %q, want %q in:\n%s", c.remote, got, c.want, c.text)
		}
	}
}
