package dataplane

import (
	"errors"
	"fmt"
	"math/bits"
	"net"
	"net/netip"
	"time"

	"github.com/cilium/ebpf"
)

// Distributed SNAT (bpf/snat.h, bpf/nat_snat.h): a port without an EIP
// in a VPC with SNAT addresses is translated on its own host, within port
// blocks allocated to it; a gateway tunnels what comes back for a block
// to the host of its port.

// SNATPort is a local port translated by its VPC's SNAT.
type SNATPort struct {
	Ifindex   int
	VPC       uint32
	Addr      netip.Addr // the port's own address, the one translated
	Network   uint32     // the addresses' external network, by hostd's number (as EIP.Network)
	BlockSize int        // ports per block, a power of two
	Blocks    []SNATBlock
}

// SNATBlock is a range of BlockSize ports of one SNAT address.
type SNATBlock struct {
	Addr netip.Addr
	Lo   uint16
}

// GatewaySNAT says where a SNAT block's port is, for a gateway.
type GatewaySNAT struct {
	Addr      netip.Addr
	Lo        uint16
	BlockSize int
	VTEP      netip.Addr
	VNI       uint32
	MAC       net.HardwareAddr
	GwMAC     net.HardwareAddr
	NextHop   netip.Addr // the network's upstream router; invalid: the Gateway's
}

// maxSNATBlocks is SNAT_MAX_BLOCKS: the blocks a port's entry holds.
const maxSNATBlocks = 64

// blockShift is log2 of a block size, which must be a power of two from
// 64 to 32768 (the schema's range).
func blockShift(size int) (uint32, error) {
	if size < 64 || size > 32768 || size&(size-1) != 0 {
		return 0, fmt.Errorf("SNAT block size %d: not a power of two from 64 to 32768", size)
	}
	return uint32(bits.TrailingZeros(uint(size))), nil
}

func htons(p uint16) uint16 { return bits.ReverseBytes16(p) }

type compiledSNAT struct {
	ports  map[uint32]dvrSnatPort
	gwAddr map[uint32]uint32 // SNAT address -> block shift
	gw     map[dvrGwSnatKey]dvrGwEip
}

func (d *Datapath) snatPortsT() table[uint32, dvrSnatPort] {
	return table[uint32, dvrSnatPort]{d.objs.SnatPortsV1, "snat_ports"}
}
func (d *Datapath) snatFwdT() table[dvrSnatFkey, dvrSnatFval] {
	return table[dvrSnatFkey, dvrSnatFval]{d.objs.SnatFwdV1, "snat_fwd"}
}
func (d *Datapath) snatRevT() table[dvrSnatRkey, dvrSnatRval] {
	return table[dvrSnatRkey, dvrSnatRval]{d.objs.SnatRevV1, "snat_rev"}
}
func (d *Datapath) snatUseT() table[uint32, dvrSnatUse] {
	return table[uint32, dvrSnatUse]{d.objs.SnatUseV1, "snat_use"}
}
func (d *Datapath) gwSnatAddrsT() table[uint32, uint32] {
	return table[uint32, uint32]{d.objs.GwSnatAddrsV1, "gw_snat_addrs"}
}
func (d *Datapath) gwSnatT() table[dvrGwSnatKey, dvrGwEip] {
	return table[dvrGwSnatKey, dvrGwEip]{d.objs.GwSnatV1, "gw_snat"}
}

func compileSNAT(s *State) (*compiledSNAT, error) {
	c := &compiledSNAT{ports: map[uint32]dvrSnatPort{}, gwAddr: map[uint32]uint32{}, gw: map[dvrGwSnatKey]dvrGwEip{}}
	for _, p := range s.SNATPorts {
		shift, err := blockShift(p.BlockSize)
		if err != nil {
			return nil, err
		}
		if !p.Addr.Is4() || p.Ifindex <= 0 || len(p.Blocks) > maxSNATBlocks {
			return nil, fmt.Errorf("SNAT port ifindex %d: bad address or %d blocks", p.Ifindex, len(p.Blocks))
		}
		v := dvrSnatPort{Vpc: p.VPC, Net: p.Network, Addr: be32(p.Addr), Shift: shift, N: uint32(len(p.Blocks))}
		for i, b := range p.Blocks {
			if !b.Addr.Is4() || int(b.Lo)&(p.BlockSize-1) != 0 {
				return nil, fmt.Errorf("SNAT port ifindex %d: block %s:%d not aligned", p.Ifindex, b.Addr, b.Lo)
			}
			v.Blocks[i] = dvrSnatBlock{Addr: be32(b.Addr), Lo: uint32(b.Lo)}
		}
		c.ports[uint32(p.Ifindex)] = v
	}
	if gw := s.Gateway; gw != nil {
		for _, b := range gw.SNAT {
			shift, err := blockShift(b.BlockSize)
			if err != nil {
				return nil, err
			}
			c.gwAddr[be32(b.Addr)] = shift
			c.gw[dvrGwSnatKey{Addr: be32(b.Addr), Lo: uint32(b.Lo)}] = dvrGwEip{Vtep: host32(b.VTEP), Vni: b.VNI,
				Mac: mac6(b.MAC), GwMac: mac6(b.GwMAC), Nexthop: be32Or0(b.NextHop)}
		}
	}
	return c, nil
}

