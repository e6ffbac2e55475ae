package hostd

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/courier-sdn/courier/dataplane"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/pipeline"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// What the kernel should hold is a pure function of a snapshot: the
// southbound rows this host's sessions hold, read once per reconcile,
// and the host's own facts. reconcile takes the snapshot, desired
// computes, the Dataplane applies; tests give desired a snapshot and
// compare what it returns, with no kernel and no database.

// snapshot is what desired reads.
type snapshot struct {
	chassis string
	mtu     int                   // the overlay MTU of this host's ports
	ifaces  map[string]int        // logical port -> ifindex of its VM interface
	taps    map[int]bool          // the VM interfaces that are taps
	encap   map[string]netip.Addr // chassis -> VTEP
	// gateways: external network -> the VTEPs of its gateways (eip.go)
	gateways map[string][]netip.Addr
	// gateway: what this chassis serves as a gateway, or nil
	gateway *dataplane.Gateway
	// underlay: the ifindex of the NIC holding this host's VTEP, where
	// physical EIPs are served (phys.go); 0 in tests without one
	underlay int
	ports    []*sbdb.PortBinding // the base session's: this host's, requested or bound
	// snat: the VPCs' SNAT rows, by VPC; blocks: this host's ports'
	// SNAT blocks, by port (snat.go)
	snat      map[int]*sbdb.SNAT
	blocks    map[string][]*sbdb.SNATBlock
	blockSeen map[string]int // block UUID -> when first seen (an order)
	learned   []*sbdb.LearnedBinding
	vpcs      []vpcSnapshot
	// hub, when set, holds the hub VPCs' bindings already (the
	// vpcSnapshots' bindings and learned rows are then not read);
	// hostd's own snapshots always have it.
	hub *hubTable
}

// vpcSnapshot is one VPC session's rows.
type vpcSnapshot struct {
	vpc      int
	hub      bool // this host is one of the VPC's hubs
	dps      map[string]*sbdb.Datapath
	flows    *flowConfig // its logical flows, compiled (vpcSession.compiled caches them)
	hubs     []*sbdb.Hub
	bindings []*sbdb.PortBinding // every binding of the VPC (what a hub forwards by)
	eips     []dataplane.VPCEIP  // every EIP of the VPC (hairpin.go)
	eipsKey  string              // names eips ("": unnamed, compared whole)
	learned  []*sbdb.LearnedBinding
}

// desiredState is what desired returns: the kernel's state and what
// reconcile does after applying it.
type desiredState struct {
	state    *dataplane.State
	up       []*sbdb.PortBinding // this host's ports to mark up once applied
	hubOf    map[uint32]bool     // the VPCs this host is a hub of
	flowErrs []string            // flows this data plane cannot apply
	ready    bool                // every VPC's datapaths are there: nb_cfg may be acknowledged
}

// takeSnapshot reads the sessions once, through the caches that make a
// change cost what it changed: each VPC's flows compiled part by part
// (lflow_parts.go), its EIPs kept from its changes (hairpin.go), a hub's
// bindings kept row by row (hubtable.go). fullSnapshot reads the same
// rows with none of those caches; TestIncrementalEqualsFull checks, on
// random histories against a real southbound, that both give the same
// data plane.
func (d *Daemon) takeSnapshot(pbs []*sbdb.PortBinding) *snapshot {
	s := d.hostSnapshot(pbs)
	d.underlay = s.underlay
	if s.underlay == 0 {
		d.underlay = -1
	}
	s.snat, s.blocks = d.snatRows()
	s.blockSeen = d.blockSeen
	if d.hub == nil {
		d.hub = newHubTable()
	}
	s.hub = d.hub
	reload := d.hub.encapChanged(s.encap)
	hubOf := map[int]bool{}
	for _, vs := range d.vpcs {
		v := vpcRows(vs)
		ch := vs.tracker.Drain()
		v.flows = vs.compiled(v.dps, ch)
		v.eips, v.eipsKey = vs.vpcEIPs(ch)
		if vs.hub {
			hubOf[vs.vpc] = true
			d.hub.refresh(v, vs.s, ch, reload, func() ([]*sbdb.PortBinding, []*sbdb.LearnedBinding) {
				return ops.Rows[sbdb.PortBinding](vs.s), ops.Rows[sbdb.LearnedBinding](vs.s)
			}, s.encap)
		}
		s.vpcs = append(s.vpcs, v)
	}
	for vpc := range d.hub.byVPC {
		if !hubOf[vpc] {
			d.hub.dropVPC(vpc)
		}
	}
	if time.Since(d.hubChecked) > hubCheckEvery(d.hub.kernel.Len()) {
		d.hub.kernel.MarkFull() // compare the whole map with the kernel now and then
		d.hubChecked = time.Now()
	}
	return s
}

