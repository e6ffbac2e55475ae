package hostd

import (
	"context"
	"maps"
	"net/netip"
	"testing"
	"time"

	"github.com/courier-sdn/courier/dataplane"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// Whose handed-off SNAT connections a host installs: only for a port
// bound and translated here, sent by the chassis the port was requested
// on (or that this host saw it requested on while bound here).
func TestJudgeHandoff(t *testing.T) {
	s := func(v string) *string { return &v }
	movedHere := &sbdb.PortBinding{LogicalPort: "vm", Chassis: s("hv2"), RequestedChassis: s("hv1")}
	requestedHere := &sbdb.PortBinding{LogicalPort: "vm", Chassis: s("hv2"), RequestedChassis: s("hv2")}
	for _, c := range []struct {
		what       string
		h          *sbdb.SNATHandoff
		pb         *sbdb.PortBinding
		translated bool
		origin     string
		want       handoffVerdict
	}{
		{"from the host the port was requested on", &sbdb.SNATHandoff{ToChassis: "hv2", FromChassis: "hv1"}, movedHere, true, "", handoffInstall},
		{"its blocks not applied here yet", &sbdb.SNATHandoff{ToChassis: "hv2", FromChassis: "hv1"}, movedHere, false, "", handoffWait},
		{"not bound here yet", &sbdb.SNATHandoff{ToChassis: "hv2", FromChassis: "hv1"},
			&sbdb.PortBinding{Chassis: s("hv1"), RequestedChassis: s("hv1")}, false, "", handoffWait},
		{"not monitored", &sbdb.SNATHandoff{ToChassis: "hv2", FromChassis: "hv1"}, nil, false, "", handoffWait},
		{"this host's own, to another", &sbdb.SNATHandoff{ToChassis: "hv3", FromChassis: "hv2"}, movedHere, true, "", handoffWait},
		{"from a host the port never was on", &sbdb.SNATHandoff{ToChassis: "hv2", FromChassis: "hv3"}, movedHere, true, "", handoffRefuse},
		{"after the migration ended, from where it was", &sbdb.SNATHandoff{ToChassis: "hv2", FromChassis: "hv1"}, requestedHere, true, "hv1", handoffInstall},
		{"after the migration ended, from elsewhere", &sbdb.SNATHandoff{ToChassis: "hv2", FromChassis: "hv3"}, requestedHere, true, "hv1", handoffRefuse},
		{"a port requested here all along", &sbdb.SNATHandoff{ToChassis: "hv2", FromChassis: "hv3"}, requestedHere, true, "", handoffRefuse},
	} {
		if got := judgeHandoff("hv2", c.h, c.pb, c.translated, c.origin); got != c.want {
			t.Errorf("%s: verdict %d, want %d", c.what, got, c.want)
		}
	}
}

// fakeHandoff is a data plane whose departed ports' connections are
// kept in memory, as the pinned map keeps them across a restart.
type fakeHandoff struct {
	fakeDataplane
	conns      map[int][]dataplane.SNATHandoffConn // by ifindex, to export
	kept       map[string]dataplane.SNATDeparture
	translated map[int]dataplane.SNATPortID
}

func (f *fakeHandoff) SNATExport(ifindex int) ([]dataplane.SNATHandoffConn, error) {
	return f.conns[ifindex], nil
}
func (f *fakeHandoff) SNATImport(int, []dataplane.SNATHandoffConn) (int, int, error) {
	return 0, 0, nil
}
func (f *fakeHandoff) SNATKeepDeparted(port string, at time.Time, conns []dataplane.SNATHandoffConn) error {
	f.kept[port] = dataplane.SNATDeparture{At: at, Conns: conns}
	return nil
}
func (f *fakeHandoff) SNATDeparted() (map[string]dataplane.SNATDeparture, error) {
	return maps.Clone(f.kept), nil
}
func (f *fakeHandoff) SNATTranslated() (map[int]dataplane.SNATPortID, error) {
	return f.translated, nil
}
func (f *fakeHandoff) SNATForgetDeparted(port string) error {
	delete(f.kept, port)
	return nil
}

// A departed port's connections outlive hostd: exported when the port
// leaves, they are saved with the data plane, read back by the next
// hostd (unless they are older than the grace), and forgotten there
// once handed over.
func TestDepartedSNATSurviveARestart(t *testing.T) {
	conn := dataplane.SNATHandoffConn{Proto: 6, Port: 40000, Remote: netip.MustParseAddr("198.51.100.10"), RPort: 80,
		Ext: netip.MustParseAddr("203.0.113.100"), EPort: 1030}
	f := &fakeHandoff{conns: map[int][]dataplane.SNATHandoffConn{7: {conn}}, kept: map[string]dataplane.SNATDeparture{}}
	newDaemon := func() *Daemon {
		d := New(Config{Chassis: "hv1"})
		d.dp = f
		return d
	}
	d := newDaemon()
	d.snatPorts = map[int]*sbdb.PortBinding{7: {LogicalPort: "vm1"}}
	d.byIndex = map[int]string{7: "vm1"}
	d.exportDeparted(context.Background(), &dataplane.State{}, nil) // vm1 is no longer translated here
	if len(d.handoff.departed["vm1"].conns) != 1 || len(f.kept["vm1"].Conns) != 1 {
		t.Fatalf("vm1 left: departed %v, saved %v", d.handoff.departed, f.kept)
	}
	f.kept["old"] = dataplane.SNATDeparture{At: time.Now().Add(-handoffGrace - time.Second), Conns: []dataplane.SNATHandoffConn{conn}}

	d = newDaemon() // restarted
	if err := d.loadDeparted(); err != nil {
		t.Fatal(err)
	}
	dep, ok := d.handoff.departed["vm1"]
	if !ok || !dep.at.Equal(f.kept["vm1"].At) || len(dep.conns) != 1 || dep.conns[0] != conn {
		t.Errorf("read back %+v, want vm1's connection, left when it left", d.handoff.departed)
	}
	if _, ok := d.handoff.departed["old"]; ok || f.kept["old"].Conns != nil {
		t.Errorf("a departure older than the grace was read back (%v) or kept (%v)", ok, f.kept["old"])
	}
	d.forgetDeparted("vm1") // handed over
	if len(f.kept) != 0 || len(d.handoff.departed) != 0 {
		t.Errorf("after the handoff: saved %v, departed %v", f.kept, d.handoff.departed)
	}
}

// A port whose interface left while hostd was down is exported by the
// restarted hostd's first apply: the data plane still translates it (as
// the previous hostd left it), named by its VPC and address among the
// bindings; a port still here is not, and later applies export nothing
// more.
func TestPortLeftWhileHostdWasDown(t *testing.T) {
	conn := dataplane.SNATHandoffConn{Proto: 6, Port: 40000, Remote: netip.MustParseAddr("198.51.100.10"), RPort: 80,
		Ext: netip.MustParseAddr("203.0.113.100"), EPort: 1030}
	f := &fakeHandoff{conns: map[int][]dataplane.SNATHandoffConn{9: {conn}, 10: {conn}}, kept: map[string]dataplane.SNATDeparture{},
		translated: map[int]dataplane.SNATPortID{9: {VPC: 1, Addr: netip.MustParseAddr("10.0.1.20")}, 10: {VPC: 1, Addr: netip.MustParseAddr("10.0.1.30")}}}
	d := New(Config{Chassis: "hv1"})
	d.dp = f
	if err := d.loadDeparted(); err != nil {
		t.Fatal(err)
	}
	hv2 := "hv2"
	pbs := []*sbdb.PortBinding{
		{LogicalPort: "gone", Vpc: 1, IPs: []string{"10.0.1.20"}, Chassis: &hv2},
		{LogicalPort: "other-vpc", Vpc: 2, IPs: []string{"10.0.1.30"}}, // the same address in another VPC
		{LogicalPort: "stays", Vpc: 1, IPs: []string{"10.0.1.30"}},
	}
	d.byIndex = map[int]string{10: "stays"}
	st := &dataplane.State{SNATPorts: []dataplane.SNATPort{{Ifindex: 10}}}
	d.exportDeparted(context.Background(), st, pbs)
	if len(d.handoff.departed) != 1 || len(d.handoff.departed["gone"].conns) != 1 || len(f.kept["gone"].Conns) != 1 {
		t.Fatalf("departed %v, saved %v: want the port that left while hostd was down", d.handoff.departed, f.kept)
	}
	delete(d.handoff.departed, "gone")
	d.exportDeparted(context.Background(), &dataplane.State{}, pbs)
	if len(d.handoff.departed) != 0 {
		t.Errorf("a later apply exported %v again", d.handoff.departed)
	}
}
