package trace

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// world is what a trace reads of the southbound: the VPC of the port a
// packet comes from, with its datapaths, bindings, flows and hubs, and
// every chassis. Only that VPC is read, with monitor conditions, not the
// whole southbound.
type world struct {
	inport   *sbdb.PortBinding
	vxnet    *sbdb.Datapath // the inport's
	vpc      *sbdb.Datapath
	dps      map[string]*sbdb.Datapath // by UUID
	byVNI    map[int]*sbdb.Datapath
	bindings []*sbdb.PortBinding
	learned  []*sbdb.LearnedBinding
	flows    map[string][]*sbdb.LogicalFlow // by datapath UUID, in the order evaluated
	hubs     []string                       // chassis names
	chassis  map[string]*sbdb.Chassis       // by name
	snat     *sbdb.SNAT                     // the VPC's SNAT addresses, if any
}

// served says whether a live gateway chassis serves external network n
// (other_config:gateway_networks, as hostd reads it).
func (w *world) served(n string) bool {
	for _, c := range w.chassis {
		if !slices.Contains(c.Roles, "gateway") {
			continue
		}
		for _, s := range strings.Split(c.OtherConfig["gateway_networks"], ",") {
			if strings.TrimSpace(s) == n {
				return true
			}
		}
	}
	return false
}

func readWorld(ctx context.Context, remotes []string, tlsc *tls.Config, port string) (*world, error) {
	m, err := sbdb.FullDatabaseModel()
	if err != nil {
		return nil, err
	}
	pb := &sbdb.PortBinding{}
	first, err := ops.Open(ctx, m, ops.SessionOptions{Remotes: remotes, TLS: tlsc, Monitor: []client.MonitorOption{
		client.WithConditionalTable(pb, []model.Condition{{Field: &pb.LogicalPort, Function: ovsdb.ConditionEqual, Value: port}})}})
	if err != nil {
		return nil, fmt.Errorf("southbound: %w", err)
	}
	rows := ops.Rows[sbdb.PortBinding](first)
	first.Close()
	if len(rows) != 1 {
		return nil, fmt.Errorf("no port %q in the southbound (is it declared, and accepted by northd?)", port)
	}
	vpc := rows[0].Vpc
	dp, lf, h, lb, pbv, sn := &sbdb.Datapath{}, &sbdb.LogicalFlow{}, &sbdb.Hub{}, &sbdb.LearnedBinding{}, &sbdb.PortBinding{}, &sbdb.SNAT{}
	s, err := ops.Open(ctx, m, ops.SessionOptions{Remotes: remotes, TLS: tlsc, Monitor: []client.MonitorOption{
		client.WithTable(&sbdb.Chassis{}),
		client.WithConditionalTable(dp, []model.Condition{{Field: &dp.Vpc, Function: ovsdb.ConditionEqual, Value: vpc}}),
		client.WithConditionalTable(lf, []model.Condition{{Field: &lf.Vpc, Function: ovsdb.ConditionEqual, Value: vpc}}),
		client.WithConditionalTable(h, []model.Condition{{Field: &h.Vpc, Function: ovsdb.ConditionEqual, Value: vpc}}),
		client.WithConditionalTable(lb, []model.Condition{{Field: &lb.Vpc, Function: ovsdb.ConditionEqual, Value: vpc}}),
		client.WithConditionalTable(pbv, []model.Condition{{Field: &pbv.Vpc, Function: ovsdb.ConditionEqual, Value: vpc}}),
		client.WithConditionalTable(sn, []model.Condition{{Field: &sn.Vpc, Function: ovsdb.ConditionEqual, Value: vpc}}),
	}})
	if err != nil {
		return nil, fmt.Errorf("southbound: %w", err)
	}
	defer s.Close()
	w := &world{dps: map[string]*sbdb.Datapath{}, byVNI: map[int]*sbdb.Datapath{}, flows: map[string][]*sbdb.LogicalFlow{},
		chassis: map[string]*sbdb.Chassis{}}
	for _, c := range ops.Rows[sbdb.Chassis](s) {
		w.chassis[c.Name] = c
	}
	for _, d := range ops.Rows[sbdb.Datapath](s) {
		w.dps[d.UUID] = d
		if d.Type == "vpc" {
			w.vpc = d
		} else {
			w.byVNI[d.TunnelKey] = d
		}
	}
	w.bindings = ops.Rows[sbdb.PortBinding](s)
	for _, b := range w.bindings {
		if b.LogicalPort == port {
			w.inport = b
		}
	}
	for _, l := range ops.Rows[sbdb.LearnedBinding](s) {
		if l.Accepted {
			w.learned = append(w.learned, l)
		}
	}
	for _, f := range ops.Rows[sbdb.LogicalFlow](s) {
		w.flows[f.Datapath] = append(w.flows[f.Datapath], f)
	}
	for _, fs := range w.flows {
		sort.Slice(fs, func(i, j int) bool {
			if fs[i].Priority != fs[j].Priority {
				return fs[i].Priority > fs[j].Priority
			}
			return fs[i].Match < fs[j].Match
		})
	}
	for _, r := range ops.Rows[sbdb.SNAT](s) {
		w.snat = r
	}
	for _, hub := range ops.Rows[sbdb.Hub](s) {
		w.hubs = append(w.hubs, hub.Chassis...)
	}
	sort.Strings(w.hubs)
	if w.inport == nil || w.vpc == nil || w.dps[w.inport.Datapath] == nil {
		return nil, fmt.Errorf("port %s: its VPC is not compiled yet", port)
	}
	w.vxnet = w.dps[w.inport.Datapath]
	return w, nil
}

// binding is where an address of the VPC lives: a fixed IP, else an
// accepted learned address.
type binding struct {
	port    string
	mac     string
	vni     int
	chassis string // "" when bound nowhere
}

func (w *world) lookup(ip netip.Addr) (binding, bool) {
	s := ip.String()
	for _, b := range w.bindings {
		for _, a := range b.IPs {
			if a == s {
				return binding{port: b.LogicalPort, mac: b.MAC, vni: w.dps[b.Datapath].TunnelKey, chassis: deref(b.Chassis)}, true
			}
		}
	}
	for _, l := range w.learned {
		if l.IP == s {
			return binding{port: l.LogicalPort, mac: l.MAC, vni: l.Vni, chassis: l.Chassis}, true
		}
	}
	return binding{}, false
}

// chassisAt names the chassis whose VTEP is vtep, or "".
func (w *world) chassisAt(vtep netip.Addr) string {
	for name, c := range w.chassis {
		if c.EncapIP == vtep.String() {
			return name
		}
	}
	return ""
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