// hubCheckEvery is how often a hub holding n bindings compares its whole
// kernel map with its table: every safetyReconcile up to 65,536, and as
// many times longer as it holds more, so that the check costs a minute
// what it costs a 65,536-binding hub. It reads every entry: 0.36 s of
// CPU at 256,000 (perf, load 2.5), half of an idle hub's work when it
// ran every minute. What it catches, a map changed behind hostd's back,
// is found within 4 minutes at 256,000.
func hubCheckEvery(n int) time.Duration {
	return safetyReconcile * time.Duration(max(1, (n+65535)/65536))
}

// fullSnapshot reads the sessions whole: every VPC's flows compiled
// afresh, its EIPs and a hub's bindings from their rows, as a restarted
// hostd would. It changes none of takeSnapshot's caches (nor the order
// SNAT blocks were seen in, which is history, not rows).
func (d *Daemon) fullSnapshot(pbs []*sbdb.PortBinding) *snapshot {
	s := d.hostSnapshot(pbs)
	s.snat, s.blocks = readSNAT(d.base)
	for _, vs := range d.vpcs {
		v := vpcRows(vs)
		v.flows = compileFlows(vs.vpc, ops.Rows[sbdb.LogicalFlow](vs.s), v.dps, nil)
		v.eips = sortedEIPs(allEIPs(ops.Rows[sbdb.PortBinding](vs.s)))
		if vs.hub {
			v.bindings, v.learned = ops.Rows[sbdb.PortBinding](vs.s), ops.Rows[sbdb.LearnedBinding](vs.s)
		}
		s.vpcs = append(s.vpcs, v)
	}
	return s
}

// hostSnapshot reads what is this host's and the base session's: its
// interfaces, ports and learned addresses, the chassis' VTEPs and
// gateways, its underlay NIC.
func (d *Daemon) hostSnapshot(pbs []*sbdb.PortBinding) *snapshot {
	s := &snapshot{chassis: d.cfg.Chassis, mtu: int(d.mtu.Load()), ifaces: d.ifaces, taps: d.taps, encap: map[string]netip.Addr{}, ports: pbs,
		learned: ops.Rows[sbdb.LearnedBinding](d.base), blockSeen: d.blockSeen}
	chassis := ops.Rows[sbdb.Chassis](d.base)
	for _, c := range chassis {
		if a, err := netip.ParseAddr(c.EncapIP); err == nil {
			s.encap[c.Name] = a
		}
	}
	s.gateways = gatewaysOf(chassis)
	if ix, err := dataplane.UnderlayIndex(d.cfg.EncapIP); err != nil {
		d.status["underlay"] = err.Error() // physical EIPs are not served
	} else {
		delete(d.status, "underlay")
		s.underlay = ix
	}
	return s
}

// vpcRows is a VPC session's datapaths and hubs.
func vpcRows(vs *vpcSession) vpcSnapshot {
	v := vpcSnapshot{vpc: vs.vpc, hub: vs.hub, dps: map[string]*sbdb.Datapath{}, hubs: ops.Rows[sbdb.Hub](vs.s)}
	for _, dp := range ops.Rows[sbdb.Datapath](vs.s) {
		v.dps[dp.UUID] = dp
	}
	return v
}