func (d *Datapath) dumpSNAT() (*compiledSNAT, error) {
	c := &compiledSNAT{}
	var e1, e2, e3 error
	c.ports, e1 = d.snatPortsT().dump()
	c.gwAddr, e2 = d.gwSnatAddrsT().dump()
	c.gw, e3 = d.gwSnatT().dump()
	return c, errors.Join(e1, e2, e3)
}

// applySNAT writes the SNAT maps: a gateway's blocks, and the local ports'
// blocks with, for a port new here, its use counters (never rewritten
// after: the program owns them).
func (d *Datapath) applySNAT(want, have *compiledSNAT, add func(int, int, error)) {
	add(d.gwSnatAddrsT().sync(want.gwAddr, have.gwAddr))
	add(d.gwSnatT().sync(want.gw, have.gw))
	n := 0
	var errs []error
	for ifindex := range want.ports {
		if _, ok := have.ports[ifindex]; ok {
			continue
		}
		err := d.objs.SnatUseV1.Update(ifindex, dvrSnatUse{}, ebpf.UpdateNoExist)
		if err != nil && !errors.Is(err, ebpf.ErrKeyExist) {
			errs = append(errs, fmt.Errorf("snat_use: %w", err))
		}
		n++
	}
	add(n, 0, errors.Join(errs...))
	add(d.snatPortsT().sync(want.ports, have.ports))
	for ifindex := range have.ports {
		if _, ok := want.ports[ifindex]; !ok {
			add(0, 1, d.snatUseT().delete(ifindex))
		}
	}
}

// SNATUse is how much a local port used its blocks.
type SNATUse struct {
	Allocs uint64 // connections given a port, ever
	Fails  uint64 // connections that found no free port (dropped)
}

// SNATUses reads every local SNAT port's use, by ifindex.
func (d *Datapath) SNATUses() (map[int]SNATUse, error) {
	m, err := d.snatUseT().dump()
	if err != nil {
		return nil, err
	}
	out := make(map[int]SNATUse, len(m))
	for k, v := range m {
		out[int(k)] = SNATUse{Allocs: v.Allocs, Fails: v.Fails}
	}
	return out, nil
}

// SetSNATQuotas makes each port's quota (by ifindex) what q says: the
// count of allocations (SNATUse.Allocs) at which its new connections are
// refused (snat_quota) until the next call; ports not in q have none.
func (d *Datapath) SetSNATQuotas(q map[int]uint64) error {
	t := table[uint32, uint64]{d.objs.SnatQuotaV1, "snat_quota"}
	have, err := t.dump()
	if err != nil {
		return err
	}
	want := make(map[uint32]uint64, len(q))
	for k, v := range q {
		want[uint32(k)] = v
	}
	_, _, err = t.sync(want, have)
	return err
}

// SNATTimeouts are how long a translated connection is kept idle.
type SNATTimeouts struct {
	TCP        time.Duration // established
	TCPClosing time.Duration // once a FIN or a reset was seen
	UDP        time.Duration
	ICMP       time.Duration
}

// DefaultSNATTimeouts are Google Cloud NAT's defaults, but for a TCP
// connection's closing, which is Linux conntrack's TIME_WAIT.
var DefaultSNATTimeouts = SNATTimeouts{TCP: 1200 * time.Second, TCPClosing: 120 * time.Second,
	UDP: 30 * time.Second, ICMP: 30 * time.Second}

func (t SNATTimeouts) of(proto uint8, flags uint8) time.Duration {
	switch {
	case proto == 6 && flags&snatClosing != 0:
		return t.TCPClosing
	case proto == 6:
		return t.TCP
	case proto == 17:
		return t.UDP
	}
	return t.ICMP
}

const snatClosing = 0x1 // SNAT_F_CLOSING

// SNATGCStats says what one SNATGC pass found.
type SNATGCStats struct {
	Live    map[int]int // connections per port ifindex
	Removed int
}

