package dataplane

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
)

// EIPs (bpf/eip.h, bpf/gateway.h): a port's host translates its EIP,
// statelessly; a gateway tunnels what comes in for an EIP to the port's
// host and sends what hosts send from EIPs upstream.

// EIP is a local port's EIP.
type EIP struct {
	Ifindex int
	VPC     uint32
	EIP     netip.Addr
	Addr    netip.Addr // the port's address it translates to
	Network uint32     // the external network, by hostd's number
}

// EIPGateways are the gateways of an external network, by hostd's number.
type EIPGateways struct {
	Network uint32
	VTEPs   []netip.Addr
}

// Gateway is what a gateway chassis serves: the uplink that faces the
// external networks (its next hop, if they have one) and where each EIP's
// port is.
type Gateway struct {
	Uplink  int        // ifindex
	NextHop netip.Addr // for networks that name none; invalid: the gateway's routes decide
	// Addr is the uplink's address, the source of the gateway's ICMP
	// errors; invalid: the packet's own destination.
	Addr netip.Addr
	// MTU is the overlay's: a longer packet from upstream is cut into
	// fragments, or answered with fragmentation needed if DF is set.
	// 0: none is (it would then be dropped at the VM's interface).
	MTU  int
	EIPs []GatewayEIP
	SNAT []GatewaySNAT // SNAT blocks of its networks' addresses
}

// GatewayEIP says where an EIP's port is.
type GatewayEIP struct {
	EIP   netip.Addr
	VTEP  netip.Addr // its host
	VNI   uint32     // its vxnet
	MAC   net.HardwareAddr
	GwMAC net.HardwareAddr // its VPC's gateway MAC
	// NextHop is the EIP's network's upstream router; invalid: the
	// Gateway's.
	NextHop netip.Addr
}

type compiledEIP struct {
	local  map[uint32]dvrEipLocal
	ports  map[uint32]dvrEipPort
	gws    map[uint32]dvrEipGws
	gwEIPs map[uint32]dvrGwEip
	gwVTEP map[uint32]uint32
	cfg    dvrGwCfg
}

func (d *Datapath) eipLocalT() table[uint32, dvrEipLocal] {
	return table[uint32, dvrEipLocal]{d.objs.EipLocalV1, "eip_local"}
}
func (d *Datapath) eipPortsT() table[uint32, dvrEipPort] {
	return table[uint32, dvrEipPort]{d.objs.EipPortsV1, "eip_ports"}
}
func (d *Datapath) eipGwsT() table[uint32, dvrEipGws] {
	return table[uint32, dvrEipGws]{d.objs.EipGwsV1, "eip_gws"}
}
func (d *Datapath) gwVTEPsT() table[uint32, uint32] {
	return table[uint32, uint32]{d.objs.GwVtepsV1, "gw_vteps"}
}
func (d *Datapath) gwEIPsT() table[uint32, dvrGwEip] {
	return table[uint32, dvrGwEip]{d.objs.GwEipsV1, "gw_eips"}
}

const maxGateways = 8

func compileEIP(s *State) (*compiledEIP, error) {
	c := &compiledEIP{local: map[uint32]dvrEipLocal{}, ports: map[uint32]dvrEipPort{}, gws: map[uint32]dvrEipGws{},
		gwEIPs: map[uint32]dvrGwEip{}, gwVTEP: map[uint32]uint32{}}
	for _, e := range s.EIPs {
		if !e.EIP.Is4() || !e.Addr.Is4() || e.Ifindex <= 0 {
			return nil, fmt.Errorf("EIP %s of ifindex %d: bad addresses", e.EIP, e.Ifindex)
		}
		c.local[be32(e.EIP)] = dvrEipLocal{Addr: be32(e.Addr), Vpc: e.VPC, Ifindex: uint32(e.Ifindex)}
		c.ports[uint32(e.Ifindex)] = dvrEipPort{Eip: be32(e.EIP), Net: e.Network}
	}
	for _, g := range s.EIPGateways {
		vteps := sortedAddrs(g.VTEPs)
		if len(vteps) > maxGateways {
			vteps = vteps[:maxGateways]
		}
		var v dvrEipGws
		v.N = uint32(len(vteps))
		for i, a := range vteps {
			v.Vtep[i] = host32(a)
			c.gwVTEP[host32(a)] = 1
		}
		c.gws[g.Network] = v
	}
	if gw := s.Gateway; gw != nil {
		c.cfg.Uplink = uint32(gw.Uplink)
		c.cfg.Nexthop = be32Or0(gw.NextHop)
		c.cfg.Addr = be32Or0(gw.Addr)
		c.cfg.Mtu = uint32(gw.MTU)
		for _, e := range gw.EIPs {
			c.gwEIPs[be32(e.EIP)] = dvrGwEip{Vtep: host32(e.VTEP), Vni: e.VNI, Mac: mac6(e.MAC), GwMac: mac6(e.GwMAC),
				Nexthop: be32Or0(e.NextHop)}
		}
	}
	return c, nil
}

