package hostd

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/courier-sdn/courier/dataplane"
	"github.com/courier-sdn/courier/internal/testenv"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// hubWorld is a VPC's rows as a random history leaves them.
type hubWorld struct {
	r     *rand.Rand
	dps   map[string]*sbdb.Datapath
	encap map[string]netip.Addr
	pbs   map[string]*sbdb.PortBinding
	lbs   map[string]*sbdb.LearnedBinding
	ch    ops.Changes
	n     int
}

func (w *hubWorld) changed(table, uuid string, row any) {
	if w.ch.Tables[table] == nil {
		w.ch.Tables[table] = map[string]*ops.Change{}
	}
	c := &ops.Change{UUID: uuid}
	switch r := row.(type) {
	case *sbdb.PortBinding:
		if r != nil {
			c.New = r
		}
	case *sbdb.LearnedBinding:
		if r != nil {
			c.New = r
		}
	case *sbdb.Datapath:
		c.New = r
	}
	w.ch.Tables[table][uuid] = c
}

// A small pool of addresses and chassis, so that rows collide: two ports
// on one address, a learned address shadowed by a fixed one.
func (w *hubWorld) ip() string      { return fmt.Sprintf("10.0.1.%d", 2+w.r.IntN(12)) }
func (w *hubWorld) chassis() string { return fmt.Sprintf("hv%d", 1+w.r.IntN(5)) } // hv5 has no tunnel address
func (w *hubWorld) dp() string      { return fmt.Sprintf("dp%d", w.r.IntN(3)) }

func (w *hubWorld) step() (reload bool) {
	w.n++
	uuid := fmt.Sprintf("u%03d", w.r.IntN(40))
	switch op := w.r.IntN(20); {
	case op < 8: // a port bound, moved, re-addressed, or unbound
		pb := &sbdb.PortBinding{UUID: uuid, Vpc: 1, Datapath: w.dp(), MAC: fmt.Sprintf("02:00:00:00:00:%02x", w.n%256), IPs: []string{w.ip()}}
		if w.r.IntN(4) == 0 {
			pb.IPs = append(pb.IPs, w.ip())
		}
		switch c := w.chassis(); w.r.IntN(3) {
		case 0:
			pb.Chassis = &c
		case 1:
			pb.RequestedChassis = &c
		}
		w.pbs[uuid] = pb
		w.changed(sbdb.PortBindingTable, uuid, pb)
	case op < 11:
		delete(w.pbs, uuid)
		w.changed(sbdb.PortBindingTable, uuid, (*sbdb.PortBinding)(nil))
	case op < 16: // an address learned, moved, accepted or refused
		lb := &sbdb.LearnedBinding{UUID: uuid, Vpc: 1, Vni: 5001, IP: w.ip(), Chassis: w.chassis(), Accepted: w.r.IntN(4) > 0,
			MAC: fmt.Sprintf("02:00:00:00:01:%02x", w.n%256)}
		w.lbs[uuid] = lb
		w.changed(sbdb.LearnedBindingTable, uuid, lb)
	case op < 18:
		delete(w.lbs, uuid)
		w.changed(sbdb.LearnedBindingTable, uuid, (*sbdb.LearnedBinding)(nil))
	case op < 19: // a chassis' tunnel address changed
		w.encap[w.chassis()] = netip.AddrFrom4([4]byte{192, 168, 1, byte(w.r.IntN(250))})
		delete(w.encap, "hv5")
		return true
	default: // a vxnet's VNI changed
		id := w.dp()
		w.dps[id] = &sbdb.Datapath{UUID: id, TunnelKey: 5000 + w.r.IntN(10)}
		w.changed(sbdb.DatapathTable, id, w.dps[id])
	}
	return false
}

// TestHubTableEqualsFull: a hub's table kept row by row equals the whole
// computation after every step of random histories, and what it reports
// as moved is exactly what changed.
func TestHubTableEqualsFull(t *testing.T) {
	for seed := uint64(1); seed <= 30; seed++ {
		w := &hubWorld{r: rand.New(rand.NewPCG(seed, 7)), dps: map[string]*sbdb.Datapath{}, encap: map[string]netip.Addr{},
			pbs: map[string]*sbdb.PortBinding{}, lbs: map[string]*sbdb.LearnedBinding{}}
		for i := 0; i < 3; i++ {
			w.dps[fmt.Sprintf("dp%d", i)] = &sbdb.Datapath{UUID: fmt.Sprintf("dp%d", i), TunnelKey: 5001 + i}
		}
		for i := 1; i <= 4; i++ {
			w.encap[fmt.Sprintf("hv%d", i)] = netip.AddrFrom4([4]byte{192, 168, 1, byte(i)})
		}
		h := newHubTable()
		before := map[bindingKey]dataplane.Binding{}
		reloads := 0
		for i := 0; i < 300; i++ {
			w.ch = ops.Changes{Tables: map[string]map[string]*ops.Change{}}
			reload := w.step()
			if i == 0 || reload || len(w.ch.Table(sbdb.DatapathTable)) > 0 {
				reloads++
			}
			v := vpcSnapshot{vpc: 1, hub: true, dps: w.dps}
			for _, pb := range w.pbs {
				v.bindings = append(v.bindings, pb)
			}
			for _, lb := range w.lbs {
				v.learned = append(v.learned, lb)
			}
			reload = h.encapChanged(w.encap) || reload
			h.refresh(v, "session", w.ch, reload, func() ([]*sbdb.PortBinding, []*sbdb.LearnedBinding) { return v.bindings, v.learned }, w.encap)
			full := map[bindingKey]dataplane.Binding{}
			hubBindings(v, w.encap, full)
			if g, f := fmt.Sprint(h.kernel.All()), fmt.Sprint(sorted(full)); g != f {
				t.Fatalf("seed %d step %d: row by row\n%s\nwhole\n%s", seed, i, g, f)
			}
			moved := h.takeMoved()
			for k, b := range full {
				if o, ok := before[k]; !ok || !o.Equal(b) {
					if _, ok := moved[k]; !ok {
						t.Fatalf("seed %d step %d: %v changed, not reported moved", seed, i, k)
					}
				}
			}
			for k, old := range moved {
				o, had := before[k]
				if had != (old != nil) || had && !o.Equal(*old) {
					t.Fatalf("seed %d step %d: %v reported moved from %v, was %v", seed, i, k, old, o)
				}
			}
			before = full
		}
		if h.reloads != reloads {
			t.Fatalf("seed %d: the VPC was read afresh %d times, want %d (only when a tunnel address or a VNI changed)", seed, h.reloads, reloads)
		}
		h.dropVPC(1)
		if h.kernel.Len() != 0 {
			t.Fatalf("seed %d: %d bindings left after the VPC was dropped", seed, h.kernel.Len())
		}
	}
}

