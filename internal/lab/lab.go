// Package lab builds hosts and VMs out of network namespaces on one
// machine: a fabric namespace with a bridge is the data-centre underlay,
// each host is a namespace with one veth into the fabric, and each VM is a
// namespace with a veth into its host. The sandbox, the integration tests
// and the benchmarks all use it. Every namespace carries the lab's prefix,
// and Destroy removes them all (links die with their namespaces).
package lab

import (
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/courier-sdn/courier/dataplane"
)

// Lab is a set of namespaces sharing a prefix. AddVM may be called
// concurrently.
type Lab struct {
	mu     sync.Mutex
	Prefix string
	Fabric string // the fabric namespace
	Hosts  map[string]*Host
	VMs    map[string]*VM
	subnet netip.Prefix
}

// Host is a hypervisor namespace.
type Host struct {
	Name string
	NS   string
	VTEP netip.Addr
	MAC  net.HardwareAddr
}

// VM is a VM namespace.
type VM struct {
	Name     string
	NS       string
	Host     *Host
	Ifindex  int    // host side, in the host's namespace
	HostSide string // its name
}

// onThread runs fn on a locked OS thread and then puts the thread back
// into the namespace it started in, whichever fn switched to.
func onThread(fn func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return err
	}
	defer orig.Close()
	err = fn()
	if rerr := netns.Set(orig); err == nil {
		err = rerr
	}
	return err
}

// Do runs fn on a thread that is inside namespace ns for the duration.
func Do(ns string, fn func() error) error {
	return onThread(func() error {
		h, err := netns.GetFromName(ns)
		if err != nil {
			return fmt.Errorf("namespace %s: %w", ns, err)
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			return err
		}
		return fn()
	})
}

// NewNS creates a named namespace (lo up) without leaving the caller in
// it. Equivalent to: ip netns add NAME; ip -n NAME link set lo up.
func NewNS(name string) error {
	if err := sharedNetnsDir(); err != nil {
		return err
	}
	return onThread(func() error {
		h, err := netns.NewNamed(name)
		if err != nil {
			return fmt.Errorf("ip netns add %s: %w", name, err)
		}
		defer h.Close()
		if lo, err := netlink.LinkByName("lo"); err == nil {
			netlink.LinkSetUp(lo)
		}
		// Quiet namespaces: no IPv6 (no router solicitations, no MLD), so a
		// capture on the underlay sees only what Courier sends.
		os.WriteFile("/proc/sys/net/ipv6/conf/all/disable_ipv6", []byte("1"), 0o644)
		os.WriteFile("/proc/sys/net/ipv6/conf/default/disable_ipv6", []byte("1"), 0o644)
		return nil
	})
}

// New creates the fabric: namespace <prefix>fabric with bridge br0.
// Underlay addresses are taken from subnet (e.g. 192.168.100.0/24).
func New(prefix string, subnet netip.Prefix) (*Lab, error) {
	l := &Lab{Prefix: prefix, Fabric: prefix + "fabric", Hosts: map[string]*Host{}, VMs: map[string]*VM{}, subnet: subnet}
	if err := NewNS(l.Fabric); err != nil {
		return nil, err
	}
	err := Do(l.Fabric, func() error {
		// No IGMP snooping: with it the bridge joins the all-snoopers
		// group (224.0.0.106) and sends reports of its own.
		snooping := false
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br0"}, MulticastSnooping: &snooping}
		if err := netlink.LinkAdd(br); err != nil {
			return err
		}
		// The underlay carries VXLAN only: no multicast (no IGMP reports
		// from interfaces coming up), so that a capture shows only what
		// Courier sends.
		if err := netlink.LinkSetMulticastOff(br); err != nil {
			return err
		}
		return netlink.LinkSetUp(br)
	})
	if err != nil {
		l.Destroy()
		return nil, fmt.Errorf("fabric bridge: %w", err)
	}
	return l, nil
}

