package northd

import (
	"fmt"
	"math/rand"
	"strings"
	"testing"

	"github.com/courier-sdn/courier/schema/nbdb"
)

// dynNB is a northbound with one VPC and one vxnet, for allocator tests.
type dynNB struct {
	*fakeNB
	vx string
}

func newDynNB(cidr, exclude string) *dynNB {
	f := newFakeNB()
	vx := &nbdb.Vxnet{UUID: f.uuid(), Name: "web", Cidr: cidr}
	if exclude != "" {
		vx.Options = map[string]string{"exclude_ips": exclude}
	}
	f.put(nbdb.VxnetTable, vx)
	f.put(nbdb.VPCTable, &nbdb.VPC{UUID: f.uuid(), Name: "prod", Vxnets: []string{vx.UUID}})
	return &dynNB{f, vx.UUID}
}

// addPorts adds ports to the vxnet in one transaction.
func (d *dynNB) addPorts(ps ...*nbdb.Port) {
	vx := *d.get(nbdb.VxnetTable, d.vx).(*nbdb.Vxnet)
	for _, p := range ps {
		p.UUID = d.uuid()
		d.put(nbdb.PortTable, p)
		vx.Ports = append(append([]string{}, vx.Ports...), p.UUID)
	}
	d.put(nbdb.VxnetTable, &vx)
}

func dynPort(name string) *nbdb.Port {
	return &nbdb.Port{Name: name, MAC: "dynamic", IPs: []string{"dynamic"}}
}

// step feeds the pending changes to the compiler and, if writeBack, writes
// statuses and dynamic_addresses back as northd does.
func (d *dynNB) step(n *compiler, writeBack bool) {
	n.pendingNB.Merge(d.drain())
	n.run(false)
	n.consumed()
	if writeBack {
		d.writeStatuses(n)
	}
}

// addrs lists each port's compiled MAC, IPs or refusal, by name.
func addrs(n *compiler) map[string]string {
	out := map[string]string{}
	for _, p := range n.ports.ports {
		if p.err != "" {
			out[p.name] = "error: " + p.err
		} else {
			out[p.name] = p.mac + " " + strings.Join(p.ips, ",")
		}
	}
	return out
}

func fresh(d *dynNB) *compiler {
	n := newCompiler()
	n.pendingNB = d.all()
	n.run(true)
	return n
}

func TestDynamicSkipsReservedAndRefusesWhenFull(t *testing.T) {
	// 10.0.5.0/29: .1 gateway, .2-.3 excluded, .4 fixed, .5 and .6 free.
	d := newDynNB("10.0.5.0/29", "10.0.5.2..10.0.5.3")
	n := newCompiler()
	d.step(n, true)
	d.addPorts(&nbdb.Port{Name: "fixed", MAC: "02:00:00:00:00:04", IPs: []string{"10.0.5.4"}},
		dynPort("a"), &nbdb.Port{Name: "b", MAC: "02:00:00:00:00:0b", IPs: []string{"dynamic"}}, dynPort("c"))
	d.step(n, true)
	d.step(n, true)
	got := addrs(n)
	if !strings.HasSuffix(got["a"], " 10.0.5.5") || !strings.HasPrefix(got["a"], "0a:58:00:") {
		t.Errorf("a = %q, want a 0a:58:00 MAC and 10.0.5.5", got["a"])
	}
	if got["b"] != "02:00:00:00:00:0b 10.0.5.6" {
		t.Errorf("b = %q, want its fixed MAC and 10.0.5.6", got["b"])
	}
	if got["c"] != "error: no free IP left in vxnet web for a dynamic address" {
		t.Errorf("c = %q, want refused for a full vxnet", got["c"])
	}
	cRow := d.rowNamed("c")
	if cRow.DynamicAddresses != nil || cRow.Status["state"] != "error" {
		t.Errorf("c's row: dynamic_addresses %v, status %v; want none and an error", cRow.DynamicAddresses, cRow.Status)
	}
	aRow := d.rowNamed("a")
	if aRow.DynamicAddresses == nil || *aRow.DynamicAddresses != got["a"] {
		t.Errorf("a's dynamic_addresses %v, want %q", aRow.DynamicAddresses, got["a"])
	}
	// Deleting the fixed port frees .4 for c; a and b keep theirs.
	d.delPort("fixed")
	d.step(n, true)
	d.step(n, true)
	now := addrs(n)
	if now["a"] != got["a"] || now["b"] != got["b"] || !strings.HasSuffix(now["c"], " 10.0.5.4") {
		t.Errorf("after freeing 10.0.5.4: %v", now)
	}
}

