package dataplane

import (
	"errors"
	"fmt"
	"maps"
)

// The VTEPs a host takes VXLAN from (bpf/tunnel.h, vteps_v1): every
// chassis's, from State.VTEPs. The collect-metadata device takes any VNI
// and group identity from whoever reaches its UDP port, so tun_admit
// drops (unknown_vtep) what comes from any other address.

// vtepMarker is 0.0.0.0, never a VTEP: its entry puts the list in force.
const vtepMarker = 0

// maxVTEPs is vteps_v1's size. Apply adds a changed list's new senders
// before it removes the old: room for two lists.
const maxVTEPs = 65536

func (d *Datapath) vtepsT() table[uint32, uint8] {
	return table[uint32, uint8]{d.objs.VtepsV1, "vteps"}
}

// compileVTEPs: nil VTEPs is no list (any sender); otherwise the senders
// and the marker.
func compileVTEPs(s *State) (map[uint32]uint8, error) {
	out := map[uint32]uint8{}
	if s.VTEPs == nil {
		return out, nil
	}
	for _, a := range s.VTEPs {
		if !a.Is4() || a.IsUnspecified() {
			return nil, fmt.Errorf("VTEP %s: not an IPv4 host address", a)
		}
		out[host32(a)] = 1
	}
	if limit := maxVTEPs/2 - 1; len(out) > limit {
		return nil, fmt.Errorf("%d chassis' VTEPs, more than the %d a host holds", len(out), limit)
	}
	out[vtepMarker] = 1
	return out, nil
}

// applyVTEPs changes vteps_v1 from have to want without refusing a
// sender of either meanwhile: new senders first, then the marker (a list
// put in force), then the senders that left; a list withdrawn loses its
// marker first.
func (d *Datapath) applyVTEPs(want, have map[uint32]uint8) (int, int, error) {
	grown := maps.Clone(have)
	maps.Copy(grown, want)
	if _, on := have[vtepMarker]; !on {
		delete(grown, vtepMarker)
	}
	if _, on := want[vtepMarker]; !on {
		delete(grown, vtepMarker)
	}
	n1, r1, err := d.vtepsT().sync(grown, have)
	if err != nil {
		return n1, r1, err
	}
	n2, r2, err := d.vtepsT().sync(want, grown)
	// What each CPU remembers admitting is checked again, until the
	// programs are told (a failure is told at the next Apply, which
	// finds the map as wanted).
	if n1+n2+r1+r2 > 0 {
		d.vtepsStale = true
	}
	if d.vtepsStale {
		if berr := d.vtepsChanged(); berr != nil {
			err = errors.Join(err, berr)
		} else {
			d.vtepsStale = false
		}
	}
	return n1 + n2, r1 + r2, err
}

// vtepsChanged tells the running programs that vteps_v1 changed: each
// CPU looks its next sender up again (bpf/tunnel.h, vtep_known).
func (d *Datapath) vtepsChanged() error {
	if err := d.objs.CfgVtepGen.Set(d.vtepGen.Add(1)); err != nil {
		return fmt.Errorf("tell the programs the VTEPs changed: %w", err)
	}
	return nil
}
