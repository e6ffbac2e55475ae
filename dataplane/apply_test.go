package dataplane

import (
	"net/netip"
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