// AddHost creates host namespace <prefix><name> with interface eth0 on the
// fabric holding the n-th address of the underlay subnet. Underlay
// neighbours are static (see Neighbours), so not even the hosts ARP.
func (l *Lab) AddHost(name string, n int) (*Host, error) {
	a := l.subnet.Addr()
	for i := 0; i < n; i++ {
		a = a.Next()
	}
	h := &Host{Name: name, NS: l.Prefix + name, VTEP: a}
	if err := NewNS(h.NS); err != nil {
		return nil, err
	}
	if err := l.plugUnderlay(h, l.subnet.Bits()); err != nil {
		return nil, err
	}
	l.Hosts[name] = h
	return h, l.Neighbours()
}

// plugUnderlay links host h into the fabric: a veth, its eth0 holding
// the host's VTEP address with a prefix of bits.
func (l *Lab) plugUnderlay(h *Host, bits int) error {
	fabSide := fabricSide(h.Name)
	err := Do(l.Fabric, func() error {
		if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: fabSide, MTU: 1500}, PeerName: "eth0"}); err != nil {
			return err
		}
		fab, _ := netlink.LinkByName(fabSide)
		br, _ := netlink.LinkByName("br0")
		if err := netlink.LinkSetMaster(fab, br); err != nil {
			return err
		}
		if err := netlink.LinkSetMulticastOff(fab); err != nil {
			return err
		}
		if err := netlink.LinkSetUp(fab); err != nil {
			return err
		}
		peer, _ := netlink.LinkByName("eth0")
		hns, err := netns.GetFromName(h.NS)
		if err != nil {
			return err
		}
		defer hns.Close()
		return netlink.LinkSetNsFd(peer, int(hns))
	})
	if err != nil {
		return fmt.Errorf("host %s underlay: %w", h.Name, err)
	}
	err = Do(h.NS, func() error {
		eth, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		h.MAC = eth.Attrs().HardwareAddr
		if err := netlink.LinkSetMulticastOff(eth); err != nil {
			return err
		}
		if err := netlink.AddrAdd(eth, &netlink.Addr{IPNet: &net.IPNet{IP: h.VTEP.AsSlice(), Mask: net.CIDRMask(bits, 32)}}); err != nil {
			return err
		}
		return netlink.LinkSetUp(eth)
	})
	if err != nil {
		return fmt.Errorf("host %s address: %w", h.Name, err)
	}
	return nil
}

