package dataplane

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"path/filepath"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
)

// Physical-network EIPs (bpf/phys.h): a local port's address on the data
// centre's own network, answered for (ARP) and translated by this host on
// its underlay NIC, with no gateway on the path. phys_ingress is attached
// to the underlay NIC whenever State.Underlay names it; it costs what
// VXLAN brings one comparison (its destination is this host's VTEP).

// PhysEIP is a local port's EIP of a physical network.
type PhysEIP struct {
	Ifindex int
	VPC     uint32
	EIP     netip.Addr
	Addr    netip.Addr // the port's address it translates to
}

type compiledPhys struct {
	local map[uint32]dvrEipLocal
	ports map[uint32]uint32
	deny  map[uint32]uint8  // the underlay NIC's addresses: no port sends to them
	live  map[uint32]uint32 // ifindex -> ifindex (a device map)
	cfg   dvrPhysCfg
}

func (d *Datapath) physLocalT() table[uint32, dvrEipLocal] {
	return table[uint32, dvrEipLocal]{d.objs.PhysLocalV1, "phys_local"}
}
func (d *Datapath) physPortsT() table[uint32, uint32] {
	return table[uint32, uint32]{d.objs.PhysPortsV1, "phys_ports"}
}
func (d *Datapath) physDenyT() table[uint32, uint8] {
	return table[uint32, uint8]{d.objs.PhysDenyV1, "phys_deny"}
}
func (d *Datapath) physLiveT() table[uint32, uint32] {
	return table[uint32, uint32]{d.objs.PhysLiveV1, "phys_live"}
}

func compilePhys(s *State) (*compiledPhys, error) {
	c := &compiledPhys{local: map[uint32]dvrEipLocal{}, ports: map[uint32]uint32{}, deny: map[uint32]uint8{},
		live: map[uint32]uint32{}}
	for _, e := range s.PhysEIPs {
		if !e.EIP.Is4() || !e.Addr.Is4() || e.Ifindex <= 0 {
			return nil, fmt.Errorf("physical EIP %s of ifindex %d: bad addresses", e.EIP, e.Ifindex)
		}
		c.local[be32(e.EIP)] = dvrEipLocal{Addr: be32(e.Addr), Vpc: e.VPC, Ifindex: uint32(e.Ifindex)}
		c.ports[uint32(e.Ifindex)] = be32(e.EIP)
		c.live[uint32(e.Ifindex)] = uint32(e.Ifindex)
	}
	if s.Underlay > 0 {
		c.cfg.Ifindex = uint32(s.Underlay)
		c.cfg.Mtu = uint16(s.UnderlayMTU)
	}
	return c, nil
}

func (d *Datapath) dumpPhys() (*compiledPhys, error) {
	c := &compiledPhys{}
	var e1, e2, e3, e4 error
	c.local, e1 = d.physLocalT().dump()
	c.ports, e2 = d.physPortsT().dump()
	c.live, e3 = d.physLiveT().dump()
	e4 = d.objs.PhysCfgV1.Lookup(uint32(0), &c.cfg)
	c.cfg.Mac = [6]uint8{} // compared by ifindex; the MAC is read again
	var e5 error
	c.deny, e5 = d.physDenyT().dump()
	return c, errors.Join(e1, e2, e3, e4, e5)
}

// underlayDeny adds the underlay NIC l's IPv4 addresses, and their
// networks' broadcast addresses, to deny: no port with a physical EIP
// sends to this host, nor to every host of its subnet at once (phys.h,
// phys_route).
func underlayDeny(l netlink.Link, deny map[uint32]uint8) error {
	addrs, err := netlink.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("underlay NIC %s: addresses: %w", l.Attrs().Name, err)
	}
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP.To4())
		if !ok {
			continue
		}
		deny[be32(ip)] = 1
		if ones, bits := a.Mask.Size(); bits == 32 && ones < 31 {
			b := ip.As4()
			host := ^uint32(0) >> ones
			v := binary.BigEndian.Uint32(b[:]) | host
			binary.BigEndian.PutUint32(b[:], v)
			deny[be32(netip.AddrFrom4(b))] = 1
		}
	}
	return nil
}

// applyPhys writes the physical EIPs' maps, attaches phys_ingress to the
// underlay NIC (or moves it), and announces the EIPs that became live
// here with a gratuitous ARP.
func (d *Datapath) applyPhys(want, have *compiledPhys, add func(int, int, error)) error {
	if want.cfg.Ifindex != 0 {
		l, err := netlink.LinkByIndex(int(want.cfg.Ifindex))
		if err != nil {
			return fmt.Errorf("underlay NIC ifindex %d: %w", want.cfg.Ifindex, err)
		}
		if hw := l.Attrs().HardwareAddr; len(hw) == 6 {
			want.cfg.Mac = mac6(hw)
		}
		if len(want.ports) > 0 {
			if err := underlayDeny(l, want.deny); err != nil {
				return err
			}
		}
	}
	if err := d.objs.PhysCfgV1.Put(uint32(0), want.cfg); err != nil {
		return fmt.Errorf("phys_cfg: %w", err)
	}
	// Where no port may send: added before the ports are written (should
	// that fail, none is), removed only once they are.
	grown := maps.Clone(want.deny)
	maps.Copy(grown, have.deny)
	n, r, err := d.physDenyT().sync(grown, have.deny)
	add(n, r, nil)
	if err != nil {
		return err
	}
	n, r, err = d.physPortsT().sync(want.ports, have.ports)
	add(n, r, err)
	if err == nil {
		add(d.physDenyT().sync(want.deny, grown))
	}
	// The port's address before the EIP that leads to it, and the EIP
	// before the liveness that lets it be answered.
	add(d.physLocalT().sync(want.local, have.local))
	// The kernel takes entries out of the device map itself: compare
	// with what it holds now.
	live, err := d.physLiveT().dump()
	if err != nil {
		return err
	}
	var announce []netip.Addr
	for eip, e := range want.local {
		if _, ok := live[e.Ifindex]; ok {
			continue
		}
		if err := d.physLiveT().put(e.Ifindex, e.Ifindex); err != nil {
			// The interface left meanwhile: nothing to serve (the next
			// reconcile drops the port).
			if errors.Is(err, syscall.ENODEV) || errors.Is(err, syscall.EINVAL) || errors.Is(err, ebpf.ErrKeyNotExist) {
				d.log.Warn("physical EIP not served: its port's interface is gone", "eip", fromBE32(eip), "ifindex", e.Ifindex, "err", err)
				continue
			}
			add(0, 0, err)
			continue
		}
		add(1, 0, nil)
		announce = append(announce, fromBE32(eip))
	}
	for k := range live {
		if _, ok := want.live[k]; !ok {
			add(0, 1, d.physLiveT().delete(k))
		}
	}
	want.live = live
	if err := d.attachUnderlay(int(want.cfg.Ifindex)); err != nil {
		return err
	}
	if want.cfg.Ifindex != 0 {
		for _, a := range announce {
			d.announce(int(want.cfg.Ifindex), want.cfg.Mac[:], a)
		}
	}
	return nil
}