func (d *Datapath) dumpEIP() (*compiledEIP, error) {
	c := &compiledEIP{}
	var err, e2, e3, e4, e5, e6 error
	c.gwVTEP, e6 = d.gwVTEPsT().dump()
	c.local, err = d.eipLocalT().dump()
	c.ports, e2 = d.eipPortsT().dump()
	c.gws, e3 = d.eipGwsT().dump()
	c.gwEIPs, e4 = d.gwEIPsT().dump()
	e5 = d.objs.GwCfgV1.Lookup(uint32(0), &c.cfg)
	return c, errors.Join(err, e2, e3, e4, e5, e6)
}

// applyEIP writes the EIP maps, and attaches the gateway program to the
// uplink (or detaches it from one that is no longer).
func (d *Datapath) applyEIP(want, have *compiledEIP, add func(int, int, error)) error {
	// Where an EIP's port is, before anything sends to it.
	add(d.gwVTEPsT().sync(want.gwVTEP, have.gwVTEP))
	add(d.eipGwsT().sync(want.gws, have.gws))
	add(d.eipLocalT().sync(want.local, have.local))
	add(d.eipPortsT().sync(want.ports, have.ports))
	add(d.gwEIPsT().sync(want.gwEIPs, have.gwEIPs))
	if want.cfg != have.cfg {
		if err := d.objs.GwCfgV1.Put(uint32(0), want.cfg); err != nil {
			return fmt.Errorf("gw_cfg: %w", err)
		}
	}
	up := int(want.cfg.Uplink)
	if d.uplink != nil && d.uplinkIdx != up {
		d.uplink.Unpin()
		d.uplink.Close()
		d.uplink, d.uplinkIdx = nil, 0
	}
	if up > 0 && d.uplink == nil {
		l, err := attachTCX(up, d.objs.GwUplinkIngress, filepath.Join(d.pinDir, "links", "uplink"))
		if err != nil {
			return err
		}
		d.uplink, d.uplinkIdx = l, up
	}
	return nil
}

// closeUplink releases (unpin: and removes) the gateway's uplink link.
func (d *Datapath) closeUplink(unpin bool) {
	if d.uplink == nil {
		return
	}
	if unpin {
		d.uplink.Unpin()
	}
	d.uplink.Close()
	d.uplink = nil
}

// lines renders the EIP maps for courier-dpctl eips.
func (c *compiledEIP) lines() []string {
	var out []string
	for k, v := range c.local {
		out = append(out, fmt.Sprintf("eip %s -> %s (vpc %d, port ifindex %d)", fromBE32(k), fromBE32(v.Addr), v.Vpc, v.Ifindex))
	}
	for k, v := range c.ports {
		out = append(out, fmt.Sprintf("port ifindex %d: eip %s, network %d", k, fromBE32(v.Eip), v.Net))
	}
	for k, v := range c.gws {
		var vteps []string
		for i := uint32(0); i < v.N && i < maxGateways; i++ {
			vteps = append(vteps, fromHost32(v.Vtep[i]).String())
		}
		out = append(out, fmt.Sprintf("network %d: gateways %v", k, vteps))
	}
	if c.cfg.Uplink != 0 {
		nh := "its routes"
		if c.cfg.Nexthop != 0 {
			nh = fromBE32(c.cfg.Nexthop).String()
		}
		out = append(out, fmt.Sprintf("gateway: uplink ifindex %d, upstream via %s, overlay mtu %d, icmp errors from %s",
			c.cfg.Uplink, nh, c.cfg.Mtu, icmpSource(c.cfg.Addr)))
	}
	for k, v := range c.gwEIPs {
		out = append(out, fmt.Sprintf("gateway eip %s -> host %s vni %d mac %s%s", fromBE32(k), fromHost32(v.Vtep), v.Vni, macString(v.Mac),
			upstreamVia(v.Nexthop)))
	}
	return out
}

// upstreamVia says which next hop a gateway entry names, if any.
func upstreamVia(nexthop uint32) string {
	if nexthop == 0 {
		return ""
	}
	return ", upstream via " + fromBE32(nexthop).String()
}

// icmpSource says where a gateway's ICMP errors come from.
func icmpSource(addr uint32) string {
	if addr == 0 {
		return "the packets' destinations"
	}
	return fromBE32(addr).String()
}
