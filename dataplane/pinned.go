package dataplane

import (
	"fmt"
	"path/filepath"
	"reflect"

	"github.com/cilium/ebpf"
)

// OpenPinned opens a host's pinned maps, without programs, to observe its
// data plane from anywhere (courier-dpctl, tests): maps live in bpffs,
// not in a network namespace, and keep their contents while hostd is
// down. Only the reading methods (Counters, Drops, LearnLatency, Cache,
// Dump, Taught) may be used on it.
func OpenPinned(pinRoot, chassis string) (*Datapath, error) {
	if pinRoot == "" {
		pinRoot = DefaultPinRoot
	}
	dir := filepath.Join(pinRoot, chassis)
	d := &Datapath{pinDir: dir}
	v := reflect.ValueOf(&d.objs.dvrMaps).Elem()
	for i := 0; i < v.NumField(); i++ {
		name := v.Type().Field(i).Tag.Get("ebpf")
		if name == "" || name == ".rodata" || filepath.Ext(name) != "" {
			continue
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
