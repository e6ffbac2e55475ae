package dataplane

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// VXLANPort is the IANA VXLAN port.
const VXLANPort = 4789

// VXLANOverhead is what encapsulation adds (outer Ethernet, IPv4, UDP,
// VXLAN): a VM port's MTU is the underlay's minus this.
const VXLANOverhead = 50

// EnsureVXLAN makes sure the collect-metadata VXLAN device exists with the
// right configuration and is up, and returns its ifindex. A device that
// exists but differs (not external, other port, other local address, no
// Group Based Policy) is recreated rather than patched. GBP carries the
// sender's security group identity (bpf/sg.h).
//
// Equivalent to:
//
//	ip link add NAME type vxlan external dstport 4789 local VTEP nolearning gbp
//	ip link set NAME mtu (underlay MTU - 50) up
func EnsureVXLAN(name string, vtep netip.Addr) (int, error) {
	mtu, err := underlayMTU(vtep)
	if err != nil {
		return 0, err
	}
	want := &netlink.Vxlan{
		LinkAttrs: netlink.LinkAttrs{Name: name, MTU: mtu - VXLANOverhead},
		FlowBased: true, Port: VXLANPort, SrcAddr: net.IP(vtep.AsSlice()), Learning: false, GBP: true,
	}
	if l, err := netlink.LinkByName(name); err == nil {
		vx, ok := l.(*netlink.Vxlan)
		if ok && vx.FlowBased && vx.Port == VXLANPort && vx.SrcAddr.Equal(want.SrcAddr) && !vx.Learning && vx.GBP {
			if err := setMTU(l, want.MTU); err != nil {
				return 0, err
			}
			if err := netlink.LinkSetUp(l); err != nil {
				return 0, fmt.Errorf("set %s up: %w", name, err)
			}
			return l.Attrs().Index, nil
		}
		if err := netlink.LinkDel(l); err != nil {
			return 0, fmt.Errorf("delete mismatching %s: %w", name, err)
		}
	}
	if err := netlink.LinkAdd(want); err != nil {
		return 0, fmt.Errorf("ip link add %s type vxlan external dstport %d local %s gbp: %w", name, VXLANPort, vtep, err)
	}
	l, err := netlink.LinkByName(name)
	if err != nil {
		return 0, err
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return 0, fmt.Errorf("set %s up: %w", name, err)
	}
	return l.Attrs().Index, nil
}

// retryDump repeats a netlink dump that a concurrent change interrupted
// (NLM_F_DUMP_INTR: the kernel says the result may be inconsistent), as
// happens when links come and go while a host starts.
func retryDump[T any](dump func() (T, error)) (T, error) {
	for i := 0; ; i++ {
		v, err := dump()
		if !errors.Is(err, netlink.ErrDumpInterrupted) || i == 9 {
			return v, err
		}
	}
}

// ListLinks lists the namespace's interfaces, consistently.
func ListLinks() ([]netlink.Link, error) { return retryDump(netlink.LinkList) }

// ListLinksWith is ListLinks through a handle (of another namespace).
func ListLinksWith(h *netlink.Handle) ([]netlink.Link, error) { return retryDump(h.LinkList) }

// underlayMTU is the MTU of the interface that holds addr.
func underlayMTU(addr netip.Addr) (int, error) {
	l, err := underlayLink(addr)
	if err != nil {
		return 0, err
	}
	return l.Attrs().MTU, nil
}

// SetVXLANMTU sets the VXLAN device's MTU, when it differs: the
// underlay's less VXLAN's overhead, as EnsureVXLAN sets it at load. The
// programs check a GSO packet's segments against it (encap.h, fits).
func (d *Datapath) SetVXLANMTU(mtu int) error {
	l, err := netlink.LinkByIndex(d.vxlan)
	if err != nil {
		return fmt.Errorf("the VXLAN device (ifindex %d): %w", d.vxlan, err)
	}
	return setMTU(l, mtu)
}

// setMTU sets l's MTU when it differs.
//
// Equivalent to: ip link set NAME mtu MTU.
func setMTU(l netlink.Link, mtu int) error {
	if l.Attrs().MTU == mtu {
		return nil
	}
	if err := netlink.LinkSetMTU(l, mtu); err != nil {
		return fmt.Errorf("ip link set %s mtu %d: %w", l.Attrs().Name, mtu, err)
	}
	return nil
}

// errNoUnderlay: no interface holds the VTEP address.
var errNoUnderlay = errors.New("no interface holds the VTEP address")

