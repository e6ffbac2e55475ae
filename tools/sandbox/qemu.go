package sandbox

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/courier-sdn/courier/dataplane"
	"github.com/courier-sdn/courier/internal/lab"
	"github.com/courier-sdn/courier/internal/proc"
	"github.com/courier-sdn/courier/tools/guest"
)

// QEMU guests (vm-add --qemu): a real VM on a tap in its host's
// namespace, as a hypervisor attaches one, booted from the image
// tools/guest builds. Its QEMU's files are in the run directory, named
// by port and host: guest-PORT@HOST.{pid,log} (QEMU's), .con (its
// serial console's socket), .con.log (everything the console printed)
// and .qmp. By host, because during a migration two QEMUs run the guest,
// and a QEMU removes its sockets' paths when it exits: a renamed path
// would take the other's.

// guestFile is one of the files of a guest's QEMU on host.
func (s *Sandbox) guestFile(port, host, ext string) string {
	return filepath.Join(s.RunDir, "guest-"+port+"@"+host+ext)
}

// guestFiles are the extensions of a QEMU's files.
var guestFiles = []string{".pid", ".log", ".con", ".con.log", ".qmp"}

// tapName is a guest's tap: "t-PORT", fitted as a veth's host side is.
func tapName(port string) string { return lab.LinkName("t-", port) }

// GuestTap is the namespace of the host running guest port and the
// name of its tap there; ok is false if port is not a running guest.
func (s *Sandbox) GuestTap(port string) (ns, tap string, ok bool) {
	host, ok := s.HasVM(port)
	if !ok || !s.IsGuest(port) {
		return "", "", false
	}
	return s.HostNS(host), tapName(port), true
}

// guestCache is where the guest image is built ($COURIER_GUEST_CACHE or
// guest.DefaultCache).
func guestCache() string { return os.Getenv("COURIER_GUEST_CACHE") }

// addGuest boots a QEMU guest for a port on a host and returns once it is
// up and its port bound there.
func (s *Sandbox) addGuest(ctx context.Context, host, port string, mac net.HardwareAddr, addr netip.Prefix, gw netip.Addr, o VMOptions) error {
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		return fmt.Errorf("qemu-system-x86_64 is not installed (make deps): %w", err)
	}
	img, err := guest.Build(ctx, guestCache())
	if err != nil {
		return err
	}
	mtu := o.MTU
	if mtu == 0 {
		mtu = 1500 - dataplane.VXLANOverhead
	}
	if o.DHCP != "" {
		addr, gw = netip.Prefix{}, netip.Addr{}
	}
	tap := tapName(port)
	err = lab.Do(s.HostNS(host), func() error {
		_, err := dataplane.CreateTap(tap, dataplane.AliasPrefix+port)
		return err
	})
	if err != nil {
		return fmt.Errorf("guest %s: %w", port, err)
	}
	s.setVM(port, &VMSt{Host: host, QEMU: true, MTU: mtu})
	if err := s.save(); err != nil {
		return err
	}
	spec := guest.Spec{Name: port, Image: img, Tap: tap, MAC: mac, MTU: mtu, Addr: addr, GW: gw,
		Console: s.guestFile(port, host, ".con"), ConsoleLog: s.guestFile(port, host, ".con.log"), QMP: s.guestFile(port, host, ".qmp")}
	ip, err := s.bootGuest(ctx, host, qemu, spec)
	if err != nil {
		return err
	}
	s.setVM(port, &VMSt{Host: host, IP: ip, QEMU: true, MTU: mtu})
	if err := s.save(); err != nil {
		return err
	}
	return s.WaitUp(ctx, port, 15*time.Second)
}

// bootGuest starts QEMU in the host's namespace (where it opens the tap)
// and waits until the guest says it is up; it returns its address.
func (s *Sandbox) bootGuest(ctx context.Context, host, qemu string, spec guest.Spec) (string, error) {
	offset := int64(0)
	if fi, err := os.Stat(spec.ConsoleLog); err == nil {
		offset = fi.Size()
	}
	logFile := s.guestFile(spec.Name, host, ".log")
	pid, err := proc.Start(proc.Spec{Bin: qemu, Args: spec.Args(), LogFile: logFile, PidFile: s.guestFile(spec.Name, host, ".pid"),
		Start: func(c *exec.Cmd) error { return lab.Do(s.HostNS(host), c.Start) }})
	if err != nil {
		return "", err
	}
	s.log.Info("started QEMU guest", "port", spec.Name, "host", host, "pid", pid, "accel", spec.Args()[3])
	exited := make(chan struct{})
	watch, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		for proc.Alive(pid) {
			select {
			case <-watch.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
		close(exited)
	}()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	ip, err := guest.WaitReady(ctx, spec.ConsoleLog, offset, exited)
	if err != nil {
		return "", fmt.Errorf("guest %s: %w%s", spec.Name, err, proc.LogTail(logFile, 0))
	}
	ip, _, _ = strings.Cut(ip, "/")
	return ip, nil
}

// stopGuest stops a guest's QEMU, removes its tap and its files. A guest
// already gone is not an error.
func (s *Sandbox) stopGuest(port string) error {
	s.mu.Lock()
	vm := s.State.VMs[port]
	s.mu.Unlock()
	if !vm.QEMU {
		return nil
	}
	err := s.stopQEMU(port, vm.Host)
	os.Remove(s.guestLock(port))
	return err
}

// stopQEMU stops a guest's QEMU on host, removes its tap there and its
// files.
func (s *Sandbox) stopQEMU(port, host string) error {
	var errs []error
	if err := proc.Stop(s.guestFile(port, host, ".pid"), "qemu-system", 10*time.Second); err != nil {
		errs = append(errs, fmt.Errorf("stop QEMU of %s on %s: %w", port, host, err))
	}
	errs = append(errs, lab.Do(s.HostNS(host), func() error { return delLink(tapName(port)) }))
	for _, ext := range guestFiles {
		os.Remove(s.guestFile(port, host, ext))
	}
	return errors.Join(errs...)
}

func (s *Sandbox) guestLock(port string) string {
	return filepath.Join(s.RunDir, "guest-"+port+".lock")
}

// delLink deletes an interface of the current namespace, if it exists.
//
// Equivalent to: ip link del NAME
func delLink(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return nil
	}
	return netlink.LinkDel(l)
}

// GuestExec runs a shell command line in a QEMU guest through its serial
// console, one at a time (a lock file), and returns its output and exit
// status.
func (s *Sandbox) GuestExec(ctx context.Context, port, command string) (string, int, error) {
	lock, err := os.OpenFile(s.guestLock(port), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", -1, err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", -1, err
	}
	host, _ := s.HasVM(port)
	return guest.Exec(ctx, s.guestFile(port, host, ".con"), command)
}

// IsGuest reports whether a VM is a QEMU guest.
func (s *Sandbox) IsGuest(port string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.State.VMs[port].QEMU
}

// shellQuote makes a command line of args for the guest's shell: each
// argument that is not plain is single-quoted.
func shellQuote(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a != "" && strings.IndexFunc(a, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=@%+,", r))
		}) < 0 {
			out[i] = a
			continue
		}
		out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(out, " ")
}
