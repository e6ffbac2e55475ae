package lab

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// PhysNS is the namespace AddPhys creates: a server of the data centre's
// own network (a database, an appliance), on the fabric beside the hosts.
func (l *Lab) PhysNS() string { return l.Prefix + "phys" }

// physSide is the fabric's end of the physical server's link.
const physSide = "u-phys"

// AddPhys creates namespace <prefix>phys with interface eth0 on the
// fabric bridge holding addr: a second subnet on the hosts' segment, as
// a data centre's server network shares their L2. It resolves what it
// reaches there by ARP (the hosts' static underlay neighbours are not
// its concern), so that the host serving an address is the one that
// answers for it.
//
// Equivalent to:
//
//	ip netns add PREFIXphys
//	ip -n PREFIXfabric link add u-phys type veth peer eth0 netns PREFIXphys
//	ip -n PREFIXfabric link set u-phys master br0 up
//	ip -n PREFIXphys addr add ADDR dev eth0; ip -n PREFIXphys link set eth0 up
func (l *Lab) AddPhys(addr netip.Prefix) error {
	ns := l.PhysNS()
	if err := NewNS(ns); err != nil {
		return err
	}
	err := Do(l.Fabric, func() error {
		if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: physSide, MTU: 1500}, PeerName: "eth0"}); err != nil {
			return err
		}
		fab, err := netlink.LinkByName(physSide)
		if err != nil {
			return err
		}
		br, err := netlink.LinkByName("br0")
		if err != nil {
			return err
		}
		if err := netlink.LinkSetMaster(fab, br); err != nil {
			return err
		}
		if err := netlink.LinkSetUp(fab); err != nil {
			return err
		}
		peer, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		pns, err := netns.GetFromName(ns)
		if err != nil {
			return err
		}
		defer pns.Close()
		return netlink.LinkSetNsFd(peer, int(pns))
	})
	if err != nil {
		return fmt.Errorf("physical server's link: %w", err)
	}
	return Do(ns, func() error {
		eth, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		if err := netlink.AddrAdd(eth, &netlink.Addr{IPNet: &net.IPNet{IP: addr.Addr().AsSlice(), Mask: net.CIDRMask(addr.Bits(), 32)}}); err != nil {
			return err
		}
		return netlink.LinkSetUp(eth)
	})
}