// desired computes the kernel's state from a snapshot.
func desired(s *snapshot) *desiredState {
	out := &desiredState{state: &dataplane.State{}, hubOf: map[uint32]bool{}, ready: true}
	hub := s.hub
	if hub == nil { // a snapshot of rows only: their table, from scratch
		hub = newHubTable()
		hub.encapChanged(s.encap)
	}
	st := out.state
	dps := map[string]*sbdb.Datapath{}
	dhcp := map[string]pipeline.DHCPReply{}
	var eipKeys []string
	for _, v := range s.vpcs {
		maps.Copy(dps, v.dps)
		if len(v.dps) == 0 {
			out.ready = false // not compiled yet, or still loading
		}
		fc := v.flows
		if fc == nil {
			fc = compileFlows(v.vpc, nil, v.dps, nil)
		}
		out.flowErrs = append(out.flowErrs, fc.errs...)
		maps.Copy(dhcp, fc.dhcp)
		out.flowErrs = append(out.flowErrs, datapaths(st, v.dps, fc)...)
		st.Routes = append(st.Routes, fc.routes...)
		if sg, errs := fc.groups(v.vpc, v.dps); sg != nil {
			st.SG = append(st.SG, *sg)
			out.flowErrs = append(out.flowErrs, errs...)
		}
		st.VPCEIPs = append(st.VPCEIPs, v.eips...)
		eipKeys = append(eipKeys, v.eipsKey)
		for _, h := range v.hubs {
			hs := dataplane.Hubs{VPC: uint32(h.Vpc)}
			for _, c := range h.Chassis {
				if a, ok := s.encap[c]; ok {
					hs.VTEPs = append(hs.VTEPs, a)
				}
			}
			st.Hubs = append(st.Hubs, hs)
		}
		if v.hub {
			out.hubOf[uint32(v.vpc)] = true
			if s.hub == nil {
				hub.loadVPC(v, v.bindings, v.learned, s.encap)
			}
		}
	}
	if !slices.Contains(eipKeys, "") {
		slices.Sort(eipKeys) // the VPCs come in any order
		st.VPCEIPsKey = strings.Join(eipKeys, ",")
	}
	st.HubTable = hub.kernel
	localPorts(s, dps, dhcp, out)
	localNAT(s, st)
	st.VTEPs = chassisVTEPs(s.encap, s.chassis)
	st.Gateway = s.gateway
	st.Underlay, st.UnderlayMTU = s.underlay, s.mtu
	// Every VM interface gets the DVR as soon as it appears, so that
	// declaring its port only writes map entries.
	for _, ifindex := range s.ifaces {
		st.Interfaces = append(st.Interfaces, ifindex)
	}
	return out
}

// datapaths adds a VPC's datapaths, with the flags its flows ask for.
func datapaths(st *dataplane.State, dps map[string]*sbdb.Datapath, fc *flowConfig) (errs []string) {
	for _, dp := range dps {
		switch dp.Type {
		case pipeline.DPVPC:
			st.VPCs = append(st.VPCs, dataplane.VPC{ID: uint32(dp.TunnelKey), GwMAC: parseMAC(dp.GatewayMAC), Flags: fc.vpcFlags})
		case pipeline.DPVxnet:
			if dp.Cidr == nil || dp.GatewayIP == nil {
				continue
			}
			cidr, err1 := netip.ParsePrefix(*dp.Cidr)
			gw, err2 := netip.ParseAddr(*dp.GatewayIP)
			if err1 != nil || err2 != nil {
				errs = append(errs, fmt.Sprintf("datapath %s: bad CIDR or gateway", dp.Name))
				continue
			}
			st.Vxnets = append(st.Vxnets, dataplane.Vxnet{VNI: uint32(dp.TunnelKey), VPC: uint32(dp.Vpc), CIDR: cidr,
				GwIP: gw, GwMAC: parseMAC(dp.GatewayMAC), Flags: fc.vxFlags[dp.UUID]})
		}
	}
	return errs
}

// localPorts adds this host's ports and the addresses they hold beyond
// their fixed IPs once southd has accepted them.
func localPorts(s *snapshot, dps map[string]*sbdb.Datapath, dhcp map[string]pipeline.DHCPReply, out *desiredState) {
	st := out.state
	byName := map[string]*sbdb.PortBinding{}
	for _, pb := range s.ports {
		byName[pb.LogicalPort] = pb
		dp := dps[pb.Datapath]
		mac := parseMAC(pb.MAC)
		if !ours(s.chassis, s.ifaces, pb) || dp == nil || mac == nil {
			continue
		}
		p := dataplane.Port{Ifindex: s.ifaces[pb.LogicalPort], Name: pb.LogicalPort, VNI: uint32(dp.TunnelKey), VPC: uint32(pb.Vpc),
			MAC: mac, MTU: s.mtu, Tap: s.taps[s.ifaces[pb.LogicalPort]], Security: pb.PortSecurity, Unknown: len(pb.IPs) == 0, TunnelKey: uint32(pb.TunnelKey),
			IPs: addrs(pb.IPs), VIPs: addrs(pb.VirtualIPs), DHCP: portDHCP(dhcp, pb, dp, s.mtu),
			Migrating: migratingHere(s.chassis, pb)} // activation.go
		// A reserved identity (the internet's, from a northd older than
		// the reservation) is no port's: the port goes without, and its
		// VPC's groups refuse its traffic until northd numbers it anew.
		if pb.SgIdentity != nil && *pb.SgIdentity <= pipeline.MaxIdentity {
			p.Identity = uint32(*pb.SgIdentity)
		} else if pb.SgIdentity != nil {
			out.flowErrs = append(out.flowErrs, fmt.Sprintf("port %s: identity %d is reserved", pb.LogicalPort, *pb.SgIdentity))
		}
		st.Ports = append(st.Ports, p)
		if (pb.Up == nil || !*pb.Up) && !p.Migrating { // a migrating port is its source's to mark
			out.up = append(out.up, pb)
		}
	}
	for _, lb := range s.learned {
		ifindex := s.ifaces[lb.LogicalPort]
		a, err := netip.ParseAddr(lb.IP)
		if pb := byName[lb.LogicalPort]; lb.Accepted && pb != nil && holding(s.chassis, s.ifaces, pb) && ifindex != 0 && err == nil {
			st.Locals = append(st.Locals, dataplane.Local{VPC: uint32(lb.Vpc), IP: a, Ifindex: ifindex})
		}
	}
}

