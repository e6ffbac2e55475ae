package lab

import (
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Internet is a namespace standing for the internet: one address on a
// bridge that every gateway's uplink joins, and a multipath (ECMP) route
// to the public addresses through all of them, hashed on L4 ports as an
// upstream router would.
type Internet struct {
	NS   string
	Addr netip.Prefix // its own address, 198.51.100.10/24 in the sandbox
	// Uplinks: each gateway's address on the shared link, by gateway
	Uplinks map[string]netip.Addr
}

// UplinkName is a gateway's interface facing the internet.
const UplinkName = "up0"

// AddInternet creates namespace <prefix>internet with addr, links each
// gateway to it (the gateway's side is UplinkName, holding the i-th
// address of addr's subnet) and routes public through all of them.
//
// Equivalent to: ip netns add <prefix>internet; ip link add br0 type
// bridge; for each gateway, ip link add i-GW type veth peer up0 netns GW
// ...; ip route add PUBLIC nexthop via GW1 nexthop via GW2 ...
func (l *Lab) AddInternet(addr, public netip.Prefix, gateways []*Host) (*Internet, error) {
	in := &Internet{NS: l.Prefix + "internet", Addr: addr, Uplinks: map[string]netip.Addr{}}
	if err := NewNS(in.NS); err != nil {
		return nil, err
	}
	mask := net.CIDRMask(addr.Bits(), 32)
	err := Do(in.NS, func() error {
		os.WriteFile("/proc/sys/net/ipv4/fib_multipath_hash_policy", []byte("1"), 0o644)
		// A gateway whose link is down leaves the multipath route, as
		// an upstream router's BFD would take it out.
		for _, c := range []string{"all", "default"} {
			os.WriteFile("/proc/sys/net/ipv4/conf/"+c+"/ignore_routes_with_linkdown", []byte("1"), 0o644)
		}
		lo, _ := netlink.LinkByName("lo")
		netlink.LinkSetUp(lo)
		if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br0"}}); err != nil {
			return err
		}
		br, _ := netlink.LinkByName("br0")
		if err := netlink.AddrAdd(br, &netlink.Addr{IPNet: &net.IPNet{IP: addr.Addr().AsSlice(), Mask: mask}}); err != nil {
			return err
		}
		return netlink.LinkSetUp(br)
	})
	if err != nil {
		return nil, fmt.Errorf("internet namespace: %w", err)
	}
	var hops []*netlink.NexthopInfo
	a := addr.Masked().Addr()
	for _, g := range gateways {
		a = a.Next()
		in.Uplinks[g.Name] = a
		if err := l.uplink(in, g, a, mask); err != nil {
			return nil, fmt.Errorf("gateway %s uplink: %w", g.Name, err)
		}
		hops = append(hops, &netlink.NexthopInfo{Gw: a.AsSlice()})
	}
	err = Do(in.NS, func() error {
		br, _ := netlink.LinkByName("br0")
		for _, h := range hops {
			h.LinkIndex = br.Attrs().Index
		}
		dst := &net.IPNet{IP: public.Addr().AsSlice(), Mask: net.CIDRMask(public.Bits(), 32)}
		return netlink.RouteReplace(&netlink.Route{Dst: dst, MultiPath: hops})
	})
	if err != nil {
		return nil, fmt.Errorf("internet route to %s: %w", public, err)
	}
	return in, nil
}

// uplink links gateway g to the internet's bridge, g's side holding a.
func (l *Lab) uplink(in *Internet, g *Host, a netip.Addr, mask net.IPMask) error {
	side := "i-" + g.Name
	err := Do(in.NS, func() error {
		if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: side, MTU: 1500}, PeerName: UplinkName}); err != nil {
			return err
		}
		s, _ := netlink.LinkByName(side)
		br, _ := netlink.LinkByName("br0")
		if err := netlink.LinkSetMaster(s, br); err != nil {
			return err
		}
		if err := netlink.LinkSetUp(s); err != nil {
			return err
		}
		peer, _ := netlink.LinkByName(UplinkName)
		gns, err := netns.GetFromName(g.NS)
		if err != nil {
			return err
		}
		defer gns.Close()
		return netlink.LinkSetNsFd(peer, int(gns))
	})
	if err != nil {
		return err
	}
	return Do(g.NS, func() error {
		up, err := netlink.LinkByName(UplinkName)
		if err != nil {
			return err
		}
		if err := netlink.AddrAdd(up, &netlink.Addr{IPNet: &net.IPNet{IP: a.AsSlice(), Mask: mask}}); err != nil {
			return err
		}
		return netlink.LinkSetUp(up)
	})
}

// GatewayDown takes a gateway's links down, its uplink and its underlay,
// as a dead machine's would be.
//
// Equivalent to: ip -n GW link set up0 down; ip -n GW link set eth0 down
func (l *Lab) GatewayDown(g *Host) error {
	return Do(g.NS, func() error {
		for _, n := range []string{UplinkName, "eth0"} {
			lk, err := netlink.LinkByName(n)
			if err != nil {
				return err
			}
			if err := netlink.LinkSetDown(lk); err != nil {
				return fmt.Errorf("ip link set %s down: %w", n, err)
			}
		}
		return nil
	})
}
