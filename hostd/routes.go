package hostd

import (
	"context"
	"log/slog"
	"time"

	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/courier-sdn/courier/dataplane"
)

// The programs encapsulate out of the underlay interface themselves
// (dataplane/bpf/encap.h). What that needs of the host is kept here.
//
// The programs keep each VTEP's route lookup (dataplane/bpf/encap.h) for
// up to a second (dataplane.Config.RouteKeep). hostd tells them at once
// when the host's routing may have changed (Datapath.RoutesChanged): on
// any message of the netlink groups below, unparsed (a route the netlink
// library cannot parse, an MPLS or seg6 one, still tells). A burst is
// told once, then once more, and at most every routeTellEvery.

// routingGroups are the netlink groups whose messages may change a
// VTEP's route (an IPv4 one: an IPv6 next hop comes in the IPv4 route's
// message): IPv4 routes (an address comes and goes with its local and
// prefix routes), IPv4 policy rules, next-hop objects, and interfaces,
// since the kernel removes a deleted or downed interface's IPv4 routes
// without a route message.
var routingGroups = []uint{unix.RTNLGRP_LINK, unix.RTNLGRP_IPV4_ROUTE, unix.RTNLGRP_IPV4_RULE, unix.RTNLGRP_NEXTHOP}

// routeTellEvery spaces the tellings: under route churn (a BGP session
// flapping) each telling makes every CPU look up every VTEP it sends to
// again; a few milliseconds more of a kept route is nothing beside it.
// Each telling is followed by another this much later: the kernel sends
// an interface's message before it removes the interface's routes, and a
// packet looked up in between would keep a route about to go.
const routeTellEvery = 10 * time.Millisecond

// routingBuffer is the watch's socket buffer: it carries every interface
// message too (VM ports come and go in hundreds).
const routingBuffer = 1 << 20

// routeWatch is what watchRouting needs: where to watch, whom to tell.
type routeWatch struct {
	ns  netns.NsHandle // netns.None(): the caller's
	log *slog.Logger
	// changed tells the programs; watchRouting calls it from one
	// goroutine (Datapath.FollowUnderlay calls it too).
	changed func() error
	told    func() // counts a telling
}

// watchRouting tells w.changed of routing changes until ctx ends. A
// subscription lost (its buffer overflowed) and reopened tells too:
// messages were lost.
func watchRouting(ctx context.Context, w routeWatch) {
	kick := make(chan struct{}, 1)
	go resubscribe(ctx, w.log, "routing change", 1,
		func(ch chan struct{}, done chan struct{}) error { return subscribeRouting(w.ns, ch, done, w.log) },
		func(first bool) bool {
			if !first {
				w.log.Warn("routing watch was lost (its buffer overflowed); reopened, the programs look every route up again")
			}
			poke(kick)
			return true
		},
		func(struct{}) { poke(kick) })
	var warned time.Time
	tell := func() {
		w.told()
		if err := w.changed(); err != nil && time.Since(warned) > 10*time.Second {
			warned = time.Now()
			w.log.Warn("tell the programs the routes changed: they keep a VTEP's old route for up to a second", "err", err)
		}
	}
	pause := func() bool {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(routeTellEvery):
			return true
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-kick:
		}
		tell()
		if !pause() {
			return
		}
		tell() // the trailing one (routeTellEvery)
		if !pause() {
			return
		}
	}
}

// subscribeRouting opens a netlink socket on routingGroups in ns and
// sends on ch for each batch of messages it reads, until done is closed
// or the socket fails (its buffer overflowed), when ch is closed.
func subscribeRouting(ns netns.NsHandle, ch chan struct{}, done chan struct{}, log *slog.Logger) error {
	s, err := nl.SubscribeAt(ns, netns.None(), unix.NETLINK_ROUTE, routingGroups...)
	if err != nil {
		return err
	}
	if err := s.SetReceiveBufferSize(routingBuffer, false); err != nil {
		log.Debug("routing watch: its buffer stays the default", "err", err)
	}
	go func() { <-done; s.Close() }()
	go func() {
		defer close(ch)
		for {
			if _, _, err := s.Receive(); err != nil {
				select {
				case <-done: // closed: not an error
				default:
					log.Debug("routing watch", "err", err)
				}
				return
			}
			select {
			case ch <- struct{}{}:
			case <-done:
				return
			}
		}
	}()
	return nil
}

