package dataplane

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Hub liveness, in band (bpf/learn.h, bpf/hubs.h): hostd probes each hub
// its VPCs use, the hub's kernel answers, and the reply stamps the hub's
// entry in hub_seen. The DVR passes over a hub silent for HubDownAfter,
// so new flows stop going to a dead hub within a few hundred
// milliseconds, while southd, judging heartbeats, takes seconds to
// replace it.

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

// HubDown reports whether the DVR passes over a hub that was last heard
// from ago. On a data plane opened with OpenPinned the time is the
// running programs' (hostd's --hub-down-after, read once), the default
// when no program runs.
func (d *Datapath) HubDown(ago time.Duration) bool {
	if d.cfg.HubDownAfter > 0 { // Load set it
		return ago >= d.cfg.HubDownAfter
	}
	d.pinned.once.Do(func() { d.pinned.hubDownAfter = runningHubDownAfter(d.pinDir) })
	return ago >= d.pinned.hubDownAfter
}

// runningHubDownAfter reads cfg_hub_down_ns from the programs hostd
// attached for the chassis whose maps are pinned in dir.
func runningHubDownAfter(dir string) time.Duration {
	ro, err := runningRodata(dir)
	if err != nil {
		return DefaultHubDownAfter
	}
	spec, err := loadDvr()
	if err != nil {
		return DefaultHubDownAfter
	}
	v := spec.Variables["cfg_hub_down_ns"]
	if v == nil || int(v.Offset)+8 > len(ro) {
		return DefaultHubDownAfter
	}
	return time.Duration(binary.LittleEndian.Uint64(ro[v.Offset:]))
}

// Probe asks a hub whether it is there, in a VXLAN packet with a VNI the
// hub serves; its kernel answers this host's kernel.
func (s *Sender) Probe(hub netip.Addr, vni uint32, self netip.Addr) error {
	if err := s.Send(hub, vni, LearnMsg{Op: OpProbe, VNI: vni, IP: netip.IPv4Unspecified(), VTEP: self}); err != nil {
		return fmt.Errorf("probe hub %s: %w", hub, err)
	}
	return nil
}