// UnderlayIndex is the ifindex of the interface that holds addr (the
// VTEP address): one dump of the namespace's addresses, however many VM
// interfaces the host has, retried if the kernel interrupts it.
//
// Equivalent to: ip -o -4 addr show to ADDR.
func UnderlayIndex(addr netip.Addr) (int, error) {
	addrs, err := retryDump(func() ([]netlink.Addr, error) { return netlink.AddrList(nil, netlink.FAMILY_V4) })
	if err != nil {
		return 0, fmt.Errorf("list addresses: %w", err)
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP.To4()); ok && ip == addr {
			return a.LinkIndex, nil
		}
	}
	return 0, fmt.Errorf("%w (%s)", errNoUnderlay, addr)
}

// underlayLink is the interface that holds addr.
func underlayLink(addr netip.Addr) (netlink.Link, error) {
	i, err := UnderlayIndex(addr)
	if err != nil {
		return nil, err
	}
	return netlink.LinkByIndex(i)
}

// encapLink is the ifindex the programs encapsulate out of (encap.h):
// the interface that holds the VTEP address when packets to other VTEPs
// can leave by it. 0 when the address is on a loopback or dummy device
// (a routed host's VTEP, reached over several uplinks) or on none: then
// the VXLAN device encapsulates everything, as it does for whatever the
// programs cannot send themselves. An error says the kernel could not be
// asked (a failed dump, the interface gone meanwhile): nothing is known.
func encapLink(vtep netip.Addr) (int, error) { return encapIndex(underlayLink(vtep)) }

// encapIndex is encapLink of underlayLink's answer.
func encapIndex(l netlink.Link, err error) (int, error) {
	if errors.Is(err, errNoUnderlay) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if l.Attrs().Flags&net.FlagLoopback != 0 || l.Type() == "dummy" {
		return 0, nil
	}
	return l.Attrs().Index, nil
}

// forwardingPath is net.ipv4.conf.DEV.forwarding.
func forwardingPath(dev string) string {
	return filepath.Join("/proc/sys/net/ipv4/conf", dev, "forwarding")
}

// setForwarding turns IPv4 forwarding on or off for the VXLAN device. On
// while the programs encapsulate: the kernel's route lookup for them
// (bpf_fib_lookup, encap.h) answers only for a device that forwards. The
// device hands nothing to the host's stack (tunnel_ingress redirects or
// drops every packet), so nothing is forwarded that was not before.
// Writing net.ipv4.conf.all.forwarding resets it, as for every device;
// the programs then send through the device (counter encap_device) until
// KeepForwarding turns it on again.
func setForwarding(dev string, on bool) error {
	v := []byte("0")
	if on {
		v = []byte("1")
	}
	if err := os.WriteFile(forwardingPath(dev), v, 0o644); err != nil {
		return fmt.Errorf("set forwarding for %s: %w", dev, err)
	}
	return nil
}

// KeepForwarding turns the VXLAN device's forwarding back on if the
// programs encapsulate and something turned it off (a write of
// net.ipv4.conf.all.forwarding, an operator), and says whether it had
// to. Until then their route lookups fail and every packet goes through
// the device. hostd calls it every second: one read of /proc.
func (d *Datapath) KeepForwarding() (bool, error) {
	if d.encapIdx == 0 {
		return false, nil
	}
	b, err := os.ReadFile(forwardingPath(d.cfg.Device))
	if err != nil {
		return false, fmt.Errorf("read forwarding for %s: %w", d.cfg.Device, err)
	}
	if strings.TrimSpace(string(b)) == "1" {
		return false, nil
	}
	return true, setForwarding(d.cfg.Device, true)
}

// Underlay is what FollowUnderlay found of the interface that holds the
// VTEP address.
type Underlay struct {
	// From and To are the ifindex the programs encapsulated out of
	// before and after (0: the VXLAN device encapsulates).
	From, To int
	// MTU is the interface's; 0 when no interface holds the address or
	// it could not be read.
	MTU int
}

