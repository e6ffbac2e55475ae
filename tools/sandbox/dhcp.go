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
	"time"

	"github.com/vishvananda/netlink"

	"github.com/courier-sdn/courier/internal/lab"
	"github.com/courier-sdn/courier/internal/proc"
)

// VMOptions say how vm-add makes a VM.
type VMOptions struct {
	// DHCP, when set, names the DHCP client the VM runs instead of being
	// configured: udhcpc (busybox), dhclient (ISC) or dhcpcd. The VM
	// starts with no address, at the MTU its OS would have, and learns
	// the rest from the network.
	DHCP string
	// MTU is the VM's MTU; 0: the overlay's, or 1500 with DHCP.
	MTU int
	// QEMU boots a real guest on a tap (qemu.go) instead of a namespace;
	// with DHCP set it runs the guest's own udhcpc.
	QEMU bool
}

// DHCPClients are the clients vm-add --dhcp can run, with the command
// line each runs in the foreground, renewing its lease, on eth0. Each
// runs in UTS and mount namespaces of its own, so that setting the
// hostname it is given changes the VM's, not the machine's, with a /run
// and a resolv.conf of the VM's own (ip netns exec mounts
// /etc/netns/NS/resolv.conf).
var DHCPClients = map[string]func(pidFile, leaseFile string) []string{
	"udhcpc": func(pidFile, _ string) []string {
		return []string{"udhcpc", "-f", "-i", "eth0", "-p", pidFile, "-t", "5", "-T", "1", "-A", "2"}
	},
	"dhclient": func(pidFile, leaseFile string) []string {
		return []string{"dhclient", "-d", "-4", "-v", "-pf", pidFile, "-lf", leaseFile, "eth0"}
	},
	"dhcpcd": func(_, _ string) []string {
		return []string{"dhcpcd", "--nobackground", "--ipv4only", "--noarp", "--waitip=4", "eth0"}
	},
}

// vmMounts gives a VM's DHCP client a /run and a /var/lib/dhcpcd (its
// DUID and leases) of its own.
const vmMounts = `mount -t tmpfs courier-vm /run && ` +
	`{ [ ! -d /var/lib/dhcpcd ] || mount -t tmpfs courier-vm /var/lib/dhcpcd; } && `

// resolvConf is a VM's own resolv.conf, which its DHCP client writes.
func (s *Sandbox) resolvConf(port string) string {
	return filepath.Join("/etc/netns", s.VMNS(port), "resolv.conf")
}

// ResolvConf returns what a VM's DHCP client wrote to its resolv.conf.
func (s *Sandbox) ResolvConf(port string) (string, error) {
	b, err := os.ReadFile(s.resolvConf(port))
	return string(b), err
}

func (s *Sandbox) dhcpPid(port string) string { return filepath.Join(s.RunDir, "dhcp-"+port+".pid") }

// addDHCPVM creates a VM with nothing configured and starts its DHCP
// client; it returns once the client has configured an address.
func (s *Sandbox) addDHCPVM(ctx context.Context, host, port string, mac net.HardwareAddr, o VMOptions) error {
	argv, ok := DHCPClients[o.DHCP]
	if !ok {
		return fmt.Errorf("no DHCP client %q: want udhcpc, dhclient or dhcpcd", o.DHCP)
	}
	bin, err := exec.LookPath(o.DHCP)
	if err != nil {
		return fmt.Errorf("DHCP client %s is not installed (make deps): %w", o.DHCP, err)
	}
	mtu := o.MTU
	if mtu == 0 {
		mtu = 1500
	}
	vm, err := s.lab.AddVM(port, s.lab.Hosts[host], lab.VMConfig{Port: port, MAC: mac, MTU: mtu})
	if err != nil {
		return err
	}
	s.setVM(port, &VMSt{Host: host, DHCP: o.DHCP})
	if err := s.save(); err != nil {
		return err
	}
	if err := s.WaitUp(ctx, port, 15*time.Second); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(s.resolvConf(port)), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(s.resolvConf(port), nil, 0o644); err != nil {
		return err
	}
	// In the VM's network namespace, then in mount and UTS namespaces of
	// its own: a /run of its own (dhcpcd finds another VM's dhcpcd by its
	// socket there and hands it the work), a hostname of its own.
	client := argv(filepath.Join(s.RunDir, "dhcp-"+port+".client.pid"), filepath.Join(s.RunDir, "dhcp-"+port+".leases"))[1:]
	args := append([]string{"netns", "exec", vm.NS, "unshare", "--mount", "--uts", "--propagation", "private", "--",
		"sh", "-c", vmMounts + `exec "$@"`, "sh", bin}, client...)
	pid, err := proc.Start(proc.Spec{Bin: "ip", Args: args, LogFile: filepath.Join(s.RunDir, "dhcp-"+port+".log"),
		PidFile: s.dhcpPid(port)})
	if err != nil {
		return err
	}
	s.log.Info("started DHCP client", "vm", port, "client", o.DHCP, "pid", pid)
	a, err := s.awaitAddress(ctx, vm.NS, 20*time.Second)
	if err != nil {
		return fmt.Errorf("VM %s: %s got no address: %w%s", port, o.DHCP, err, proc.LogTail(filepath.Join(s.RunDir, "dhcp-"+port+".log"), 0))
	}
	s.setVM(port, &VMSt{Host: host, IP: a.String(), DHCP: o.DHCP})
	return s.save()
}

// awaitAddress waits for eth0 in the namespace to have an IPv4 address
// and a default route.
func (s *Sandbox) awaitAddress(ctx context.Context, ns string, timeout time.Duration) (netip.Addr, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		// Configured means an address and the lease's default route: a
		// client's script adds the route a moment after the address.
		var got netip.Addr
		routed := false
		lab.Do(ns, func() error {
			l, err := netlink.LinkByName("eth0")
			if err != nil {
				return err
			}
			as, err := netlink.AddrList(l, netlink.FAMILY_V4)
			if err == nil && len(as) > 0 {
				got, _ = netip.AddrFromSlice(as[0].IP.To4())
			}
			rs, rerr := netlink.RouteList(l, netlink.FAMILY_V4)
			for _, r := range rs {
				routed = routed || (r.Dst == nil || r.Dst.IP.IsUnspecified()) && r.Gw != nil
			}
			return errors.Join(err, rerr)
		})
		if got.IsValid() && routed {
			return got, nil
		}
		select {
		case <-ctx.Done():
			return netip.Addr{}, fmt.Errorf("no address with a default route on eth0 after %s (address: %v)", timeout, got)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stopDHCP stops a VM's DHCP client, if it runs one, and removes its
// files.
func (s *Sandbox) stopDHCP(port string) error {
	s.mu.Lock()
	client := s.State.VMs[port].DHCP
	s.mu.Unlock()
	if client == "" {
		return nil
	}
	err := proc.Stop(s.dhcpPid(port), client, 5*time.Second)
	for _, f := range []string{".client.pid", ".leases", ".log"} {
		os.Remove(filepath.Join(s.RunDir, "dhcp-"+port+f))
	}
	os.RemoveAll(filepath.Dir(s.resolvConf(port)))
	return err
}
