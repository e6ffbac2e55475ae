package trace

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"

	"github.com/courier-sdn/courier/dataplane"
	"github.com/courier-sdn/courier/internal/lab"
	"github.com/courier-sdn/courier/pipeline"
)

// The live trace runs each chassis's real programs (dataplane.Tracer) on
// the packet, hop after hop: the sender's port program, then the tunnel
// program of each host the packet is sent to, for as long as those hosts'
// data planes are on this machine (all of them in the sandbox).

// Site is where a chassis's data plane can be traced from here: its pin
// root and its network namespace ("" for this one).
type Site struct {
	PinRoot string
	NetNS   string
}

// Sites finds chassis' data planes.
type Sites func(chassis string) (Site, bool)

// tellUnknown is TRF_TELL_UNKNOWN: the packet became a hub's word that
// its destination is unknown, on its way back to the sender.
var tellUnknown = traceFlag("tell_unknown")

// gbpIDMask is the identity's bits of the VXLAN GBP field (sg.h).
const gbpIDMask = 0xffff

func traceFlag(name string) uint32 {
	for _, f := range pipeline.TraceFlags {
		if f.Name == name {
			return f.Bit
		}
	}
	panic("no trace flag " + name)
}

// hopper carries a live trace from chassis to chassis.
type hopper struct {
	w     *world
	sites Sites
	tr    *Trace
}