func (d *dynNB) rowNamed(name string) *nbdb.Port {
	for _, m := range d.rows[nbdb.PortTable] {
		if p := m.(*nbdb.Port); p.Name == name {
			return p
		}
	}
	return nil
}

func (d *dynNB) delPort(name string) {
	p := d.rowNamed(name)
	vx := *d.get(nbdb.VxnetTable, d.vx).(*nbdb.Vxnet)
	var keep []string
	for _, u := range vx.Ports {
		if u != p.UUID {
			keep = append(keep, u)
		}
	}
	vx.Ports = keep
	d.put(nbdb.VxnetTable, &vx)
	d.del(nbdb.PortTable, p.UUID)
}

// A fixed port that takes a dynamic port's address wins; the dynamic one
// moves to the lowest free address.
func TestFixedPortMovesDynamicOne(t *testing.T) {
	d := newDynNB("10.0.5.0/24", "")
	n := newCompiler()
	d.step(n, true)
	d.addPorts(dynPort("dyn"), &nbdb.Port{Name: "fixed", MAC: "02:00:00:00:00:09", IPs: []string{"10.0.5.9"}})
	d.step(n, true)
	d.step(n, true)
	if got := addrs(n)["dyn"]; !strings.HasSuffix(got, " 10.0.5.2") {
		t.Fatalf("dyn = %q, want 10.0.5.2", got)
	}
	mac := strings.Fields(addrs(n)["dyn"])[0]
	f := *d.rowNamed("fixed")
	f.IPs, f.MAC = []string{"10.0.5.2"}, mac
	d.put(nbdb.PortTable, &f)
	d.step(n, true)
	d.step(n, true)
	got := addrs(n)
	if got["fixed"] != mac+" 10.0.5.2" || strings.HasSuffix(got["dyn"], " 10.0.5.2") || strings.HasPrefix(got["dyn"], mac) ||
		!strings.HasSuffix(got["dyn"], " 10.0.5.3") {
		t.Fatalf("after the fixed port took dyn's MAC and IP: %v", got)
	}
	if a, b := southbound(n), southbound(fresh(d)); a != b {
		t.Fatalf("a restarted northd compiles differently:\n%s", diffLines(a, b))
	}
}

// 200 ports, fixed and dynamic, added in random order in several
// transactions: no two valid ports share a MAC or an IP; without write
// backs in between, the result is the bulk add's; with them (as the
// daemon runs), a restarted northd computes the same addresses.
func TestDynamicAddressesOrderIndependent(t *testing.T) {
	ports := func() []*nbdb.Port {
		var ps []*nbdb.Port
		for i := 0; i < 200; i++ {
			switch i % 4 {
			case 0:
				ps = append(ps, &nbdb.Port{Name: fmt.Sprintf("p%03d", i), MAC: fmt.Sprintf("02:00:00:00:01:%02x", i),
					IPs: []string{fmt.Sprintf("10.0.8.%d", 10+i)}})
			case 1:
				ps = append(ps, &nbdb.Port{Name: fmt.Sprintf("p%03d", i), MAC: fmt.Sprintf("02:00:00:00:01:%02x", i),
					IPs: []string{"dynamic"}})
			default:
				ps = append(ps, dynPort(fmt.Sprintf("p%03d", i)))
			}
		}
		return ps
	}
	bulk := newDynNB("10.0.8.0/23", "10.0.8.2..10.0.8.5 10.0.9.0")
	nb := newCompiler()
	bulk.addPorts(ports()...)
	bulk.step(nb, false)
	want := addrs(nb)
	checkUnique(t, want)
	if len(want) != 200 || want["p001"] != "02:00:00:00:01:01 10.0.8.6" || want["p002"] != want["p002"][:17]+" 10.0.8.7" {
		t.Fatalf("bulk add: %d ports, p001 = %q, p002 = %q (want the first free addresses, .6 and .7)", len(want), want["p001"], want["p002"])
	}
	for seed := int64(1); seed <= 5; seed++ {
		for _, writeBack := range []bool{false, true} {
			r := rand.New(rand.NewSource(seed))
			d := newDynNB("10.0.8.0/23", "10.0.8.2..10.0.8.5 10.0.9.0")
			n := newCompiler()
			d.step(n, writeBack)
			ps := ports()
			r.Shuffle(len(ps), func(i, j int) { ps[i], ps[j] = ps[j], ps[i] })
			for len(ps) > 0 {
				k := min(len(ps), 1+r.Intn(40))
				d.addPorts(ps[:k]...)
				ps = ps[k:]
				d.step(n, writeBack)
			}
			d.step(n, writeBack)
			d.step(n, writeBack)
			got := addrs(n)
			checkUnique(t, got)
			if !writeBack {
				for name, a := range want {
					if got[name] != a {
						t.Errorf("seed %d: %s = %q, bulk add gave %q", seed, name, got[name], a)
					}
				}
			}
			if a, b := southbound(n), southbound(fresh(d)); a != b {
				t.Fatalf("seed %d (write back %v): a restarted northd compiles differently:\n%s", seed, writeBack, diffLines(a, b))
			}
		}
	}
}