// FollowUnderlay reads the interface that holds the VTEP address again,
// for hostd to follow its MTU, and, when the interface the programs
// encapsulate out of (encapLink) changed, tells the running programs and
// sets the VXLAN device's forwarding to match: an underlay interface
// replaced (a bond or a VLAN device recreated) or the VTEP address moved
// to another interface has a new ifindex, and until then every packet
// the programs would send goes through the device, its route leading out
// of an interface they do not know (encap.h). When the interface cannot
// be read, nothing changes. With KernelEncap the programs follow nothing.
// hostd calls it every second: a dump of the namespace's IPv4 addresses
// and a read of one interface.
func (d *Datapath) FollowUnderlay() (Underlay, error) {
	l, err := underlayLink(d.cfg.VTEP)
	u := Underlay{From: d.encapIdx, To: d.encapIdx}
	if err == nil {
		u.MTU = l.Attrs().MTU
	}
	if d.cfg.KernelEncap {
		return u, nil
	}
	to, err := encapIndex(l, err)
	if err != nil || to == u.From {
		return u, err
	}
	if err := d.objs.CfgUnderlayIfindex.Set(uint32(to)); err != nil {
		return u, fmt.Errorf("tell the programs the underlay's ifindex %d: %w", to, err)
	}
	d.encapIdx, u.To = to, to
	// The kept routes name the old interface.
	return u, errors.Join(d.RoutesChanged(), setForwarding(d.cfg.Device, to != 0))
}

// RoutesChanged tells the running programs that the host's routes
// changed: the route each keeps per VTEP (encap.h's encap_routes) is
// looked up again at its next packet. Without it a kept route is used
// for up to Config.RouteKeep. hostd calls it on route and interface
// messages; it may be called from any goroutine. Two calls at once may
// leave the generation they stored in either order: the programs need a
// value they have not seen, not a larger one.
func (d *Datapath) RoutesChanged() error {
	if err := d.objs.CfgRouteGen.Set(d.routeGen.Add(1)); err != nil {
		return fmt.Errorf("tell the programs the routes changed: %w", err)
	}
	return nil
}

// keptRoutes is cfg_route_keep_ns: Config.RouteKeep, or 0 (nothing
// kept) when it is negative or the kernel is PREEMPT_RT. The kept routes
// and the lookup's scratch are per CPU with one writer, the program on
// that CPU, because a tc program cannot be preempted there; on
// PREEMPT_RT it can, by another tc program on the same CPU, which could
// leave one VTEP's next hop kept under another's name.
func (d *Datapath) keptRoutes() uint64 {
	if d.cfg.RouteKeep < 0 {
		return 0
	}
	if b, err := os.ReadFile("/sys/kernel/realtime"); err == nil && strings.TrimSpace(string(b)) == "1" {
		d.log.Warn("a PREEMPT_RT kernel: the programs keep no route lookups (every encapsulated packet is looked up)")
		return 0
	}
	return uint64(d.cfg.RouteKeep)
}

// localPortRange is net.ipv4.ip_local_port_range, which the VXLAN device
// draws its UDP source ports from and so do the programs (encap.h); the
// kernel's default if it cannot be read.
func localPortRange() (lo, hi uint32) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if _, err := fmt.Sscan(string(b), &lo, &hi); err == nil && lo < hi {
			return lo, hi
		}
	}
	return 32768, 60999
}

// IsTap reports whether a link is a tap, the interface a hypervisor
// gives a guest (QEMU -netdev tap, libvirt <interface type='ethernet'>),
// rather than the host side of a veth. The kernel says so (link kind
// "tun", IFLA_TUN_TYPE tap): a port's interface type is read, never
// configured.
func IsTap(l netlink.Link) bool {
	t, ok := l.(*netlink.Tuntap)
	return ok && t.Mode == netlink.TUNTAP_MODE_TAP
}

// CreateTap makes a persistent tap for a hypervisor to open, tied to its
// port by alias, its MTU raised as every VM interface's host side is,
// and up. The sandbox and the tests use it; a hypervisor's own tap
// (libvirt's vnetN) is bound just the same once its alias is set.
//
// Equivalent to:
//
//	ip tuntap add dev NAME mode tap vnet_hdr
//	ip link set NAME alias courier:PORT mtu 9000 up
func CreateTap(name, alias string) (int, error) {
	t := &netlink.Tuntap{LinkAttrs: netlink.LinkAttrs{Name: name}, Mode: netlink.TUNTAP_MODE_TAP,
		Flags: netlink.TUNTAP_NO_PI | netlink.TUNTAP_VNET_HDR}
	if err := netlink.LinkAdd(t); err != nil {
		return 0, fmt.Errorf("ip tuntap add dev %s mode tap: %w", name, err)
	}
	// netlink.LinkAdd keeps the tap's file descriptors open for the
	// caller; a hypervisor opens the device itself.
	for _, f := range t.Fds {
		f.Close()
	}
	l, err := netlink.LinkByName(name)
	if err != nil {
		return 0, err
	}
	steps := []error{netlink.LinkSetMTU(l, HostSideMTU), netlink.LinkSetUp(l)}
	if alias != "" {
		steps = append(steps, netlink.LinkSetAlias(l, alias))
	}
	if err := errors.Join(steps...); err != nil {
		netlink.LinkDel(l)
		return 0, fmt.Errorf("configure tap %s: %w", name, err)
	}
	return l.Attrs().Index, nil
}

