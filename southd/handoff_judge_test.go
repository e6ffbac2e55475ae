package southd

import (
	"fmt"
	"testing"
	"time"

	"github.com/courier-sdn/courier/schema/sbdb"
)

// A handoff to a chassis whose Chassis_Private row reached the session
// after the judgment (in privs, not in alive) is not taken for one to a
// chassis that never was: the next pass judges its destination. One to a
// chassis with no row at all, or dead past the bound, still goes.
func TestHandoffToAnUnjudgedChassisStays(t *testing.T) {
	a := newHandoffAging()
	hs := []*sbdb.SNATHandoff{
		{UUID: "h1", LogicalPort: "p1", FromChassis: "hv1", ToChassis: "hv2"}, // both judged alive
		{UUID: "h2", LogicalPort: "p1", FromChassis: "hv1", ToChassis: "hv5"}, // hv5 registered after the judgment
		{UUID: "h3", LogicalPort: "p2", FromChassis: "hv1", ToChassis: "hv9"}, // no such chassis
		{UUID: "h4", LogicalPort: "p2", FromChassis: "hv1", ToChassis: "hv4"}, // judged dead
		{UUID: "h5", LogicalPort: "gone", FromChassis: "hv1", ToChassis: "hv2"},
	}
	privs := []*sbdb.ChassisPrivate{{Name: "hv1"}, {Name: "hv2"}, {Name: "hv4"}, {Name: "hv5"}}
	alive := map[string]bool{"hv1": true, "hv2": true, "hv4": false}
	bound := func(p string) bool { return p != "gone" }
	judge := func(now time.Time) string {
		var out []string
		for _, s := range a.judge(now, hs, privs, alive, bound, time.Second, time.Hour) {
			out = append(out, s.h.UUID+" "+s.why)
		}
		return fmt.Sprint(out)
	}
	t0 := time.Now()
	if got, want := judge(t0), "[h3 destination_gone h5 no_port]"; got != want {
		t.Fatalf("first pass: stale %s, want %s", got, want)
	}
	if got, want := judge(t0.Add(2*time.Second)), "[h3 destination_gone h4 destination_gone h5 no_port]"; got != want {
		t.Fatalf("hv4 dead past the bound: stale %s, want %s", got, want)
	}
}