func checkUnique(t *testing.T, got map[string]string) {
	t.Helper()
	seen := map[string]string{}
	for name, a := range got {
		if strings.HasPrefix(a, "error") {
			t.Errorf("%s refused: %s", name, a)
			continue
		}
		f := strings.Fields(a)
		for _, v := range append([]string{f[0]}, strings.Split(f[1], ",")...) {
			if o, ok := seen[v]; ok {
				t.Errorf("%s and %s both hold %s", name, o, v)
			}
			seen[v] = name
		}
		for _, r := range []string{"10.0.8.0", "10.0.8.1", "10.0.8.2", "10.0.8.3", "10.0.8.4", "10.0.8.5", "10.0.9.0", "10.0.9.255"} {
			if f[1] == r {
				t.Errorf("%s got the reserved %s", name, r)
			}
		}
	}
}

// A passing mistake refuses dynamic ports without losing their
// addresses: once it is repaired, each port has its old ones back.
func TestRefusalKeepsDynamicAddresses(t *testing.T) {
	d := newDynNB("10.0.5.0/24", "")
	n := newCompiler()
	d.step(n, true)
	d.addPorts(dynPort("d1"))
	d.step(n, true)
	d.addPorts(&nbdb.Port{Name: "d0", MAC: "02:00:00:00:00:0d", IPs: []string{"dynamic"}})
	d.step(n, true)
	d.step(n, true)
	want := addrs(n)
	setOpts := func(exclude, prefix string) {
		vx := *d.get(nbdb.VxnetTable, d.vx).(*nbdb.Vxnet)
		vx.Options = map[string]string{"exclude_ips": exclude}
		d.put(nbdb.VxnetTable, &vx)
		gl := *d.get(nbdb.NBGlobalTable, "global").(*nbdb.NBGlobal)
		gl.Options = map[string]string{"mac_prefix": prefix}
		d.put(nbdb.NBGlobalTable, &gl)
		d.step(n, true)
		d.step(n, true)
	}
	setOpts("bogus", "")
	if got := addrs(n); !strings.HasPrefix(got["d0"], "error: vxnet web's options:exclude_ips") || !strings.HasPrefix(got["d1"], "error:") {
		t.Fatalf("with a bad exclude_ips: %v", got)
	}
	setOpts("", "01:00:00") // d0 (fixed MAC) comes back first, alone
	if got := addrs(n); got["d0"] != want["d0"] || !strings.HasPrefix(got["d1"], "error: NB_Global options:mac_prefix") {
		t.Fatalf("with a multicast mac_prefix: %v, before %v", got, want)
	}
	setOpts("", "")
	if got := addrs(n); got["d0"] != want["d0"] || got["d1"] != want["d1"] {
		t.Fatalf("repaired: %v, before %v", got, want)
	}
	if a, b := southbound(n), southbound(fresh(d)); a != b {
		t.Fatalf("a restarted northd compiles differently:\n%s", diffLines(a, b))
	}
}