func sorted(m map[bindingKey]dataplane.Binding) []dataplane.Binding {
	t := dataplane.NewBindingTable()
	for _, b := range m {
		t.Set(b)
	}
	return t.All()
}

// A hub keeping its table row by row tells the senders it taught about
// an address where its binding went, that it is gone, or, to a sender it
// told the address was unknown, the binding that has just appeared.
func TestTeachMovedTellsWhoWasTaught(t *testing.T) {
	encap := map[string]netip.Addr{"hv2": netip.MustParseAddr("192.168.0.2"), "hv3": netip.MustParseAddr("192.168.0.3")}
	v := vpcSnapshot{vpc: 7, hub: true, dps: map[string]*sbdb.Datapath{"dp": {UUID: "dp", TunnelKey: 11}}}
	hv2, hv3 := "hv2", "hv3"
	pb := func(uuid, ip string, at *string) *sbdb.PortBinding {
		return &sbdb.PortBinding{UUID: uuid, Vpc: 7, Datapath: "dp", IPs: []string{ip}, MAC: "02:00:00:00:00:01", Chassis: at}
	}
	h := newHubTable()
	h.encapChanged(encap)
	h.refresh(v, "s", ops.Changes{}, false, func() ([]*sbdb.PortBinding, []*sbdb.LearnedBinding) {
		return []*sbdb.PortBinding{pb("a", "10.0.1.5", &hv2), pb("b", "10.0.1.6", &hv2)}, nil
	}, encap)
	h.takeMoved()
	sender := netip.MustParseAddr("192.168.0.9")
	k5, k6, k7 := bindingKey{7, ip("10.0.1.5")}, bindingKey{7, ip("10.0.1.6")}, bindingKey{7, ip("10.0.1.7")}
	fd := &fakeDataplane{taught: map[bindingKey][]netip.Addr{k5: {sender}, k6: {sender}, k7: {sender}}}
	fs := &fakeSender{}
	d := &Daemon{dp: fd, sender: fs, log: testenv.Logger(t)}
	ch := ops.Changes{Tables: map[string]map[string]*ops.Change{sbdb.PortBindingTable: {
		"a": {UUID: "a", New: pb("a", "10.0.1.5", &hv3)}, // moved
		"b": {UUID: "b"},                                 // gone
		"c": {UUID: "c", New: pb("c", "10.0.1.7", &hv3)}, // new; the sender was told it was unknown
	}}}
	h.refresh(v, "s", ch, false, nil, encap)
	d.teachMoved(h, map[uint32]bool{7: true})
	slices.Sort(fs.sent)
	want := []string{"192.168.0.9 10.0.1.5 learn 192.168.0.3", "192.168.0.9 10.0.1.6 forget", "192.168.0.9 10.0.1.7 learn 192.168.0.3"}
	if !slices.Equal(fs.sent, want) {
		t.Errorf("sent %q, want %q", fs.sent, want)
	}
	// Nothing moved since: nothing sent; a VPC no longer served: nothing.
	fs.sent = nil
	d.teachMoved(h, map[uint32]bool{7: true})
	h.refresh(v, "s", ops.Changes{Tables: map[string]map[string]*ops.Change{sbdb.PortBindingTable: {"a": {UUID: "a"}}}}, false, nil, encap)
	d.teachMoved(h, map[uint32]bool{})
	if len(fs.sent) != 0 {
		t.Errorf("sent %q, want nothing", fs.sent)
	}
}

// hubBindings adds every binding of a VPC this host is a hub of: bound
// ports' fixed IPs, then the learned addresses southd accepted (it alone
// picks the holder of a contested address). A learned address never
// shadows a fixed one: southd refuses such a row, and until it has, the
// fixed binding stands. Between two rows giving one address (a moment
// while a port moves), the lower row UUID wins. This is the whole
// computation, the reference the hub's table kept row by row (hubTable)
// is held to.
func hubBindings(v vpcSnapshot, encap map[string]netip.Addr, out map[bindingKey]dataplane.Binding) {
	by := map[bindingKey]string{}
	fixed := map[bindingKey]bool{}
	for _, pb := range v.bindings {
		for _, b := range fixedBindings(pb, v.dps, encap) {
			k := bindingKey{b.VPC, b.IP}
			if u, ok := by[k]; !ok || pb.UUID < u {
				out[k], by[k] = b, pb.UUID
			}
			fixed[k] = true
		}
	}
	for _, lb := range v.learned {
		for _, b := range learnedBindings(lb, encap) {
			k := bindingKey{b.VPC, b.IP}
			if fixed[k] {
				continue
			}
			if u, ok := by[k]; !ok || lb.UUID < u {
				out[k], by[k] = b, lb.UUID
			}
		}
	}
}
