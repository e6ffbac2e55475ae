package hostd

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// A gateway's uplink address (the source of its ICMP errors) is read
// once per uplink interface and again only when an IPv4 address of the
// host changes on it: reading it on every gateway apply was a netlink
// address dump each time. Address changes come by a netlink
// subscription (watchAddrs), which, like the interface watch, starts
// again if the kernel ends it, and then forgets what it read.

// uplinkCache is the uplink's address as last read, by the uplink's
// interface index (a new interface of the same name is read anew).
type uplinkCache struct {
	index int // 0: nothing read
	addr  netip.Addr
	reads int // address dumps made, for tests
}

// get is the address of uplink l, read if it was not yet, or was
// forgotten since.
func (c *uplinkCache) get(l netlink.Link) netip.Addr {
	if i := l.Attrs().Index; c.index != i {
		c.reads++
		a, err := uplinkAddr(l)
		if err != nil {
			return a // read again next time
		}
		c.index, c.addr = i, a
	}
	return c.addr
}

// forget drops what was read if an address of interface index changed
// (0: any interface's, or changes may have been missed). It reports
// whether it dropped anything: whether the gateway must be applied
// again.
func (c *uplinkCache) forget(index int) bool {
	if c.index == 0 || (index != 0 && index != c.index) {
		return false
	}
	c.index = 0
	return true
}

// uplinkAddr is the uplink's first global IPv4 address, the source of
// the gateway's ICMP errors, or the invalid address if it has none.
func uplinkAddr(l netlink.Link) (netip.Addr, error) {
	addrs, err := netlink.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("addresses of %s: %w", l.Attrs().Name, err)
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP.To4()); ok && a.Scope == int(netlink.SCOPE_UNIVERSE) {
			return ip, nil
		}
	}
	return netip.Addr{}, nil
}

// watchAddrs sends the interface index of each IPv4 address change in
// namespace ns (netns.None(): the caller's) to out until ctx ends; 0
// first, and each time the subscription was lost and reopened.
func watchAddrs(ctx context.Context, ns netns.NsHandle, log *slog.Logger, out chan<- int) {
	resubscribe(ctx, log, "address", 64,
		func(ch chan netlink.AddrUpdate, done chan struct{}) error {
			return netlink.AddrSubscribeWithOptions(ch, done, netlink.AddrSubscribeOptions{Namespace: &ns,
				ErrorCallback: watchError(ctx, log, "address watch")})
		},
		func(first bool) bool {
			if !first {
				log.Warn("address watch was lost; reopened, reading the uplink's and the underlay NIC's addresses again")
			}
			return sendCtx(ctx, out, 0)
		},
		func(u netlink.AddrUpdate) {
			if u.LinkAddress.IP.To4() != nil {
				sendCtx(ctx, out, u.LinkIndex)
			}
		})
}
