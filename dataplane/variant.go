package dataplane

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// Variants let the benchmark compare two builds of the programs on one
// state, in one run: another build (an ELF object as bpf2go writes
// dvr_bpfel.o, such as an earlier commit's) is loaded for a chassis whose
// programs run, with the running configuration (every variable both
// builds name, constant or not), on the chassis's pinned maps wherever
// the two builds lay a map out alike, on fresh maps where they do not
// (counters that gained entries, test maps renamed). Nothing is
// attached.

// CurrentObject is this build's object.
func CurrentObject() []byte { return _DvrBytes }

// ProfiledObject is this build's programs with each stage timed
// (bpf/profile.h; ReadProfile reads the times), to load as a variant.
func ProfiledObject() []byte { return _DvrprofBytes }

// LoadVariant loads obj for chassis, pinned under pinRoot. Test sets the
// object's test hooks (cfg_test, or cfg_test_tunnel in older builds),
// which tunnel_ingress needs under BPF_PROG_RUN.
func LoadVariant(obj []byte, pinRoot, chassis string, test bool) (*ebpf.Collection, error) {
	dir := filepath.Join(pinRoot, chassis)
	spec, err := ebpf.LoadCollectionSpecFromReader(bytes.NewReader(obj))
	if err != nil {
		return nil, err
	}
	running, err := runningVars(dir)
	if err != nil {
		return nil, fmt.Errorf("chassis %s: %w", chassis, err)
	}
	// Every variable both builds name, where each build keeps it: a
	// constant, or one hostd changes as the programs run (.bss: the
	// underlay's ifindex, without which a variant never encapsulates).
	for name, v := range spec.Variables {
		if data, ok := running[name]; ok && len(data) == len(v.Value) {
			copy(v.Value, data)
		}
	}
	for _, name := range []string{"cfg_test", "cfg_test_tunnel"} {
		if v, ok := spec.Variables[name]; ok {
			t := uint8(0)
			if test {
				t = 1
			}
			v.Set(t)
		}
	}
	repl := sameLayouts(spec, dir)
	defer func() {
		for _, m := range repl {
			m.Close()
		}
	}()
	for _, ms := range spec.Maps {
		ms.Pinning = ebpf.PinNone // a variant never pins
	}
	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{MapReplacements: repl})
	if err != nil {
		return nil, err
	}
	if err := fillEarlierLayouts(coll, dir, repl); err != nil {
		coll.Close()
		return nil, err
	}
	return coll, nil
}

// sameLayouts opens the chassis's pinned maps that spec lays out as
// they are.
func sameLayouts(spec *ebpf.CollectionSpec, dir string) map[string]*ebpf.Map {
	repl := map[string]*ebpf.Map{}
	for name, ms := range spec.Maps {
		if !isPinned(name) {
			continue
		}
		m, err := ebpf.LoadPinnedMap(filepath.Join(dir, name), nil)
		if err != nil {
			continue
		}
		if name == hubMap { // sized when the data plane loaded
			ms.MaxEntries = m.MaxEntries()
		}
		if m.Type() != ms.Type || m.KeySize() != ms.KeySize || m.ValueSize() != ms.ValueSize || m.MaxEntries() != ms.MaxEntries {
			m.Close()
			continue
		}
		repl[name] = m
	}
	return repl
}

// fillEarlierLayouts fills coll's maps of an earlier layout
// (earlierLayouts) that were not the chassis's own, once, from the
// chassis's maps of today's: the benchmark's state does not change while
// it times. A port's PORT_F_VXNET goes along; the earlier programs test
// their flags one by one and never had that one.
func fillEarlierLayouts(coll *ebpf.Collection, dir string, pinned map[string]*ebpf.Map) error {
	for name, l := range earlierLayouts {
		dst := coll.Maps[name]
		if dst == nil || pinned[name] != nil || int(dst.ValueSize()) != l.size {
			continue
		}
		src, err := ebpf.LoadPinnedMap(filepath.Join(dir, l.into), &ebpf.LoadPinOptions{ReadOnly: true})
		if err != nil {
			return fmt.Errorf("%s, for the variant's %s: %w", l.into, name, err)
		}
		if int(src.ValueSize()) < l.size {
			src.Close()
			return fmt.Errorf("%s's values (%d bytes) are shorter than the variant's %s (%d)", l.into, src.ValueSize(), name, l.size)
		}
		_, err = copyEntries(src, dst, l.size, ebpf.UpdateAny)
		src.Close()
		if err != nil {
			return fmt.Errorf("fill the variant's %s from %s: %w", name, l.into, err)
		}
	}
	return nil
}

// RunningProgram is the program hostd attached for chassis: the tunnel
// program, or the port program (as attached to the first port found).
func RunningProgram(pinRoot, chassis string, tunnel bool) (*ebpf.Program, error) {
	dir := filepath.Join(pinRoot, chassis, "links")
	name := "tunnel"
	if !tunnel {
		es, err := os.ReadDir(dir)
		if err != nil {
			return nil, err
		}
		name = ""
		for _, e := range es {
			if strings.HasPrefix(e.Name(), "port-") {
				name = e.Name()
				break
			}
		}
		if name == "" {
			return nil, fmt.Errorf("chassis %s has no port program attached", chassis)
		}
	}
	l, err := link.LoadPinnedLink(filepath.Join(dir, name), nil)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	info, err := l.Info()
	if err != nil {
		return nil, err
	}
	return ebpf.NewProgramFromID(info.Program)
}

// SetTestTunnel sets the key the tunnel_ingress of a variant loaded with
// its test hooks reads for the packets it runs (tunnel_in): sent by vtep
// in vni with that VXLAN GBP field (GBPPolicyApplied | identity, as a
// sender whose egress rules passed the packet; 0: none). BPF_PROG_RUN
// carries no tunnel metadata.
func SetTestTunnel(coll *ebpf.Collection, vtep netip.Addr, vni, gbp uint32) error {
	m := coll.Maps["tunnel_in"]
	if m == nil {
		return fmt.Errorf("the variant has no tunnel_in map")
	}
	// An older build's record is a prefix of this one (the bench loads
	// its baseline's programs): cut to the map's size.
	rec := binary.NativeEndian.AppendUint32(nil, host32(vtep))
	rec = binary.NativeEndian.AppendUint32(rec, vni)
	rec = binary.NativeEndian.AppendUint32(rec, gbp)
	rec = binary.NativeEndian.AppendUint32(rec, 0) // local: this host's VTEP
	if n := int(m.ValueSize()); n < len(rec) {
		rec = rec[:n]
	}
	return m.Put(uint32(0), rec)
}
