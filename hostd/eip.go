package hostd

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"github.com/vishvananda/netlink"

	"github.com/courier-sdn/courier/dataplane"
	"github.com/courier-sdn/courier/northd/rules"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// EIPs. A port's host translates its port's EIP (Port_Binding.eip) and
// sends what the port addresses outside its VPC to the gateways of the
// EIP's network: the chassis with the gateway role that name the network
// in other_config:gateway_networks. A gateway watches every binding with
// an EIP (one more session, "gateway": Port_Binding where eip is set,
// and the vxnet datapaths for their VNIs) and tunnels what its uplink
// receives for an EIP to the port's chassis.

// GatewayConfig makes this chassis a gateway of external networks.
type GatewayConfig struct {
	Networks []string // names of the NB External_Networks it serves
	Uplink   string   // the interface facing them
	NextHop  netip.Addr
}

// otherConfigGateways is the Chassis.other_config key naming the
// external networks a gateway serves, comma-separated.
const otherConfigGateways = "gateway_networks"

// gatewaysOf lists, per external network, the VTEPs of the chassis that
// serve it.
func gatewaysOf(chassis []*sbdb.Chassis) map[string][]netip.Addr {
	out := map[string][]netip.Addr{}
	for _, c := range chassis {
		a, err := netip.ParseAddr(c.EncapIP)
		if err != nil || !slices.Contains(c.Roles, "gateway") {
			continue
		}
		for _, n := range strings.Split(c.OtherConfig[otherConfigGateways], ",") {
			if n = strings.TrimSpace(n); n != "" {
				out[n] = append(out[n], a)
			}
		}
	}
	return out
}

// localNAT adds the EIPs of this host's ports and its ports translated
// by SNAT (snat.go) to st, with the gateways of their networks. Networks
// are numbered here, by name.
func localNAT(s *snapshot, st *dataplane.State) {
	names := map[string]bool{}
	var eips []*sbdb.PortBinding
	for _, pb := range s.ports {
		if !holding(s.chassis, s.ifaces, pb) { // activation.go
			continue
		}
		if sn := snatOf(s, pb); sn != nil {
			names[sn.Network] = true
		}
		if e, ok := physEIP(pb, s.ifaces[pb.LogicalPort]); ok {
			st.PhysEIPs = append(st.PhysEIPs, e) // phys.go: no gateway
			continue
		}
		if pb.Eip == nil || pb.EipNetwork == nil || len(pb.IPs) == 0 || isPhysical(pb) {
			continue
		}
		eips = append(eips, pb)
		names[*pb.EipNetwork] = true
	}
	nets := netNumbers(names)
	for _, pb := range eips {
		eip, err1 := netip.ParseAddr(*pb.Eip)
		addr, err2 := netip.ParseAddr(pb.IPs[0])
		if err1 != nil || err2 != nil {
			continue
		}
		st.EIPs = append(st.EIPs, dataplane.EIP{Ifindex: s.ifaces[pb.LogicalPort], VPC: uint32(pb.Vpc), EIP: eip, Addr: addr,
			Network: nets[*pb.EipNetwork]})
	}
	localSNAT(s, st, nets)
	for n, i := range nets {
		st.EIPGateways = append(st.EIPGateways, dataplane.EIPGateways{Network: i, VTEPs: s.gateways[n]})
	}
	sort.Slice(st.EIPGateways, func(i, j int) bool { return st.EIPGateways[i].Network < st.EIPGateways[j].Network })
}

// gatewayState is what a gateway's data plane serves: every EIP of its
// networks whose port is bound, where its port is.
func gatewayState(cfg *GatewayConfig, uplink int, pbs []*sbdb.PortBinding, dps map[string]*sbdb.Datapath,
	encap map[string]netip.Addr, via map[string]netip.Addr) *dataplane.Gateway {
	g := &dataplane.Gateway{Uplink: uplink, NextHop: cfg.NextHop}
	for _, pb := range pbs {
		if pb.Eip == nil || pb.EipNetwork == nil || !slices.Contains(cfg.Networks, *pb.EipNetwork) || pb.Chassis == nil || isPhysical(pb) {
			continue
		}
		vtep, ok := encap[*pb.Chassis]
		dp := dps[pb.Datapath]
		eip, err := netip.ParseAddr(*pb.Eip)
		mac, merr := net.ParseMAC(pb.MAC)
		gw, gerr := net.ParseMAC(rules.GatewayMAC(pb.Vpc))
		if !ok || dp == nil || err != nil || merr != nil || gerr != nil {
			continue
		}
		g.EIPs = append(g.EIPs, dataplane.GatewayEIP{EIP: eip, VTEP: vtep, VNI: uint32(dp.TunnelKey), MAC: mac, GwMAC: gw,
			NextHop: via[*pb.EipNetwork]})
	}
	return g
}

