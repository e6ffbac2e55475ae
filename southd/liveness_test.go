package southd

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/courier-sdn/courier/ops/sbops"
	"github.com/courier-sdn/courier/schema/sbdb"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
)

// A chassis that registers between the judgment and the pass that writes
// it (its row is in the session's cache, not yet in alive) waits for the
// next pass: it is not declared dead at first sight, nor are its ports
// marked down. CI once saw "alive=false first_judgment=true" for a host
// that had just started, 28 ms before it was judged alive.
func TestUnjudgedChassisIsNotDeclaredDead(t *testing.T) {
	var logs bytes.Buffer
	d := New(Config{Log: slog.New(slog.NewTextHandler(&logs, nil))})
	yes, no := true, false
	privs := []*sbdb.ChassisPrivate{
		{UUID: "c1", Name: "hv1", Alive: &yes}, // judged alive, as recorded
		{UUID: "c2", Name: "hv2", Alive: &yes}, // judged dead now
		{UUID: "c3", Name: "hv3"},              // registered after the judgment
		{UUID: "c4", Name: "hv4", Alive: &no},  // re-registered, as above
	}
	alive := map[string]bool{"hv1": true, "hv2": false}
	pbs := []*sbdb.PortBinding{
		{UUID: "p1", LogicalPort: "a", Chassis: str("hv1"), Up: &yes},
		{UUID: "p2", LogicalPort: "b", Chassis: str("hv2"), Up: &yes},
		{UUID: "p4", LogicalPort: "d", Chassis: str("hv4"), Up: &yes},
		{UUID: "p5", LogicalPort: "e", Chassis: str("gone"), Up: &yes}, // no such chassis
	}
	got := d.markLiveness(privs, pbs, alive)
	want := []ovsdb.Operation{
		sbops.SetChassisPrivateAlive("c2", false),
		sbops.SetPortBindingUp(pbs[1], false),
		sbops.SetPortBindingUp(pbs[3], false),
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("wrote\n %v\nwant hv2 dead and ports b and e down:\n %v", got, want)
	}
	if s := logs.String(); strings.Contains(s, "hv3") || strings.Contains(s, "hv4") {
		t.Errorf("logged a chassis not judged yet:\n%s", s)
	}
}
