package dataplane

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"reflect"

	"github.com/cilium/ebpf"
)

// OpenPinned opens a host's pinned maps, without programs, to observe its
// data plane from anywhere (courier-dpctl, tests): maps live in bpffs,
// not in a network namespace, and keep their contents while hostd is
// down. Only the reading methods (Counters, Drops, LearnLatency, Cache,
// Dump, Taught, HubSeen, HubDownAfter, HubDown, HubStates) may be used
// on it.
func OpenPinned(pinRoot, chassis string) (*Datapath, error) {
	if pinRoot == "" {
		pinRoot = DefaultPinRoot
	}
	dir := filepath.Join(pinRoot, chassis)
	d := &Datapath{pinDir: dir}
	v := reflect.ValueOf(&d.objs.dvrMaps).Elem()
	for i := 0; i < v.NumField(); i++ {
		name := v.Type().Field(i).Tag.Get("ebpf")
		if !isPinned(name) {
			continue // not pinned: .rodata, and each loaded copy's own test and trace maps
		}
		m, err := ebpf.LoadPinnedMap(filepath.Join(dir, name), &ebpf.LoadPinOptions{ReadOnly: true})
		if err != nil {
			d.objs.dvrMaps.Close()
			return nil, fmt.Errorf("no data plane pinned for chassis %s under %s: %w", chassis, pinRoot, err)
		}
		v.Field(i).Set(reflect.ValueOf(m))
	}
	return d, nil
}

// ClosePinned releases what OpenPinned opened.
func (d *Datapath) ClosePinned() error { return d.objs.dvrMaps.Close() }

// FlushPinnedCache removes a host's learned paths: every one, or only
// those to ip when it is valid. Their next packets go through a hub, which
// teaches the host again. It returns how many it removed.
func FlushPinnedCache(pinRoot, chassis string, ip netip.Addr) (int, error) {
	if pinRoot == "" {
		pinRoot = DefaultPinRoot
	}
	m, err := ebpf.LoadPinnedMap(filepath.Join(pinRoot, chassis, "cache_v1"), nil)
	if err != nil {
		return 0, fmt.Errorf("no data plane pinned for chassis %s under %s: %w", chassis, pinRoot, err)
	}
	defer m.Close()
	t := table[dvrEpKey, dvrCachedEp]{m, "cache"}
	entries, err := t.dump()
	if err != nil {
		return 0, err
	}
	n := 0
	for k := range entries {
		if ip.IsValid() && fromBE32(k.Ip) != ip {
			continue
		}
		if err := t.delete(k); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
