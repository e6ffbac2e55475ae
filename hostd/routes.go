package hostd

import (
	"context"
	"log/slog"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// The programs keep each VTEP's route lookup (dataplane/bpf/encap.h) for
// up to a second. hostd tells them at once when the host's routing may
// have changed (Datapath.RoutesChanged): on every route message, IPv4 or
// IPv6 (an IPv4 route may have an IPv6 next hop; an IPv4 address comes
// and goes with its local and prefix routes), and on every interface
// message, since the kernel removes a deleted or downed interface's IPv4
// routes without a route message. A burst of messages is told once.

// routeWatch is what watchRouting needs: where to watch, whom to tell.
type routeWatch struct {
	ns  netns.NsHandle // netns.None(): the caller's
	log *slog.Logger
	// changed tells the programs; it runs on one goroutine.
	changed func() error
	told    func() // counts a telling
}

// watchRouting tells w.changed of route changes until ctx ends, and of
// whatever is sent on kick (the interface watch's messages). A
// subscription lost and reopened tells too: messages were lost.
func watchRouting(ctx context.Context, w routeWatch, kick chan struct{}) {
	tell := func() { poke(kick) }
	go resubscribe(ctx, w.log, "route", 256,
		func(ch chan netlink.RouteUpdate, done chan struct{}) error {
			return netlink.RouteSubscribeWithOptions(ch, done, netlink.RouteSubscribeOptions{Namespace: &w.ns,
				ErrorCallback: func(err error) { w.log.Debug("route watch", "err", err) }})
		},
		func(bool) bool { tell(); return true },
		func(netlink.RouteUpdate) { tell() })
	var warned time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-kick:
		}
		w.told()
		if err := w.changed(); err != nil && time.Since(warned) > 10*time.Second {
			warned = time.Now()
			w.log.Warn("tell the programs the routes changed: they keep a VTEP's old route for up to a second", "err", err)
		}
	}
}

// poke asks watchRouting to tell the programs, unless a telling is
// pending already: it comes after this message.
func poke(kick chan struct{}) {
	select {
	case kick <- struct{}{}:
	default:
	}
}