// VMPort describes a VM's interface, for CreateVMPort.
type VMPort struct {
	HostName string // host side of the veth, in the current namespace
	NS       netns.NsHandle
	VMName   string // inside the VM (e.g. eth0)
	MAC      net.HardwareAddr
	Addr     netip.Prefix // the VM's IP with its vxnet's prefix length
	Gateway  netip.Addr
	MTU      int
	Alias    string // "courier:PORT" ties the interface to its port
}

// AliasPrefix marks a host-side interface as a Courier port, as OVS's
// iface-id does: the alias is "courier:" followed by the port's name.
const AliasPrefix = "courier:"

// CreateVMPort makes a veth pair whose peer lives in the VM's namespace,
// configured with the port's MAC, address, default route and MTU. The
// sandbox and the tests use it to play VMs.
//
// Equivalent to:
//
//	ip link add HOST type veth peer name VM netns NS
//	ip link set HOST alias courier:PORT mtu MTU up
//	ip -n NS link set VM address MAC mtu MTU up
//	ip -n NS addr add ADDR dev VM; ip -n NS route add default via GW
func CreateVMPort(p VMPort) (int, error) {
	if p.VMName == "" {
		p.VMName = "eth0"
	}
	tmp := "cvt" + p.HostName
	if len(tmp) > 15 {
		tmp = tmp[:15]
	}
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: p.HostName, MTU: p.MTU}, PeerName: tmp}
	if err := netlink.LinkAdd(veth); err != nil {
		return 0, fmt.Errorf("ip link add %s type veth: %w", p.HostName, err)
	}
	host, err := netlink.LinkByName(p.HostName)
	if err != nil {
		return 0, err
	}
	peer, err := netlink.LinkByName(tmp)
	if err != nil {
		netlink.LinkDel(host)
		return 0, err
	}
	fail := func(err error) (int, error) {
		netlink.LinkDel(host)
		return 0, err
	}
	if p.Alias != "" {
		if err := netlink.LinkSetAlias(host, p.Alias); err != nil {
			return fail(err)
		}
	}
	if err := netlink.LinkSetNsFd(peer, int(p.NS)); err != nil {
		return fail(fmt.Errorf("move %s into the VM namespace: %w", tmp, err))
	}
	h, err := netlink.NewHandleAt(p.NS)
	if err != nil {
		return fail(err)
	}
	defer h.Close()
	vm, err := h.LinkByName(tmp)
	if err != nil {
		return fail(err)
	}
	steps := []error{h.LinkSetName(vm, p.VMName)}
	if vm, err = h.LinkByName(p.VMName); err != nil {
		return fail(err)
	}
	if p.MAC != nil {
		steps = append(steps, h.LinkSetHardwareAddr(vm, p.MAC))
	}
	steps = append(steps, h.LinkSetMTU(vm, p.MTU), h.LinkSetUp(vm))
	if lo, err := h.LinkByName("lo"); err == nil {
		steps = append(steps, h.LinkSetUp(lo))
	}
	if p.Addr.IsValid() {
		steps = append(steps, h.AddrAdd(vm, &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr.Addr().AsSlice(),
			Mask: net.CIDRMask(p.Addr.Bits(), 32)}}))
	}
	steps = append(steps, netlink.LinkSetUp(host))
	if err := errors.Join(steps...); err != nil {
		return fail(fmt.Errorf("configure VM interface: %w", err))
	}
	// A VM without an address (a port whose addresses are unknown) gets
	// no route: it configures itself.
	if p.Gateway.IsValid() && p.Addr.IsValid() {
		if err := h.RouteAdd(&netlink.Route{LinkIndex: vm.Attrs().Index, Gw: p.Gateway.AsSlice()}); err != nil {
			return fail(fmt.Errorf("default route via %s: %w", p.Gateway, err))
		}
	}
	return host.Attrs().Index, nil
}
