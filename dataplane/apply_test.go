package dataplane

import (
	"net/netip"
	"strings"
	"testing"
)

// A VM interface gets the DVR as soon as it is known, drops what it sends
// until its port is programmed, and programming the port then only
// writes map entries.
func TestInterfacesAttachedAhead(t *testing.T) {
	f := newFixture(t, false)
	q := veth(t, "q1")
	st := *f.state
	st.Interfaces = []int{q}
	as, err := f.d.Apply(&st)
	if err != nil {
		t.Fatal(err)
	}
	if as.Attached != 1 || as.Written != 0 {
		t.Fatalf("interface only: %+v, want one attach and no writes", as)
	}
	if _, ok := f.d.ports[q]; !ok {
		t.Fatal("no program on the interface")
	}
	vm9MAC := mac("02:00:00:00:01:09")
	pkt := udpPkt(vm1MAC, vm9MAC, ip4("10.0.1.9"), ip4("10.0.1.5"), 64, 10)
	expectDrop(t, f.d, "no_port", func() runResult { return run(t, f.d.objs.PortIngress, q, pkt) })

	st.Ports = append(append([]Port{}, st.Ports...), Port{Ifindex: q, Name: "vm9", VNI: 5001, VPC: 1, MAC: vm9MAC,
		MTU: 1450, Security: true, IPs: []netip.Addr{ip4("10.0.1.9")}})
	if as, err = f.d.Apply(&st); err != nil {
		t.Fatal(err)
	}
	if as.Attached != 0 || as.Written == 0 {
		t.Fatalf("port declared: %+v, want writes and no attach", as)
	}
	if r := run(t, f.d.objs.PortIngress, q, pkt); r.verdict == actShot {
		t.Fatal("the programmed port still drops")
	}

	st.Ports, st.Interfaces = f.state.Ports, nil
	if as, err = f.d.Apply(&st); err != nil {
		t.Fatal(err)
	}
	if as.Detached != 1 {
		t.Fatalf("interface gone: %+v, want one detach", as)
	}
}

// A packet is delivered to a new port only once the port can answer:
// its entry is written and its program attached before the local
// delivery entry, in the same Apply. Written the other way round, a
// VM pinged the moment it was delivered to sent its gateway ARP before
// its port existed, lost it (no_port), and answered a second later.
func TestNewPortAnswersBeforeDelivery(t *testing.T) {
	f := newFixture(t, false)
	q := veth(t, "q2")
	ip := ip4("10.0.1.9")
	delivered := func() bool {
		locals, err := f.d.localsT().dump()
		if err != nil {
			t.Fatal(err)
		}
		_, ok := locals[epKey(BindingKey{VPC: 1, IP: ip})]
		return ok
	}
	var steps []string
	f.d.stepped = func(s string) {
		steps = append(steps, s)
		_, port := f.d.ports[q]
		switch {
		case s != "local_eps" && delivered():
			t.Errorf("before writing %s, packets are already delivered to the new port", s)
		case s == "local_eps" && !port:
			t.Errorf("delivery to the new port is written before its program is attached")
		}
	}
	st := *f.state
	st.Ports = append(append([]Port{}, st.Ports...), Port{Ifindex: q, Name: "vm9", VNI: 5001, VPC: 1, MAC: mac("02:00:00:00:01:09"),
		MTU: 1450, Security: true, IPs: []netip.Addr{ip}})
	as, err := f.d.Apply(&st)
	if err != nil {
		t.Fatal(err)
	}
	if as.Attached != 1 || !delivered() {
		t.Fatalf("new port and interface: %+v, delivered %v; want an attach and delivery", as, delivered())
	}
	if got := strings.Join(steps, ","); got != "routes,ports,local_eps" {
		t.Fatalf("Apply's steps: %s", got)
	}
}

// The hub map is sized when the programs load: a hub's holds its VPCs'
// bindings (131,072 did not fit a 256,000-port VPC), a host that is
// not a hub gets a small one, and a capacity changed across a restart
// replaces the pinned map instead of failing to load beside it.
func TestHubMapSizedAtLoad(t *testing.T) {
	inNetns(t)
	underlay(t, hubIP)
	capacity := func(d *Datapath) uint32 { return d.objs.HubEpsV1.MaxEntries() }
	d := loadTest(t, Config{VTEP: hubIP, Hub: true, HubBindings: 5000})
	if c := capacity(d); c != 5000 {
		t.Fatalf("hub map of a hub asked for 5000: %d entries", c)
	}
	cfg := d.cfg
	d.Close()
	cfg.HubBindings = 0
	d2, err := Load(cfg)
	if err != nil {
		t.Fatalf("reload with another capacity: %v", err)
	}
	t.Cleanup(func() { d2.Destroy() })
	if c := capacity(d2); c != DefaultHubBindings {
		t.Fatalf("hub map after the reload: %d entries, want %d", c, DefaultHubBindings)
	}
	d2.Close()
	cfg.Hub = false
	d3, err := Load(cfg)
	if err != nil {
		t.Fatalf("reload as a host that is not a hub: %v", err)
	}
	t.Cleanup(func() { d3.Destroy() })
	if c := capacity(d3); c != nonHubBindings {
		t.Fatalf("hub map of a host that is not a hub: %d entries, want %d", c, nonHubBindings)
	}
}