// poke asks watchRouting to tell the programs, unless a telling is
// pending already: it comes after this message.
func poke(kick chan struct{}) {
	select {
	case kick <- struct{}{}:
	default:
	}
}

// keepUnderlay keeps the programs' encapsulation right every second,
// whether or not the southbound session is up: the VXLAN device's
// forwarding turned on again, the interface holding the VTEP followed.
// Until each is done the device encapsulates every packet.
func (d *Daemon) keepUnderlay(ctx context.Context, limit *logLimiter) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		d.keepForwarding(limit)
		d.followMTU(d.followUnderlay(limit), limit)
	}
}

// followMTU reads the underlay's MTU again: an operator may raise it
// (jumbo frames) or lower it without restarting hostd. A change sets the
// VXLAN device's MTU (what the programs check a GSO packet's segments
// against; tried again each second while the device refuses), and VMs'
// (vmMTU), applied at once: the ports' programs allow the new MTU (a VM
// sending more than a lowered one is told so by ICMP, and lowers its
// path MTU), DHCP offers it from the next lease, a gateway uses it.
// VMs' follows even while the device refuses: a lowered underlay must
// not go on being offered, and with a raised one the device's path
// still carries what does not fit the device. An underlay not found
// (under 0) changes nothing.
func (d *Daemon) followMTU(under int, limit *logLimiter) {
	if under == 0 || under == d.underMTU {
		return
	}
	if err := d.dp.SetVXLANMTU(under - dataplane.VXLANOverhead); err == nil {
		d.underMTU = under
	} else if limit.allow("vxlan-mtu") {
		d.log.Warn("the underlay's MTU changed; the VXLAN device does not follow", "underlay_mtu", under, "err", err)
	}
	mtu, low := vmMTU(under)
	if low && limit.allow("vm-mtu") {
		d.log.Warn("the underlay's MTU leaves VMs less than 576 bytes: they get 576, and the underlay fragments what they send",
			"underlay_mtu", under)
	}
	old := d.mtu.Swap(mtu)
	if old == mtu {
		return
	}
	d.m.vmMTU.Set(float64(mtu))
	if old == 0 {
		d.log.Info("VMs' MTU, from the underlay's", "mtu", mtu, "underlay_mtu", under)
	} else {
		d.log.Info("the underlay's MTU changed: VMs are allowed, and offered, a new MTU", "mtu", mtu, "was", old, "underlay_mtu", under)
	}
	d.kick()
}

// vmMTU is the MTU VMs get over an underlay of MTU under: under less
// VXLAN's overhead, at most what a VM interface's host side takes
// (dataplane.HostSideMTU: a larger frame would be dropped there unseen,
// with no ICMP; a loopback's 65,536, a routed host's VTEP, gives 9,000),
// and at least 576, the least an IPv4 host must take (low: the underlay
// fragments what VMs send; a VM left at a larger MTU would be worse).
func vmMTU(under int) (mtu int32, low bool) {
	m := under - dataplane.VXLANOverhead
	return int32(min(max(m, 576), dataplane.HostSideMTU)), m < 576
}

// keepForwarding turns the VXLAN device's forwarding back on when
// something turned it off, which sent every packet through the device.
func (d *Daemon) keepForwarding(limit *logLimiter) {
	switch again, err := d.dp.KeepForwarding(); {
	case err != nil && limit.allow("forwarding"):
		d.log.Warn("the VXLAN device's forwarding: the programs cannot encapsulate without it", "err", err)
	case again:
		d.m.forwardingResets.Inc()
		d.log.Warn("the VXLAN device's forwarding was turned off (a write of net.ipv4.conf.all.forwarding resets it): "+
			"turned it on again; meanwhile the device encapsulated every packet", "device", d.cfg.Device)
	}
}

// followUnderlay tells the programs which interface to encapsulate out
// of when the underlay interface was replaced (Datapath.FollowUnderlay),
// and returns the underlay's MTU (0: not found).
func (d *Daemon) followUnderlay(limit *logLimiter) (mtu int) {
	u, err := d.dp.FollowUnderlay()
	if u.From != u.To {
		d.m.underlayChanges.Inc()
		d.log.Info("the underlay interface changed; the programs encapsulate out of the new one (0: the VXLAN device encapsulates)",
			"to_ifindex", u.To, "from_ifindex", u.From)
	}
	if err != nil && limit.allow("underlay") {
		d.log.Warn("follow the underlay interface: meanwhile the VXLAN device encapsulates what the programs cannot", "err", err)
	}
	return u.MTU
}
