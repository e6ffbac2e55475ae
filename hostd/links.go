package hostd

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/courier-sdn/courier/dataplane"
)

// Interfaces come and go by netlink events. A subscription the kernel
// ends (its socket's buffer overflowed: hundreds of veths created at
// once) is reopened, and every interface read again, so that no change
// is lost and nothing reads a closed channel.

// linkEvent is an interface that appeared, changed or went; or, with
// resync, a subscription reopened: the list of interfaces is read again.
type linkEvent struct {
	attrs   netlink.LinkAttrs
	tap     bool // a hypervisor's tap, not a veth (dataplane.IsTap)
	present bool
	resync  bool
}

// linkBuffer is the subscription socket's receive buffer: room for a few
// thousand link messages before the kernel gives up on it.
const linkBuffer = 8 << 20

// linkWatch says where to watch: a namespace (netns.None(): the
// caller's) and the socket's buffer.
type linkWatch struct {
	ns     netns.NsHandle
	rcvbuf int
	queue  int // updates read from the socket, not yet taken
	log    *slog.Logger
	onLost func()
}

// watchLinks sends interface events to out until ctx ends. The first
// event is a resync. onLost is called each time the subscription is
// lost and reopened.
func watchLinks(ctx context.Context, w linkWatch, out chan<- linkEvent) {
	ns := w.ns
	resubscribe(ctx, w.log, "interface", w.queue,
		func(ch chan netlink.LinkUpdate, done chan struct{}) error {
			return netlink.LinkSubscribeWithOptions(ch, done, netlink.LinkSubscribeOptions{Namespace: &ns, ReceiveBufferSize: w.rcvbuf,
				ErrorCallback: watchError(ctx, w.log, "interface watch")})
		},
		func(first bool) bool {
			if !first {
				w.onLost()
				w.log.Warn("interface watch was lost; reopened, reading every interface again")
			}
			return sendCtx(ctx, out, linkEvent{resync: true})
		},
		func(u netlink.LinkUpdate) {
			if u.Link != nil {
				sendCtx(ctx, out, linkEvent{attrs: *u.Attrs(), tap: dataplane.IsTap(u.Link), present: u.Header.Type != unix.RTM_DELLINK})
			}
		})
}

// watchError is a netlink subscription's error callback: it logs while
// ctx lives. The library's receiving goroutine outlives the watch and
// reports the error of its closed socket after ctx ended; a test's
// logger panics when written after its test (TestUplinkAddressChange-
// IsPickedUp did, once in four runs of the package at once).
func watchError(ctx context.Context, log *slog.Logger, what string) func(error) {
	return func(err error) {
		if ctx.Err() == nil {
			log.Debug(what, "err", err)
		}
	}
}

// resubscribe keeps a netlink subscription open until ctx ends:
// subscribe opens it (updates on ch, a queue of queue, until done is
// closed), a failure to open is retried a second later, and a
// subscription the kernel ends is opened again. After each opening,
// opened (first: the first one) runs; it returns false to stop. Each
// update goes to handle.
func resubscribe[U any](ctx context.Context, log *slog.Logger, what string, queue int,
	subscribe func(ch chan U, done chan struct{}) error, opened func(first bool) bool, handle func(U)) {
	for first := true; ctx.Err() == nil; first = false {
		ch := make(chan U, queue)
		done := make(chan struct{})
		if err := subscribe(ch, done); err != nil {
			log.Error("watch "+what+"s; retrying", "err", err)
			close(done)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		if !opened(first) {
			close(done)
			return
		}
		for open := true; open; {
			select {
			case <-ctx.Done():
				close(done)
				return
			case u, ok := <-ch:
				if open = ok; ok {
					handle(u)
				}
			}
		}
		close(done)
	}
}

// sendCtx sends v on out unless ctx ends first.
func sendCtx[T any](ctx context.Context, out chan<- T, v T) bool {
	select {
	case out <- v:
		return true
	case <-ctx.Done():
		return false
	}
}

// onLink applies an interface event to the map of VM interfaces.
func (d *Daemon) onLink(e linkEvent) {
	if e.resync {
		d.scanLinks()
		return
	}
	d.link(&e.attrs, e.tap, e.present)
}

// scanLinks reads every interface's alias: VM interfaces carry
// "courier:PORT".
func (d *Daemon) scanLinks() {
	links, err := dataplane.ListLinksWith(d.nl)
	if err != nil {
		d.log.Error("list interfaces", "err", err)
		return
	}
	d.ifaces, d.byIndex, d.taps = map[string]int{}, map[int]string{}, map[int]bool{}
	for _, l := range links {
		d.link(l.Attrs(), dataplane.IsTap(l), true)
	}
}

// link records an interface: a VM interface (a veth's host side or a tap)
// carries its port's name in its alias.
func (d *Daemon) link(a *netlink.LinkAttrs, tap, present bool) {
	if old, ok := d.byIndex[a.Index]; ok {
		delete(d.byIndex, a.Index)
		delete(d.taps, a.Index)
		if d.ifaces[old] == a.Index {
			delete(d.ifaces, old)
		}
	}
	port, ok := strings.CutPrefix(a.Alias, dataplane.AliasPrefix)
	if !present || !ok || port == "" {
		return
	}
	d.ifaces[port] = a.Index
	d.byIndex[a.Index] = port
	if tap {
		d.taps[a.Index] = true
	}
}
