package lab

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sort"
	"syscall"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Internet is a namespace standing for the internet as a gateway's
// upstream router sees it: its own address on its loopback, one
// point-to-point link to each gateway, and a multipath (ECMP) route to
// the public addresses with a next hop on each link, hashed on L4 ports.
//
// Point to point, not one bridge, so that a gateway's death is what it
// is upstream: its link goes down, its next hop leaves the route
// (ignore_routes_with_linkdown; a real router's BFD does the same), and
// the flows hashed to it move to the others. Behind a bridge the next
// hop stayed, the bridge flooded the frames for the dead gateway's MAC
// to the survivors, and a survivor that took them hid the loss.
type Internet struct {
	NS   string
	Addr netip.Prefix // its own address, 198.51.100.10/24 in the sandbox
	// Uplinks: each gateway's address on its link, by gateway
	Uplinks map[string]netip.Addr
}

// UplinkName is a gateway's interface facing the internet.
const UplinkName = "up0"

// InternetNS is the namespace AddInternet creates.
func (l *Lab) InternetNS() string { return l.Prefix + "internet" }

// internetSide is the internet's end of gateway g's link.
func internetSide(g string) string { return LinkName("i-", g) }

// UplinkEnds are both ends of gateway g's link to the internet: its
// UplinkName and the internet's side.
func (l *Lab) UplinkEnds(g *Host) []LinkEnd {
	return []LinkEnd{{NS: g.NS, Name: UplinkName}, {NS: l.InternetNS(), Name: internetSide(g.Name)}}
}

// AddInternet creates namespace <prefix>internet holding addr, links
// each gateway to it point to point (the gateway's side is UplinkName,
// holding the i-th address of addr's subnet) and routes public through
// all of them. A gateway reaches addr's subnet through its link.
//
// Every route but the multipath one comes from a peer address, so the
// kernel puts it back when a link comes up again (it flushes the routes
// through a link that goes down). The multipath route keeps a next hop
// whose link is down, marked dead, and revives it when the link comes
// back; but once every next hop is dead the kernel deletes the route, so
// whoever brings a gateway's link back calls RouteInternet, as a router
// relearns a route when a BGP session comes back.
//
// Equivalent to:
//
//	ip netns add PREFIXinternet; ip -n PREFIXinternet addr add ADDR/32 dev lo
//	for the i-th gateway GW, holding address Ai:
//	  ip -n PREFIXinternet link add i-GW type veth peer up0 netns GW
//	  ip -n PREFIXinternet addr add ADDR/32 peer Ai/32 dev i-GW
//	  ip -n GW addr add Ai/32 peer SUBNET dev up0
//	ip -n PREFIXinternet route add PUBLIC nexthop via A1 dev i-GW1 nexthop via A2 dev i-GW2 ...
func (l *Lab) AddInternet(addr, public netip.Prefix, gateways []*Host) (*Internet, error) {
	in := &Internet{NS: l.InternetNS(), Addr: addr, Uplinks: map[string]netip.Addr{}}
	if err := NewNS(in.NS); err != nil {
		return nil, err
	}
	err := Do(in.NS, func() error {
		os.WriteFile("/proc/sys/net/ipv4/fib_multipath_hash_policy", []byte("1"), 0o644)
		// The upstream routes: what a gateway sends to one of the
		// network's own addresses (a VPC reaching another's EIP through
		// its SNAT) goes back to the gateways.
		os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644)
		// A gateway whose link is down leaves the multipath route, as
		// an upstream router's BFD would take it out ("default" for the
		// links made below).
		for _, c := range []string{"all", "default"} {
			os.WriteFile("/proc/sys/net/ipv4/conf/"+c+"/ignore_routes_with_linkdown", []byte("1"), 0o644)
		}
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		if err := netlink.LinkSetUp(lo); err != nil {
			return err
		}
		return netlink.AddrAdd(lo, &netlink.Addr{IPNet: host32(addr.Addr())})
	})
	if err != nil {
		return nil, fmt.Errorf("internet namespace: %w", err)
	}
	a := addr.Masked().Addr()
	for _, g := range gateways {
		a = a.Next()
		in.Uplinks[g.Name] = a
		if err := l.uplink(in, g, a); err != nil {
			return nil, fmt.Errorf("gateway %s uplink: %w", g.Name, err)
		}
	}
	if err := l.RouteInternet(public, in.Uplinks); err != nil {
		return nil, err
	}
	return in, nil
}

// RouteInternet sets the internet's multipath route to public through
// every gateway of uplinks (name to its address) whose link is up on
// the internet's side, and removes it when there is none.
//
// Equivalent to: ip -n PREFIXinternet route replace PUBLIC nexthop via
// A1 dev i-GW1 nexthop via A2 dev i-GW2 ... (or route del PUBLIC)
func (l *Lab) RouteInternet(public netip.Prefix, uplinks map[string]netip.Addr) error {
	names := make([]string, 0, len(uplinks))
	for g := range uplinks {
		names = append(names, g)
	}
	sort.Strings(names)
	dst := &net.IPNet{IP: public.Addr().AsSlice(), Mask: net.CIDRMask(public.Bits(), 32)}
	err := Do(l.InternetNS(), func() error {
		var hops []*netlink.NexthopInfo
		for _, g := range names {
			lk, err := netlink.LinkByName(internetSide(g))
			if err != nil {
				return fmt.Errorf("gateway %s's link: %w", g, err)
			}
			if lk.Attrs().Flags&net.FlagUp != 0 {
				hops = append(hops, &netlink.NexthopInfo{LinkIndex: lk.Attrs().Index, Gw: uplinks[g].AsSlice()})
			}
		}
		if len(hops) == 0 {
			err := netlink.RouteDel(&netlink.Route{Dst: dst})
			if err != nil && !errors.Is(err, syscall.ESRCH) {
				return err
			}
			return nil
		}
		return netlink.RouteReplace(&netlink.Route{Dst: dst, MultiPath: hops})
	})
	if err != nil {
		return fmt.Errorf("internet route to %s: %w", public, err)
	}
	return nil
}

func host32(a netip.Addr) *net.IPNet {
	return &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(32, 32)}
}

// uplink links gateway g to the internet, g's side holding a.
func (l *Lab) uplink(in *Internet, g *Host, a netip.Addr) error {
	side := internetSide(g.Name)
	err := Do(in.NS, func() error {
		// An upstream's usual MTU, 50 bytes more than the VMs': the
		// gateways cut what is longer than the overlay carries, or answer
		// it with fragmentation needed (DEVELOPERS.md, "EIPs and
		// stateless gateways").
		if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: side, MTU: 1500}, PeerName: UplinkName}); err != nil {
			return err
		}
		s, err := netlink.LinkByName(side)
		if err != nil {
			return err
		}
		if err := netlink.LinkSetUp(s); err != nil {
			return err
		}
		if err := netlink.AddrAdd(s, &netlink.Addr{IPNet: host32(in.Addr.Addr()), Peer: host32(a)}); err != nil {
			return err
		}
		peer, err := netlink.LinkByName(UplinkName)
		if err != nil {
			return err
		}
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
		subnet := &net.IPNet{IP: in.Addr.Masked().Addr().AsSlice(), Mask: net.CIDRMask(in.Addr.Bits(), 32)}
		if err := netlink.AddrAdd(up, &netlink.Addr{IPNet: host32(a), Peer: subnet}); err != nil {
			return err
		}
		return netlink.LinkSetUp(up)
	})
}
