package dataplane

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// A departed port's SNAT connections outlive a hostd restart. When a
// port stops being translated here, hostd exports its connections and
// keeps them until the port is bound elsewhere (hostd/snathandoff.go);
// the next sweep removes them from the connection maps. A hostd
// restarted in between kept them only in its memory, so it lost them.
// They are kept here too, in a hash map pinned beside the data plane's
// (snat_depart_v1: a new layout gets a new name), which no program
// uses: only hostd writes, reads and deletes it. Like the other pins it
// outlives a restart but not a reboot, nor does what it saves.
//
// An entry is one connection of one port: 76-byte key, 16-byte value,
// allocated as used (no preallocation), at most the host's SNAT table.

const snatDepartMap = "snat_depart_v1"

// snatDepartKey is a departed connection: its port's name (the
// southbound's logical_port, at most 64 bytes, NUL-padded) and the
// port's side of the tuple, network order as in the SNAT maps.
type snatDepartKey struct {
	Port   [64]byte
	Remote uint32
	LPort  uint16
	RPort  uint16
	Proto  uint8
	_      [3]byte
}

// snatDepartVal is where the connection left from, and when its port
// left (unix ms).
type snatDepartVal struct {
	AtMs  int64
	Ext   uint32
	EPort uint16
	Flags uint8
	_     uint8
}

// goPinned are maps pinned by the Go side alone: unpinStale keeps them.
var goPinned = map[string]bool{snatDepartMap: true}

// openSNATDepart opens the pinned map, creating it the first time.
func (d *Datapath) openSNATDepart() error {
	spec := &ebpf.MapSpec{Name: snatDepartMap, Type: ebpf.Hash, KeySize: 76, ValueSize: 16, MaxEntries: d.objs.SnatFwdV1.MaxEntries(),
		Flags: unix.BPF_F_NO_PREALLOC, Pinning: ebpf.PinByName}
	m, err := ebpf.NewMapWithOptions(spec, ebpf.MapOptions{PinPath: d.pinDir})
	if err != nil {
		return fmt.Errorf("open %s: %w", snatDepartMap, err)
	}
	d.departed = table[snatDepartKey, snatDepartVal]{m, snatDepartMap}
	return nil
}

// SNATDeparture is a departed port's connections and when it left.
type SNATDeparture struct {
	At    time.Time
	Conns []SNATHandoffConn
}

// SNATKeepDeparted saves the connections port had when it left at at,
// in place of any saved for it before.
func (d *Datapath) SNATKeepDeparted(port string, at time.Time, conns []SNATHandoffConn) error {
	if len(port) > 64 {
		return fmt.Errorf("SNAT departure: port name %q longer than 64 bytes", port)
	}
	if err := d.SNATForgetDeparted(port); err != nil {
		return err
	}
	keys := make([]snatDepartKey, 0, len(conns))
	vals := make([]snatDepartVal, 0, len(conns))
	for _, c := range conns {
		if !c.Remote.Is4() || !c.Ext.Is4() {
			continue
		}
		k := snatDepartKey{Remote: be32(c.Remote), LPort: htons(c.Port), RPort: htons(c.RPort), Proto: c.Proto}
		copy(k.Port[:], port)
		v := snatDepartVal{AtMs: at.UnixMilli(), Ext: be32(c.Ext), EPort: htons(c.EPort)}
		if c.Closing {
			v.Flags = snatClosing
		}
		keys, vals = append(keys, k), append(vals, v)
	}
	return d.departed.putAll(keys, vals)
}

// SNATDeparted reads back every departed port's connections.
func (d *Datapath) SNATDeparted() (map[string]SNATDeparture, error) {
	entries, err := d.departed.dump()
	if err != nil {
		return nil, err
	}
	out := map[string]SNATDeparture{}
	for k, v := range entries {
		port := strings.TrimRight(string(k.Port[:]), "\x00")
		dep := out[port]
		dep.At = time.UnixMilli(v.AtMs)
		dep.Conns = append(dep.Conns, SNATHandoffConn{Proto: k.Proto, Port: htons(k.LPort), Remote: fromBE32(k.Remote), RPort: htons(k.RPort),
			Ext: fromBE32(v.Ext), EPort: htons(v.EPort), Closing: v.Flags&snatClosing != 0})
		out[port] = dep
	}
	return out, nil
}

// SNATForgetDeparted removes what was saved for port.
func (d *Datapath) SNATForgetDeparted(port string) error {
	entries, err := d.departed.dump()
	if err != nil {
		return err
	}
	var name [64]byte
	copy(name[:], port)
	var keys []snatDepartKey
	for k := range entries {
		if k.Port == name {
			keys = append(keys, k)
		}
	}
	return d.departed.deleteAll(keys)
}

// SNATPortID is who a port translated here was: its VPC and address.
type SNATPortID struct {
	VPC  uint32
	Addr netip.Addr
}

// SNATTranslated lists the ports the data plane translates, by ifindex,
// as the last Apply left them: before a restarted hostd's first Apply,
// as the previous hostd left them, which names a port whose interface
// left while hostd was down (its connections are still in the maps).
func (d *Datapath) SNATTranslated() (map[int]SNATPortID, error) {
	ports, err := d.snatPortsT().dump()
	if err != nil {
		return nil, err
	}
	out := make(map[int]SNATPortID, len(ports))
	for ifindex, p := range ports {
		out[int(ifindex)] = SNATPortID{VPC: p.Vpc, Addr: fromBE32(p.Addr)}
	}
	return out, nil
}