// ReplaceUnderlay deletes host name's eth0 and plugs in a new one with
// the same address (a new ifindex and MAC), as when an operator recreates
// a bond, and rewrites the underlay's neighbour entries. It works on a
// lab reopened from saved state (its hosts' names, VTEPs and MACs).
func (l *Lab) ReplaceUnderlay(name string) error {
	h, ok := l.Hosts[name]
	if !ok {
		return fmt.Errorf("no host %s", name)
	}
	bits := 0
	err := Do(h.NS, func() error {
		eth, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		addrs, err := netlink.AddrList(eth, netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		for _, a := range addrs {
			if a.IP.Equal(h.VTEP.AsSlice()) {
				bits, _ = a.Mask.Size()
			}
		}
		if bits == 0 {
			return fmt.Errorf("eth0 does not hold %s", h.VTEP)
		}
		return netlink.LinkDel(eth)
	})
	if err != nil {
		return fmt.Errorf("host %s: delete eth0: %w", name, err)
	}
	if err := Do(l.Fabric, func() error { return waitLinkGone(fabricSide(name), 5*time.Second) }); err != nil {
		return err
	}
	if err := l.plugUnderlay(h, bits); err != nil {
		return err
	}
	return l.Neighbours()
}

// fabricSide is the fabric's end of a host's underlay link.
func fabricSide(host string) string {
	n := "u-" + host
	if len(n) > 15 {
		n = n[:15]
	}
	return n
}

// LinkEnd is one end of a link: an interface in a namespace.
type LinkEnd struct {
	NS, Name string
}

func (e LinkEnd) String() string { return e.NS + "/" + e.Name }

// UnderlayEnds are both ends of a host's link into the fabric: its eth0
// and the fabric bridge's port. (A lab reopened from a saved state knows
// its hosts by name, which is all this needs.)
func (l *Lab) UnderlayEnds(h *Host) []LinkEnd {
	return []LinkEnd{{NS: h.NS, Name: "eth0"}, {NS: l.Fabric, Name: fabricSide(h.Name)}}
}

// SetLinks sets each end administratively up or down. Setting an end to
// the state it is in is not an error; a missing one is.
//
// Equivalent to: ip -n NS link set NAME up|down, for each end.
func SetLinks(ends []LinkEnd, up bool) error {
	var errs []error
	for _, e := range ends {
		errs = append(errs, Do(e.NS, func() error {
			lk, err := netlink.LinkByName(e.Name)
			if err != nil {
				return fmt.Errorf("%s: %w", e, err)
			}
			if up {
				err = netlink.LinkSetUp(lk)
			} else {
				err = netlink.LinkSetDown(lk)
			}
			if err != nil {
				return fmt.Errorf("ip -n %s link set %s %s: %w", e.NS, e.Name, map[bool]string{true: "up", false: "down"}[up], err)
			}
			return nil
		}))
	}
	return errors.Join(errs...)
}

// LinksUp reports whether every end is administratively up.
func LinksUp(ends []LinkEnd) (bool, error) {
	all := true
	for _, e := range ends {
		err := Do(e.NS, func() error {
			lk, err := netlink.LinkByName(e.Name)
			if err != nil {
				return fmt.Errorf("%s: %w", e, err)
			}
			all = all && lk.Attrs().Flags&net.FlagUp != 0
			return nil
		})
		if err != nil {
			return false, err
		}
	}
	return all, nil
}

// Neighbours writes every host's underlay neighbour entries statically, so
// that the underlay carries no ARP at all.
func (l *Lab) Neighbours() error {
	var errs []error
	for _, h := range l.Hosts {
		errs = append(errs, Do(h.NS, func() error {
			eth, err := netlink.LinkByName("eth0")
			if err != nil {
				return err
			}
			for _, o := range l.Hosts {
				if o == h {
					continue
				}
				err := netlink.NeighSet(&netlink.Neigh{LinkIndex: eth.Attrs().Index, Family: netlink.FAMILY_V4,
					State: netlink.NUD_PERMANENT, IP: o.VTEP.AsSlice(), HardwareAddr: o.MAC})
				if err != nil {
					return err
				}
			}
			return nil
		}))
	}
	return errors.Join(errs...)
}

// VMConfig describes a VM's NIC.
type VMConfig struct {
	Port    string // the logical port (alias courier:PORT)
	MAC     net.HardwareAddr
	Addr    netip.Prefix
	Gateway netip.Addr
	MTU     int
}

// AddVM creates VM namespace <prefix><name> on host h with one NIC.
func (l *Lab) AddVM(name string, h *Host, c VMConfig) (*VM, error) {
	vm := &VM{Name: name, NS: l.Prefix + name, Host: h}
	if err := NewNS(vm.NS); err != nil {
		return nil, err
	}
	vm.HostSide = hostSideName(name)
	if c.MTU == 0 {
		c.MTU = 1500 - dataplane.VXLANOverhead
	}
	vmns, err := netns.GetFromName(vm.NS)
	if err != nil {
		return nil, err
	}
	defer vmns.Close()
	err = Do(h.NS, func() error {
		idx, err := dataplane.CreateVMPort(dataplane.VMPort{HostName: vm.HostSide, NS: vmns, MAC: c.MAC,
			Addr: c.Addr, Gateway: c.Gateway, MTU: c.MTU, Alias: dataplane.AliasPrefix + c.Port})
		vm.Ifindex = idx
		return err
	})
	if err != nil {
		netns.DeleteNamed(vm.NS)
		return nil, fmt.Errorf("VM %s: %w", name, err)
	}
	l.mu.Lock()
	l.VMs[name] = vm
	l.mu.Unlock()
	return vm, nil
}

// DelVM removes VM name, on host h, by its exact name: its host-side
// interface (the veth takes its peer in the VM along) and its namespace.
// It returns once the interface is gone from the host, so that a VM of
// the same name can be added at once: deleting the namespace alone would
// leave the veth to the kernel's asynchronous namespace clean-up, and a
// new "ip link add" of its name would fail with "file exists" meanwhile.
// A VM already partly gone is not an error.
//
// Equivalent to:
//
//	ip -n HOST link del v-NAME; ip netns del PREFIXNAME
func (l *Lab) DelVM(name string, h *Host) error {
	hostSide := hostSideName(name)
	var errs []error
	if h != nil {
		errs = append(errs, Do(h.NS, func() error {
			link, err := netlink.LinkByName(hostSide)
			if err == nil {
				err = netlink.LinkDel(link)
			}
			if err != nil && !isNotFound(err) {
				return fmt.Errorf("ip link del %s: %w", hostSide, err)
			}
			return nil
		}))
	}
	if err := netns.DeleteNamed(l.Prefix + name); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("ip netns del %s: %w", l.Prefix+name, err))
	}
	if h != nil {
		errs = append(errs, Do(h.NS, func() error { return waitLinkGone(hostSide, 5*time.Second) }))
	}
	l.mu.Lock()
	delete(l.VMs, name)
	l.mu.Unlock()
	return errors.Join(errs...)
}

