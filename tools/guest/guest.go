// Package guest boots real virtual machines for Courier's sandbox and
// tests: QEMU guests on tap devices, the way a hypervisor attaches VMs.
//
// The guest image is built, not committed: mkguest.sh (embedded here, and
// run by make guest) takes the Debian kernel and busybox-static from the
// Debian archive and builds an initramfs whose init loads virtio-net,
// configures the NIC from the kernel command line (or by DHCP), serves a
// page with busybox httpd and runs one command per line from the serial
// console. The result is cached by kernel version and script hash.
//
// The console is QEMU's serial port on a unix socket, logged to a file:
// readiness is a line in the log, and Exec writes a command with an echo
// of a marker and its exit status after it. QMP (for migration) is plain
// JSON over QMP's unix socket: the few commands used do not justify a
// library.
package guest

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

//go:embed mkguest.sh
var mkguest []byte

// DefaultCache is where images are built once per kernel and script.
const DefaultCache = "/var/cache/courier/guest"

// Image is a built guest: the kernel and the initramfs.
type Image struct {
	Kernel, Initrd string
}

// Build returns the guest image in cache (DefaultCache when empty),
// building it first if it is not there (a minute the first time: two
// Debian packages are downloaded). Concurrent builds wait for each other.
func Build(ctx context.Context, cache string) (Image, error) {
	if cache == "" {
		cache = DefaultCache
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return Image{}, err
	}
	// The script keys its output by its own hash: run it from a file
	// whose content is the embedded script.
	script := filepath.Join(cache, "mkguest.sh")
	if b, err := os.ReadFile(script); err != nil || !bytes.Equal(b, mkguest) {
		if err := writeScript(script); err != nil {
			return Image{}, err
		}
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "sh", script, cache)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return Image{}, fmt.Errorf("build the guest image (tools/guest/mkguest.sh): %w\n%s", err, stderr.String())
	}
	lines := strings.Fields(stdout.String())
	if len(lines) == 0 {
		return Image{}, fmt.Errorf("mkguest.sh printed no directory\n%s", stderr.String())
	}
	dir := lines[len(lines)-1]
	return Image{Kernel: filepath.Join(dir, "vmlinuz"), Initrd: filepath.Join(dir, "initrd")}, nil
}

// writeScript replaces script with the embedded mkguest.sh, atomically:
// a temporary file of its own (two guests of one process start at once,
// so a name by PID is not enough), renamed over it.
func writeScript(script string) error {
	f, err := os.CreateTemp(filepath.Dir(script), "mkguest.sh.tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // gone after the rename; left by an error
	_, err = f.Write(mkguest)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o755)
	}
	if err == nil {
		err = os.Rename(f.Name(), script)
	}
	return err
}

// Accel chooses QEMU's accelerator: $COURIER_GUEST_ACCEL when set (tcg
// or kvm); else KVM where /dev/kvm opens and this machine is not itself
// a virtual machine, TCG otherwise. Nested KVM (a KVM guest running
// guests) was measured several times slower than TCG to boot here
// (DEVELOPERS.md), so a hypervisor flag in /proc/cpuinfo means TCG.
func Accel() string {
	if a := os.Getenv("COURIER_GUEST_ACCEL"); a != "" {
		return a
	}
	f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0)
	if err != nil {
		return "tcg"
	}
	f.Close()
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil && regexp.MustCompile(`(?m)^flags\s*:.*\bhypervisor\b`).Match(b) {
		return "tcg"
	}
	return "kvm"
}

// Spec is one guest.
type Spec struct {
	Name  string // the port, the guest's hostname
	Image Image
	Accel string // "" : Accel()
	Tap   string // the tap it opens, in the namespace QEMU starts in
	MAC   net.HardwareAddr
	MTU   int          // the NIC's (virtio host_mtu); 0: 1500
	Addr  netip.Prefix // invalid: DHCP
	GW    netip.Addr
	// Console and QMP are the unix sockets of its serial console and of
	// QMP; ConsoleLog records everything the console printed.
	Console, ConsoleLog, QMP string
	// Incoming, when set, starts the guest waiting for a migration
	// stream on this URI (tcp:ADDR:PORT) instead of booting.
	Incoming string
	MemoryMB int // 0: 192
}