// addrs parses the addresses that parse.
func addrs(ss []string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, a)
		}
	}
	return out
}

// ours: a port whose VM interface is here and which is bound here, or
// requested here (then it is ours by right, even before our claim has come
// back through the monitor: it must be programmed before this host
// acknowledges the configuration that created it), or migrating here
// (prepared before its guest resumes: activation.go).
func ours(chassis string, ifaces map[string]int, pb *sbdb.PortBinding) bool {
	if ifaces[pb.LogicalPort] == 0 {
		return false
	}
	return isMe(pb.Chassis, chassis) || (pb.Chassis == nil && isMe(pb.RequestedChassis, chassis)) || isMe(pb.MigrationDestination, chassis)
}

// fixedBindings are the bindings a port's row gives a hub: its fixed
// IPs at its chassis, or, until a host has claimed it, at the chassis it
// is requested on, whose hostd programs it before acknowledging.
func fixedBindings(pb *sbdb.PortBinding, dps map[string]*sbdb.Datapath, encap map[string]netip.Addr) []dataplane.Binding {
	at := pb.Chassis
	if at == nil {
		at = pb.RequestedChassis
	}
	if at == nil {
		return nil
	}
	vtep, ok := encap[*at]
	dp := dps[pb.Datapath]
	if !ok || dp == nil {
		return nil
	}
	var out []dataplane.Binding
	for _, a := range addrs(pb.IPs) {
		out = append(out, dataplane.Binding{VPC: uint32(pb.Vpc), IP: a, VTEP: vtep, VNI: uint32(dp.TunnelKey), MAC: parseMAC(pb.MAC)})
	}
	return out
}

// learnedBindings is the binding an accepted learned address gives.
func learnedBindings(lb *sbdb.LearnedBinding, encap map[string]netip.Addr) []dataplane.Binding {
	vtep, ok := encap[lb.Chassis]
	a, err := netip.ParseAddr(lb.IP)
	if !lb.Accepted || !ok || err != nil {
		return nil
	}
	return []dataplane.Binding{{VPC: uint32(lb.Vpc), IP: a, VTEP: vtep, VNI: uint32(lb.Vni), MAC: parseMAC(lb.MAC)}}
}

// Dataplane is what hostd asks of the kernel's data plane
// (dataplane.Datapath); tests give a fake.
type Dataplane interface {
	Apply(st *dataplane.State) (dataplane.ApplyStats, error)
	TaughtAbout(keys map[dataplane.BindingKey]bool) (map[dataplane.BindingKey][]netip.Addr, error)
	ExpireCache(idle time.Duration) (int, error)
	ProbeHubs(hubs []netip.Addr) error
	HubSeen() (map[netip.Addr]time.Duration, error)
	HubDown(ago time.Duration) bool
	KeepForwarding() (bool, error)
	FollowUnderlay() (dataplane.Underlay, error)
	SetVXLANMTU(mtu int) error
}

// LearnSender sends learn messages from user space (dataplane.Sender).
type LearnSender interface {
	Send(to netip.Addr, vni uint32, m dataplane.LearnMsg) error
	Probe(hub netip.Addr, vni uint32, self netip.Addr) error
}
