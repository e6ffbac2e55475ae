package hostd

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/vishvananda/netlink"

	"github.com/courier-sdn/courier/dataplane"
	"github.com/courier-sdn/courier/internal/testenv"
)

// The programs are told of each kind of routing change in the host's
// namespace: an interface added (a link message alone: it is down), an
// address (its routes' messages), a route added and deleted (a route
// message alone: the interface and its address are there), a policy
// rule, the interface down.
func TestRoutingChangesAreTold(t *testing.T) {
	name := "ch" + testenv.ID() + "-routes"
	ns := testNS(t, name)
	// No IPv6: its addresses' messages (duplicate address detection
	// done) come when they will, and would blur which watch told.
	if out, err := exec.Command("ip", "netns", "exec", name, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
		"net.ipv6.conf.default.disable_ipv6=1").CombinedOutput(); err != nil {
		t.Fatalf("disable IPv6: %v: %s", err, out)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	told := make(chan struct{}, 64)
	log := testenv.Logger(t)
	go watchRouting(ctx, routeWatch{ns: ns, log: log, changed: func() error { told <- struct{}{}; return nil }, told: func() {}})
	// quiet drains the tellings until none came for a while.
	quiet := func() {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case <-told:
			case <-time.After(300 * time.Millisecond):
				return
			case <-deadline:
				t.Fatal("the programs are told without end, with nothing changing")
			}
		}
	}
	expect := func(what string, change func() error) {
		t.Helper()
		quiet()
		if err := change(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		select {
		case <-told:
		case <-time.After(5 * time.Second):
			t.Errorf("%s: the programs were not told", what)
		}
	}
	la := netlink.LinkAttrs{Name: "rt0"}
	veth := &netlink.Veth{LinkAttrs: la, PeerName: "rt1"}
	expect("an interface added", func() error { return h.LinkAdd(veth) })
	if err := h.LinkSetUp(veth); err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetUp(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "rt1"}}); err != nil {
		t.Fatal(err)
	}
	addr, _ := netlink.ParseAddr("192.0.2.1/24")
	expect("an address added", func() error { return h.AddrAdd(veth, addr) })
	l, err := h.LinkByName("rt0")
	if err != nil {
		t.Fatal(err)
	}
	r := &netlink.Route{LinkIndex: l.Attrs().Index, Dst: &net.IPNet{IP: net.IPv4(198, 51, 100, 0), Mask: net.CIDRMask(24, 32)},
		Gw: net.IPv4(192, 0, 2, 2)}
	expect("a route added", func() error { return h.RouteAdd(r) })
	expect("a route deleted", func() error { return h.RouteDel(r) })
	rule := netlink.NewRule()
	rule.Table, rule.Priority = 100, 1000
	expect("a rule added", func() error { return h.RuleAdd(rule) })
	expect("the interface down (its routes go without a route message)", func() error { return h.LinkSetDown(veth) })
}

// underlayFake is a data plane whose underlay upkeep says what the test
// sets.
type underlayFake struct {
	fakeDataplane
	from, to int
	mtu      int
	again    bool
	err      error
}

func (f *underlayFake) FollowUnderlay() (dataplane.Underlay, error) {
	return dataplane.Underlay{From: f.from, To: f.to, MTU: f.mtu}, f.err
}
func (f *underlayFake) KeepForwarding() (bool, error) { return f.again, f.err }