// SNATGC removes translated connections idle longer than their timeout,
// those of ports no longer translated here and those mapped into blocks
// their port no longer holds, and counts the others per port. A connection is as recent as the later of its two directions.
func (d *Datapath) SNATGC(t SNATTimeouts) (SNATGCStats, error) {
	st := SNATGCStats{Live: map[int]int{}}
	ports, err := d.snatPortsT().dump()
	if err != nil {
		return st, err
	}
	fwd := d.snatFwdT()
	rev := d.snatRevT()
	entries, err := fwd.dump()
	if err != nil {
		return st, err
	}
	now := monotonic()
	var errs []error
	for k, v := range entries {
		rk := dvrSnatRkey{Ext: v.Ext, Remote: k.Remote, Eport: v.Eport, Rport: k.Rport, Proto: k.Proto}
		seen, flags := v.SeenNs, v.Flags
		if r, ok := rev.lookup(rk); ok {
			seen, flags = max(seen, r.SeenNs), flags|r.Flags
		}
		p, here := ports[v.Ifindex]
		if here && inBlocks(p, v.Ext, htons(v.Eport)) && now < seen+uint64(t.of(k.Proto, flags)) {
			st.Live[int(v.Ifindex)]++
			continue
		}
		if cur, ok := fwd.lookup(k); ok && cur.SeenNs != v.SeenNs && here && inBlocks(p, v.Ext, htons(v.Eport)) {
			st.Live[int(v.Ifindex)]++ // used since the dump: kept
			continue
		}
		errs = append(errs, rev.delete(rk), fwd.delete(k))
		st.Removed++
	}
	st.Removed += d.snatOrphans(fwd, rev, now, &errs)
	return st, errors.Join(errs...)
}

// inBlocks says whether port p still holds the block of ext:eport (host
// order): a connection mapped into a block the port gave back, or of an
// address its VPC no longer has, must go, or it would leave from ports
// that are somebody else's now.
func inBlocks(p dvrSnatPort, ext uint32, eport uint16) bool {
	size := uint32(1) << p.Shift
	for i := uint32(0); i < p.N && i < maxSNATBlocks; i++ {
		b := p.Blocks[i]
		if b.Addr == ext && uint32(eport) >= b.Lo && uint32(eport) < b.Lo+size {
			return true
		}
	}
	return false
}

// snatOrphans removes reverse entries without their forward one (a
// program's insertion that lost a race and was cut short) older than a
// second, so that no port is held by nothing.
func (d *Datapath) snatOrphans(fwd table[dvrSnatFkey, dvrSnatFval], rev table[dvrSnatRkey, dvrSnatRval], now uint64, errs *[]error) int {
	entries, err := rev.dump()
	if err != nil {
		*errs = append(*errs, err)
		return 0
	}
	n := 0
	for k, v := range entries {
		fk := dvrSnatFkey{Vpc: v.Vpc, Addr: v.Addr, Remote: k.Remote, Port: v.Port, Rport: k.Rport, Proto: k.Proto}
		if f, ok := fwd.lookup(fk); (ok && f.Ext == k.Ext && f.Eport == k.Eport) || now < v.SeenNs+uint64(time.Second) {
			continue
		}
		*errs = append(*errs, rev.delete(k))
		n++
	}
	return n
}

// SNATConn is one translated connection, for courier-dpctl.
type SNATConn struct {
	Ifindex            int
	Proto              uint8
	Addr, Remote, Ext  netip.Addr
	Port, RPort, EPort uint16
	Closing            bool
	Idle               time.Duration
}

// SNATConns lists the translated connections.
func (d *Datapath) SNATConns() ([]SNATConn, error) {
	fwd := d.snatFwdT()
	entries, err := fwd.dump()
	if err != nil {
		return nil, err
	}
	now := monotonic()
	var out []SNATConn
	for k, v := range entries {
		out = append(out, SNATConn{Ifindex: int(v.Ifindex), Proto: k.Proto, Addr: fromBE32(k.Addr), Remote: fromBE32(k.Remote),
			Ext: fromBE32(v.Ext), Port: htons(k.Port), RPort: htons(k.Rport), EPort: htons(v.Eport),
			Closing: v.Flags&snatClosing != 0, Idle: time.Duration(now - min(now, v.SeenNs))})
	}
	return out, nil
}

// lines renders the SNAT maps for courier-dpctl eips.
func (c *compiledSNAT) lines() []string {
	var out []string
	for k, v := range c.ports {
		size := 1 << v.Shift
		out = append(out, fmt.Sprintf("port ifindex %d: snat %s, network %d, %d blocks of %d ports", k, fromBE32(v.Addr), v.Net, v.N, size))
		for i := uint32(0); i < v.N && i < maxSNATBlocks; i++ {
			b := v.Blocks[i]
			out = append(out, fmt.Sprintf("  block %s:%d-%d", fromBE32(b.Addr), b.Lo, int(b.Lo)+size-1))
		}
	}
	for k, v := range c.gw {
		size := 1 << c.gwAddr[k.Addr]
		out = append(out, fmt.Sprintf("gateway snat %s:%d-%d -> host %s vni %d mac %s%s", fromBE32(k.Addr), k.Lo, int(k.Lo)+size-1,
			fromHost32(v.Vtep), v.Vni, macString(v.Mac), upstreamVia(v.Nexthop)))
	}
	return out
}
