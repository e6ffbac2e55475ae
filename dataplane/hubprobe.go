package dataplane

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"time"
)

// Hub liveness, in band (bpf/learn.h, bpf/hubs.h): hostd probes each hub
// its VPCs use, the hub's kernel answers, and the reply stamps the hub's
// entry in hub_seen. The DVR passes over a hub silent for HubDownAfter
// for another that answers, if any, so new flows stop going to a dead
// hub within a few hundred milliseconds, while southd, judging
// heartbeats, takes seconds to replace it.

func (d *Datapath) hubSeenT() table[uint32, uint64] {
	return table[uint32, uint64]{d.objs.HubSeenV1, "hub_seen"}
}

// ProbeHubs makes hub_seen hold exactly the hubs this host probes: a hub
// new to the set is stamped now (so that one that never answers goes down
// after HubDownAfter, like one that stopped), and hubs no longer probed
// are removed (the DVR counts a hub without an entry as up).
func (d *Datapath) ProbeHubs(hubs []netip.Addr) error {
	have, err := d.hubSeenT().dump()
	if err != nil {
		return err
	}
	want := map[uint32]bool{}
	now := monotonic()
	var errs []error
	for _, h := range hubs {
		k := host32(h)
		want[k] = true
		if _, ok := have[k]; !ok {
			errs = append(errs, d.hubSeenT().put(k, now))
		}
	}
	for k := range have {
		if !want[k] {
			errs = append(errs, d.hubSeenT().delete(k))
		}
	}
	return errors.Join(errs...)
}

// HubSeen says, for each probed hub, how long ago it last answered (or,
// if it never has, since probing began).
func (d *Datapath) HubSeen() (map[netip.Addr]time.Duration, error) {
	have, err := d.hubSeenT().dump()
	if err != nil {
		return nil, err
	}
	now := monotonic()
	out := map[netip.Addr]time.Duration{}
	for k, v := range have {
		out[fromHost32(k)] = time.Duration(now - v)
	}
	return out, nil
}

// HubDownAfter is how long a hub may be silent before the DVR passes
// over it: the Config's on a data plane Load loaded; on one opened with
// OpenPinned, the running programs' (hostd's --hub-down-after), read
// once. An error says why it cannot be known: no program runs, or one of
// a build without that setting.
func (d *Datapath) HubDownAfter() (time.Duration, error) {
	if d.cfg.HubDownAfter > 0 { // Load set it
		return d.cfg.HubDownAfter, nil
	}
	d.pinned.once.Do(func() { d.pinned.hubDownAfter, d.pinned.hubDownErr = runningHubDownAfter(d.pinDir) })
	return d.pinned.hubDownAfter, d.pinned.hubDownErr
}

// HubDown reports whether a hub last heard from ago counts as down:
// silent for HubDownAfter or longer; false when that cannot be known.
func (d *Datapath) HubDown(ago time.Duration) bool {
	after, err := d.HubDownAfter()
	return err == nil && ago >= after
}

// runningHubDownAfter reads cfg_hub_down_ns from the programs hostd
// attached for the chassis whose maps are pinned in dir.
func runningHubDownAfter(dir string) (time.Duration, error) {
	vars, err := runningVars(dir)
	if err != nil {
		return 0, err
	}
	v := vars["cfg_hub_down_ns"]
	if len(v) != 8 {
		return 0, errors.New("the running programs have no cfg_hub_down_ns of 8 bytes (another build?): ask its own courier-dpctl")
	}
	return time.Duration(binary.LittleEndian.Uint64(v)), nil
}

// HubState is what the DVR makes of a hub or gateway this host probes
// (hub_seen holds both).
type HubState struct {
	Addr netip.Addr
	Ago  time.Duration // since it last answered a probe
	Down bool          // silent for HubDownAfter or longer
	// Kept: the VPCs ("VPC 1") and external networks ("network 2")
	// whose packets still go through it although it is down, since none
	// of their other hubs or gateways is up (pick_hub's and
	// pick_gateway's last resort).
	Kept []string
	// Unused: none of the VPCs' hubs nor of the networks' gateways.
	Unused bool
}

// HubStates says of each hub and gateway this host probes whether it
// is up and, if it is down, whether the DVR still sends through it.
func (d *Datapath) HubStates() ([]HubState, error) {
	after, err := d.HubDownAfter()
	if err != nil {
		return nil, err
	}
	seen, err := d.HubSeen()
	if err != nil {
		return nil, err
	}
	hubs, err := d.hubsT().dump()
	if err != nil {
		return nil, err
	}
	gws, err := d.eipGwsT().dump()
	if err != nil {
		return nil, err
	}
	return hubStates(hubGroups(hubs, gws), seen, after), nil
}

// hubGroup is what picks among a list of hubs or gateways: a VPC
// (pick_hub) or an external network (pick_gateway).
type hubGroup struct {
	kind string // "VPC" or "network"
	id   uint32
}

func (g hubGroup) String() string { return fmt.Sprintf("%s %d", g.kind, g.id) }

// hubGroups are the lists the DVR picks from, as it reads them: a
// VPC's hubs unless there are more than MAX_HUBS (pick_hub then picks
// none), a network's first MAX_GATEWAYS gateways.
func hubGroups(hubs map[uint32]dvrHubs, gws map[uint32]dvrEipGws) map[hubGroup][]netip.Addr {
	groups := map[hubGroup][]netip.Addr{}
	for vpc, h := range hubs {
		if h.N <= uint32(len(h.Vtep)) {
			groups[hubGroup{"VPC", vpc}] = vteps(h.Vtep[:h.N])
		}
	}
	for net, g := range gws {
		groups[hubGroup{"network", net}] = vteps(g.Vtep[:min(g.N, uint32(len(g.Vtep)))])
	}
	return groups
}

func vteps(host32 []uint32) []netip.Addr {
	out := make([]netip.Addr, len(host32))
	for i, v := range host32 {
		out[i] = fromHost32(v)
	}
	return out
}

// hubStates judges the probed hubs and gateways as pick_hub and
// pick_gateway do: one is up when it answered within after, or was
// never probed; a group's (a VPC's hubs, a network's gateways) packets
// pass over one that is down to one of the group's that is up, and when
// none is, go to the one their hash picks, any of them.
func hubStates(groups map[hubGroup][]netip.Addr, seen map[netip.Addr]time.Duration, after time.Duration) []HubState {
	up := func(h netip.Addr) bool {
		ago, ok := seen[h]
		return !ok || ago < after
	}
	order := slices.SortedFunc(maps.Keys(groups), func(a, b hubGroup) int {
		return cmp.Or(cmp.Compare(a.kind, b.kind), cmp.Compare(a.id, b.id))
	})
	var out []HubState
	for h, ago := range seen {
		s := HubState{Addr: h, Ago: ago, Down: !up(h), Unused: true}
		for _, g := range order {
			if !slices.Contains(groups[g], h) {
				continue
			}
			s.Unused = false
			if s.Down && !slices.ContainsFunc(groups[g], up) {
				s.Kept = append(s.Kept, g.String())
			}
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b HubState) int { return a.Addr.Compare(b.Addr) })
	return out
}

// Probe asks a hub whether it is there, in a VXLAN packet with a VNI the
// hub serves; its kernel answers this host's kernel.
func (s *Sender) Probe(hub netip.Addr, vni uint32, self netip.Addr) error {
	if err := s.Send(hub, vni, LearnMsg{Op: OpProbe, VNI: vni, IP: netip.IPv4Unspecified(), VTEP: self}); err != nil {
		return fmt.Errorf("probe hub %s: %w", hub, err)
	}
	return nil
}