// Args is QEMU's command line for the guest.
//
// Equivalent to:
//
//	qemu-system-x86_64 -accel tcg -M pc -m 192 -nodefaults -display none \
//	  -kernel vmlinuz -initrd initrd -append "console=ttyS0 courier.ip=..." \
//	  -chardev socket,id=con,path=CONSOLE,server=on,wait=off,logfile=LOG -serial chardev:con \
//	  -netdev tap,id=n0,ifname=TAP,script=no,downscript=no \
//	  -device virtio-net-pci,netdev=n0,mac=MAC,host_mtu=MTU,romfile= -qmp unix:QMP,server=on,wait=off
func (s Spec) Args() []string {
	accel := s.Accel
	if accel == "" {
		accel = Accel()
	}
	mem, mtu := s.MemoryMB, s.MTU
	if mem == 0 {
		mem = 192
	}
	if mtu == 0 {
		mtu = 1500
	}
	cmdline := []string{"console=ttyS0", "quiet", "loglevel=1", "panic=-1", "courier.name=" + s.Name, "courier.mtu=" + strconv.Itoa(mtu)}
	if s.Addr.IsValid() {
		cmdline = append(cmdline, "courier.ip="+s.Addr.String())
		if s.GW.IsValid() {
			cmdline = append(cmdline, "courier.gw="+s.GW.String())
		}
	}
	args := []string{"-name", "courier-" + s.Name, "-accel", accel, "-M", "pc", "-m", strconv.Itoa(mem), "-smp", "1",
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-kernel", s.Image.Kernel, "-initrd", s.Image.Initrd, "-append", strings.Join(cmdline, " "),
		"-chardev", fmt.Sprintf("socket,id=con,path=%s,server=on,wait=off,logfile=%s,logappend=on", s.Console, s.ConsoleLog),
		"-serial", "chardev:con",
		"-netdev", "tap,id=n0,ifname=" + s.Tap + ",script=no,downscript=no,vhost=off",
		"-device", fmt.Sprintf("virtio-net-pci,netdev=n0,mac=%s,host_mtu=%d,romfile=", s.MAC, mtu),
		"-qmp", "unix:" + s.QMP + ",server=on,wait=off"}
	if s.Incoming != "" {
		args = append(args, "-incoming", s.Incoming)
	}
	return args
}

// Ready is the line init prints on the console once the NIC is
// configured, followed by the guest's address.
const Ready = "COURIER-GUEST-READY"

// WaitReady waits until the console log, from offset on, holds the
// ready line, and returns the address it reports. exited, when it
// closes, means QEMU is gone: the wait fails at once.
func WaitReady(ctx context.Context, log string, offset int64, exited <-chan struct{}) (string, error) {
	for {
		if b, err := os.ReadFile(log); err == nil && int64(len(b)) > offset {
			if i := bytes.Index(b[offset:], []byte(Ready)); i >= 0 {
				rest := b[offset+int64(i)+int64(len(Ready)):]
				line, _, _ := bytes.Cut(rest, []byte("\n"))
				return strings.TrimSpace(string(line)), nil
			}
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("the guest did not finish booting (console log %s): %w", log, ctx.Err())
		case <-exited:
			return "", fmt.Errorf("QEMU exited before the guest booted (console log %s)", log)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Exec runs a shell command line in the guest through its console and
// returns what it printed (stdout and stderr) and its exit status. One
// command at a time per console: callers serialize (the sandbox holds a
// lock file).
func Exec(ctx context.Context, console, command string) (string, int, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", console)
	if err != nil {
		return "", -1, fmt.Errorf("guest console %s: %w", console, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	marker := fmt.Sprintf("@@courier-%d-%d@@", os.Getpid(), time.Now().UnixNano())
	if strings.ContainsAny(command, "\n\r") {
		return "", -1, fmt.Errorf("a console command is one line")
	}
	// The marker is split in the command so that only its echo, never
	// the command itself, can match it.
	half := len(marker) / 2
	// A subshell, so that an exit in the command still reaches the echo.
	line := fmt.Sprintf("( %s ) 2>&1; echo \"%s\"\"%s:$?\"\n", command, marker[:half], marker[half:])
	if _, err := c.Write([]byte(line)); err != nil {
		return "", -1, err
	}
	var out strings.Builder
	r := bufio.NewReader(c)
	for {
		l, err := r.ReadString('\n')
		if i := strings.Index(l, marker+":"); i >= 0 {
			out.WriteString(l[:i])
			status, perr := strconv.Atoi(strings.TrimSpace(l[i+len(marker)+1:]))
			if perr != nil {
				return out.String(), -1, fmt.Errorf("bad status after the marker: %q", l)
			}
			return strings.ReplaceAll(out.String(), "\r", ""), status, nil
		}
		out.WriteString(l)
		if err != nil {
			return out.String(), -1, fmt.Errorf("guest console: %w", err)
		}
	}
}