func live(w *world, p *packet, sites Sites, first string) (*Trace, error) {
	h := &hopper{w: w, sites: sites, tr: &Trace{Mode: "live", Packet: p.summary()}}
	site, ok := sites(first)
	if !ok {
		return nil, fmt.Errorf("no data plane of chassis %s on this machine", first)
	}
	var ifindex int
	err := inNS(site.NetNS, func() (err error) {
		ifindex, err = portIfindex(w.inport.LogicalPort)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("chassis %s: %w", first, err)
	}
	res, t, err := h.run(first, site, func(t *dataplane.Tracer) (*dataplane.TraceResult, error) {
		return t.RunPort(ifindex, p.bytes())
	})
	if err != nil {
		return nil, err
	}
	hop := h.hop(first, t, site, res, string(pipeline.FromPort), w.inport.LogicalPort, 0)
	for n := 0; n < 6; n++ {
		last := res.Last()
		if last.Flags&tellUnknown != 0 {
			h.tr.Outcome, h.tr.Reason, h.tr.Chassis = Dropped, "hub_miss", hop.Chassis
			h.tr.Detail = fmt.Sprintf("dropped on hub %s: nobody has %s; the sender is told so", hop.Chassis, last.Addr)
			return h.tr, nil
		}
		if last.Verdict != 2 || !last.VTEP.IsValid() {
			h.finish(hop, last, site)
			return h.tr, nil
		}
		next := w.chassisAt(last.VTEP)
		nsite, ok := sites(next)
		if !ok {
			h.tr.Outcome, h.tr.Chassis = Left, next
			h.tr.Detail = fmt.Sprintf("sent to %s (%s), vni %d, whose data plane is not on this machine: trace it there", last.VTEP, orUnknown(next), last.VNI)
			return h.tr, nil
		}
		src, vni, gbp, pkt := t.VTEP, last.VNI, res.GBP, res.Packet
		res, t, err = h.run(next, nsite, func(t *dataplane.Tracer) (*dataplane.TraceResult, error) {
			return t.RunTunnelGBP(src, vni, gbp, pkt)
		})
		if err != nil {
			return nil, err
		}
		site = nsite
		hop = h.hop(next, t, site, res, string(pipeline.FromTunnel), src.String()+" ("+orUnknown(w.chassisAt(src))+")", vni)
		if id := gbp & gbpIDMask; id != 0 {
			hop.Identity = dataplane.IdentityString(id)
		}
	}
	h.tr.Outcome, h.tr.Detail = Dropped, "more than six hops"
	return h.tr, nil
}

// run loads chassis's trace programs and runs fn in its namespace.
func (h *hopper) run(chassis string, site Site, fn func(*dataplane.Tracer) (*dataplane.TraceResult, error)) (*dataplane.TraceResult, *dataplane.Tracer, error) {
	t, err := dataplane.OpenTracer(site.PinRoot, chassis)
	if err != nil {
		return nil, nil, err
	}
	defer t.Close()
	var res *dataplane.TraceResult
	err = inNS(site.NetNS, func() (err error) {
		res, err = fn(t)
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("chassis %s: %w", chassis, err)
	}
	return res, t, nil
}

func (h *hopper) hop(chassis string, t *dataplane.Tracer, site Site, res *dataplane.TraceResult, dir, from string, vni uint32) *Hop {
	hop := Hop{Chassis: chassis, VTEP: t.VTEP.String(), Direction: dir, From: from, VNI: vni}
	n := namer{w: h.w, ns: site.NetNS}
	for _, r := range res.Stages {
		hop.Steps = append(hop.Steps, describe(r, n))
	}
	h.tr.Hops = append(h.tr.Hops, hop)
	return &h.tr.Hops[len(h.tr.Hops)-1]
}

// finish records how the last hop ended.
func (h *hopper) finish(hop *Hop, last dataplane.StageRecord, site Site) {
	tr := h.tr
	tr.Chassis = hop.Chassis
	switch pipeline.VerdictName(last.Verdict) {
	case "output":
		tr.Outcome, tr.Port = Delivered, namer{w: h.w, ns: site.NetNS}.port(last.Ifindex)
		tr.Detail = fmt.Sprintf("delivered to %s on %s", tr.Port, hop.Chassis)
	case "reply":
		tr.Outcome, tr.Detail = Answered, "answered on "+hop.Chassis
	case "consumed":
		tr.Outcome, tr.Detail = Consumed, "kept by "+hop.Chassis
	case "drop":
		tr.Outcome, tr.Reason = Dropped, pipeline.DropName(last.Reason)
		tr.Detail = fmt.Sprintf("dropped on %s at %s: %s", hop.Chassis, pipeline.Stages[last.Stage].Name, tr.Reason)
	default:
		tr.Outcome, tr.Detail = Dropped, "the program recorded no decision"
	}
}

// namer names what records number.
type namer struct {
	w  *world
	ns string
}

func (n namer) host(vtep netip.Addr) string {
	if c := n.w.chassisAt(vtep); c != "" {
		return fmt.Sprintf("%s (%s)", vtep, c)
	}
	return vtep.String()
}

func (n namer) port(ifindex int) string {
	name := ""
	inNS(n.ns, func() error {
		if l, err := netlink.LinkByIndex(ifindex); err == nil {
			name, _ = strings.CutPrefix(l.Attrs().Alias, dataplane.AliasPrefix)
		}
		return nil
	})
	if name == "" {
		return fmt.Sprintf("ifindex %d", ifindex)
	}
	return name
}

func inNS(ns string, fn func() error) error {
	if ns == "" {
		return fn()
	}
	return lab.Do(ns, fn)
}

// portIfindex finds the host side of a port's VM interface by its alias.
func portIfindex(port string) (int, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return 0, err
	}
	for _, l := range links {
		if l.Attrs().Alias == dataplane.AliasPrefix+port {
			return l.Attrs().Index, nil
		}
	}
	return 0, fmt.Errorf("no interface of port %s here (alias %s%s)", port, dataplane.AliasPrefix, port)
}

// LocalSites finds data planes pinned under pinRoot, in this namespace.
func LocalSites(pinRoot string) Sites {
	return func(chassis string) (Site, bool) {
		if chassis == "" {
			return Site{}, false
		}
		if _, err := os.Stat(filepath.Join(pinRoot, chassis, "links", "tunnel")); err != nil {
			return Site{}, false
		}
		return Site{PinRoot: pinRoot}, true
	}
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown chassis"
	}
	return s
}