// garpRepeats are when an EIP that became live here is announced, from
// then: at once, and again in case the first was lost (a switch's MAC
// table learns from them too).
var garpRepeats = []time.Duration{0, 500 * time.Millisecond, 2 * time.Second}

// announce sends the gratuitous ARPs for eip, each only if this host
// still serves it then (the port may have moved on). The socket is
// opened here, in the caller's network namespace, and serves the later
// ones too, whatever thread their timer runs on.
func (d *Datapath) announce(ifindex int, mac net.HardwareAddr, eip netip.Addr) {
	fd, err := syscall.Socket(syscall.AF_PACKET, syscall.SOCK_RAW, int(htons(syscall.ETH_P_ARP)))
	if err != nil {
		d.log.Warn("gratuitous ARP: packet socket", "eip", eip, "err", err)
		return
	}
	frame := garpFrame(mac, eip)
	send := func(last bool) {
		if last {
			defer syscall.Close(fd)
		}
		var e dvrEipLocal
		if err := d.objs.PhysLocalV1.Lookup(be32(eip), &e); err != nil {
			return
		}
		if _, ok := d.physLiveT().lookup(e.Ifindex); !ok {
			return
		}
		sa := &syscall.SockaddrLinklayer{Protocol: htons(syscall.ETH_P_ARP), Ifindex: ifindex, Halen: 6}
		copy(sa.Addr[:], frame[:6])
		if err := syscall.Sendto(fd, frame, 0, sa); err != nil {
			d.log.Warn("gratuitous ARP", "eip", eip, "ifindex", ifindex, "err", err)
		}
	}
	for i, after := range garpRepeats {
		last := i == len(garpRepeats)-1
		if after == 0 {
			send(last)
		} else {
			time.AfterFunc(after, func() { send(last) })
		}
	}
}

// garpFrame announces that ip is at mac: an ARP request from ip for ip,
// broadcast, which updates the neighbour entry every host of the segment
// holds for ip (Linux overrides it even within its lock time:
// arp_process's is_garp). Equivalent to: arping -U -I IFACE -s IP IP.
func garpFrame(mac net.HardwareAddr, ip netip.Addr) []byte {
	bcast := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	a := ip.As4()
	f := make([]byte, 0, 42)
	f = append(f, bcast...)
	f = append(f, mac...)
	f = binary.BigEndian.AppendUint16(f, syscall.ETH_P_ARP)
	f = append(f, 0, 1, 0x08, 0x00, 6, 4, 0, 1) // Ethernet, IPv4, request
	f = append(f, mac...)
	f = append(f, a[:]...)
	f = append(f, 0, 0, 0, 0, 0, 0)
	return append(f, a[:]...)
}

// attachUnderlay attaches phys_ingress to ifindex (0: detaches it).
func (d *Datapath) attachUnderlay(ifindex int) error {
	if d.underlay != nil && d.underlayIdx != ifindex {
		d.closeUnderlay(true)
	}
	if ifindex > 0 && d.underlay == nil {
		l, err := attachTCX(ifindex, d.objs.PhysIngress, filepath.Join(d.pinDir, "links", "underlay"))
		if err != nil {
			return err
		}
		d.underlay, d.underlayIdx = l, ifindex
	}
	return nil
}

// closeUnderlay releases (unpin: and removes) the underlay NIC's link.
func (d *Datapath) closeUnderlay(unpin bool) {
	if d.underlay == nil {
		return
	}
	if unpin {
		d.underlay.Unpin()
	}
	d.underlay.Close()
	d.underlay, d.underlayIdx = nil, 0
}

// lines renders the physical EIPs for courier-dpctl eips.
func (c *compiledPhys) lines() []string {
	var out []string
	for k, v := range c.local {
		_, live := c.live[v.Ifindex]
		out = append(out, fmt.Sprintf("physical eip %s -> %s (vpc %d, port ifindex %d, answered %v)", fromBE32(k), fromBE32(v.Addr), v.Vpc, v.Ifindex, live))
	}
	if c.cfg.Ifindex != 0 {
		out = append(out, fmt.Sprintf("underlay: ifindex %d, mac %s", c.cfg.Ifindex, macString(c.cfg.Mac)))
	}
	return out
}