// openGateway opens the gateway's session: the bindings with an EIP and
// the vxnet datapaths (for their VNIs).
func (d *Daemon) openGateway(ctx context.Context) error {
	m, err := sbdb.FullDatabaseModel()
	if err != nil {
		return err
	}
	pb := &sbdb.PortBinding{}
	dp := &sbdb.Datapath{}
	mon := []client.MonitorOption{
		// nb_cfg: what this session shows is acknowledged only once read
		client.WithTable(&sbdb.SBGlobal{}),
		// The bindings with a public EIP (a physical network's are served
		// by their own hosts), the columns a gateway needs only: a
		// gateway's work grows with the EIPs it serves, not with every
		// port (a SNAT block says itself where its port is).
		client.WithConditionalTable(pb, []model.Condition{{Field: &pb.EipKind, Function: ovsdb.ConditionEqual, Value: &publicEIP}},
			&pb.LogicalPort, &pb.Datapath, &pb.Vpc, &pb.MAC, &pb.Chassis, &pb.Eip, &pb.EipNetwork, &pb.EipKind),
		client.WithTable(&sbdb.SNAT{}),
		client.WithTable(&sbdb.SNATBlock{}),
		// the networks' next hops
		client.WithTable(&sbdb.ExternalNetwork{}),
		client.WithConditionalTable(dp, []model.Condition{{Field: &dp.Type, Function: ovsdb.ConditionEqual, Value: "vxnet"}},
			&dp.TunnelKey, &dp.Vpc, &dp.Type),
	}
	s, err := ops.Open(ctx, m, d.sbOptions(mon, ops.NewTrackerNotifying(d.notify)))
	if err != nil {
		return err
	}
	d.gw = s
	return nil
}

// nextHops are the external networks' upstream routers, by name, as
// northd wrote them (it checked them; one that does not parse is logged
// and left to the gateway's own).
func nextHops(nets []*sbdb.ExternalNetwork, log *slog.Logger) map[string]netip.Addr {
	out := map[string]netip.Addr{}
	for _, n := range nets {
		if n.NextHop == nil {
			continue
		}
		a, err := netip.ParseAddr(*n.NextHop)
		if err != nil || !a.Is4() {
			log.Warn("external network's next hop is not an IPv4 address; using the gateway's", "network", n.Name, "next_hop", *n.NextHop)
			continue
		}
		out[n.Name] = a
	}
	return out
}

// publicEIP is the kind of EIP gateways serve.
var publicEIP = sbdb.PortBindingEipKindPublic

// gatewaySnapshot is the gateway's part of the kernel state, or nil on a
// chassis that is not one (or whose session is down: then the kernel keeps
// what it has, as for VPC sessions).
func (d *Daemon) gatewaySnapshot(encap map[string]netip.Addr, mtu int) (*dataplane.Gateway, bool) {
	if d.cfg.Gateway == nil {
		return nil, true
	}
	if d.gw == nil {
		return nil, false
	}
	select {
	case <-d.gw.Done():
		return nil, false
	default:
	}
	l, err := netlink.LinkByName(d.cfg.Gateway.Uplink)
	if err != nil {
		d.log.Warn("gateway uplink", "uplink", d.cfg.Gateway.Uplink, "err", err)
		return nil, false
	}
	dps := map[string]*sbdb.Datapath{}
	for _, dp := range ops.Rows[sbdb.Datapath](d.gw) {
		dps[dp.UUID] = dp
	}
	via := nextHops(ops.Rows[sbdb.ExternalNetwork](d.gw), d.log)
	g := gatewayState(d.cfg.Gateway, l.Attrs().Index, ops.Rows[sbdb.PortBinding](d.gw), dps, encap, via)
	g.MTU, g.Addr = mtu, d.uplink.get(l)
	gatewaySNAT(g, d.cfg.Gateway, ops.Rows[sbdb.SNAT](d.gw), ops.Rows[sbdb.SNATBlock](d.gw), dps, encap, via)
	return g, true
}