// The underlay upkeep logs and counts a change, says nothing when
// nothing changed, and warns of an error once in a while, not each
// second.
func TestUnderlayUpkeepSaysWhatChanged(t *testing.T) {
	var buf bytes.Buffer
	f := &underlayFake{from: 3, to: 3, mtu: 1500}
	d := &Daemon{dp: f, m: NewMetrics(nil), log: slog.New(slog.NewTextHandler(&buf, nil))}
	limit := &logLimiter{every: time.Hour, last: map[string]time.Time{}}
	step := func(what string, wantLog string, wantChanges, wantResets float64) {
		t.Helper()
		buf.Reset()
		d.keepForwarding(limit)
		if mtu := d.followUnderlay(limit); mtu != f.mtu {
			t.Errorf("%s: the underlay's MTU read as %d, want %d", what, mtu, f.mtu)
		}
		if wantLog == "" && buf.Len() > 0 || !strings.Contains(buf.String(), wantLog) {
			t.Errorf("%s: logged %q, want %q", what, buf.String(), wantLog)
		}
		if c, r := counted(t, d.m.underlayChanges), counted(t, d.m.forwardingResets); c != wantChanges || r != wantResets {
			t.Errorf("%s: %v underlay changes and %v forwarding resets counted, want %v and %v", what, c, r, wantChanges, wantResets)
		}
	}
	step("nothing changed", "", 0, 0)
	f.to = 7
	step("a new interface", "to_ifindex=7 from_ifindex=3", 1, 0)
	f.from, f.to, f.again = 7, 7, true
	step("forwarding found off", "turned it on again", 1, 1)
	f.again, f.err = false, errors.New("dump interrupted")
	step("an error", "dump interrupted", 1, 1)
	step("the same error a second later", "", 1, 1)
}

// counted is a counter's value.
func counted(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// mtuFake is a data plane whose VXLAN device's MTU is recorded, and
// refused while refuse is set.
type mtuFake struct {
	fakeDataplane
	device int
	refuse error
}

func (f *mtuFake) SetVXLANMTU(mtu int) error {
	if f.refuse != nil {
		return f.refuse
	}
	f.device = mtu
	return nil
}

// The VMs' MTU follows the underlay's: read at start, and a change
// found later is logged, shown in the gauge and applied at once (a
// reconcile is asked for), with the VXLAN device's MTU; an underlay not
// found changes nothing, a device that refuses is tried again (VMs
// follow meanwhile), and an underlay too small or too large for VMs
// gives them 576 or 9000.
func TestVMsMTUFollowsTheUnderlay(t *testing.T) {
	var buf bytes.Buffer
	under := 1500
	f := &mtuFake{}
	d := &Daemon{dp: f, m: NewMetrics(nil), log: slog.New(slog.NewTextHandler(&buf, nil)), notify: make(chan struct{}, 1)}
	limit := &logLimiter{every: time.Hour, last: map[string]time.Time{}}
	step := func(what string, wantMTU int32, wantDevice int, wantLog string, wantKick bool) {
		t.Helper()
		buf.Reset()
		d.followMTU(under, limit)
		kicked := false
		select {
		case <-d.notify:
			kicked = true
		default:
		}
		var m dto.Metric
		d.m.vmMTU.Write(&m)
		if got := d.mtu.Load(); got != wantMTU || m.GetGauge().GetValue() != float64(wantMTU) {
			t.Errorf("%s: MTU %d (gauge %v), want %d", what, got, m.GetGauge().GetValue(), wantMTU)
		}
		if f.device != wantDevice {
			t.Errorf("%s: the VXLAN device's MTU %d, want %d", what, f.device, wantDevice)
		}
		if wantLog == "" && buf.Len() > 0 || !strings.Contains(buf.String(), wantLog) {
			t.Errorf("%s: logged %q, want %q", what, buf.String(), wantLog)
		}
		if kicked != wantKick {
			t.Errorf("%s: a reconcile asked for: %v, want %v", what, kicked, wantKick)
		}
	}
	step("at start", 1450, 1450, "from the underlay's", true)
	step("unchanged", 1450, 1450, "", false)
	under = 9000
	step("jumbo frames", 8950, 8950, "mtu=8950 was=1450 underlay_mtu=9000", true)
	under = 0
	step("the underlay gone", 8950, 8950, "", false)
	under = 1400
	f.refuse = errors.New("invalid argument")
	step("lowered, the device refusing", 1350, 8950, "the VXLAN device does not follow", true)
	if !strings.Contains(buf.String(), "mtu=1350 was=8950") {
		t.Errorf("lowered, the device refusing: VMs' new MTU not logged: %q", buf.String())
	}
	step("the device refuses a second later", 1350, 8950, "", false)
	f.refuse = nil
	step("the device follows", 1350, 1350, "", false)
	under = 600
	step("too small for VMs", 576, 550, "less than 576 bytes: they get 576", true)
	step("too small, a second later", 576, 550, "", false)
	under = 65536
	step("a loopback's", 9000, 65486, "mtu=9000 was=576", true)
}