func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || errors.Is(err, syscall.ENODEV)
}

// waitLinkGone waits until the current namespace has no interface name.
func waitLinkGone(name string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		_, err := netlink.LinkByName(name)
		if isNotFound(err) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("interface %s still exists %v after its deletion (err %v)", name, timeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// hostSideName is a VM's veth's host side: LinkName("v-", vm).
func hostSideName(vm string) string { return LinkName("v-", vm) }

// LinkName fits prefix+name into an interface name (15 bytes); a long
// name is cut and given a hash of the whole, so two never collide.
func LinkName(prefix, name string) string {
	n := prefix + name
	if len(n) <= 15 {
		return n
	}
	h := fnv.New32a()
	h.Write([]byte(name))
	return fmt.Sprintf("%s%s-%04x", prefix, name[:8], h.Sum32()&0xffff)
}

// Exec runs a command inside namespace ns and returns its output.
func Exec(ns string, args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
	return string(out), err
}

// Ping sends count pings from the VM to ip (interval in seconds, may be
// fractional) and returns how many were answered.
func (l *Lab) Ping(vm string, ip netip.Addr, count int, interval string) (int, string) {
	out, _ := Exec(l.VMs[vm].NS, "ping", "-n", "-q", "-c", fmt.Sprint(count), "-i", interval, "-W", "1", ip.String())
	_, recv := PingSummary(out)
	return recv, out
}

// PingSummary reads how many echo requests a ping sent and how many
// were answered from its summary line, iputils' ("5 packets
// transmitted, 4 received, ...") or busybox's ("5 packets transmitted,
// 4 packets received, ..."); 0, 0 without one.
func PingSummary(out string) (sent, recv int) {
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "packets transmitted") {
			fmt.Sscanf(strings.TrimSpace(line), "%d packets transmitted, %d", &sent, &recv)
		}
	}
	return sent, recv
}

// Destroy removes every namespace with the lab's prefix, including ones a
// crashed earlier run left behind.
func (l *Lab) Destroy() error {
	return DestroyPrefix(l.Prefix)
}

// DestroyPrefix removes every named network namespace whose name starts
// with prefix.
func DestroyPrefix(prefix string) error {
	entries, err := os.ReadDir("/var/run/netns")
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	var errs []error
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			if err := netns.DeleteNamed(e.Name()); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
