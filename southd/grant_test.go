package southd

import (
	"fmt"
	"testing"

	"github.com/courier-sdn/courier/schema/sbdb"
)

func TestGrants(t *testing.T) {
	pb := func(port string, requested, chassis *string) *sbdb.PortBinding {
		return &sbdb.PortBinding{UUID: "u-" + port, LogicalPort: port, RequestedChassis: requested, Chassis: chassis}
	}
	pbs := []*sbdb.PortBinding{
		pb("free", nil, nil),            // claimed by hv2 and hv3: the first by name
		pb("held", nil, str("hv1")),     // hv1 is alive and claims it: stays
		pb("orphan", nil, str("hv4")),   // hv4 is dead: goes to its claimer
		pb("left", nil, str("hv1")),     // hv1 no longer claims it: goes to hv2
		pb("asked", str("hv1"), nil),    // requested: hv1 binds it, not southd
		pb("lonely", nil, nil),          // nobody claims it
		pb("ghost", nil, nil),           // only a dead chassis claims it
		pb("mine", nil, str("hv2")),     // held by its only claimer
		pb("stolen", str("hv3"), nil),   // requested elsewhere: a claim does not count
		pb("contest", nil, str("hv3")),  // hv3 holds and claims; hv2 claims too: stays
		pb("newcomer", nil, str("hv5")), // hv5 registered after the judgment: stays
	}
	privs := []*sbdb.ChassisPrivate{
		{Name: "hv1", Claims: []string{"held", "asked"}},
		{Name: "hv2", Claims: []string{"free", "left", "mine", "stolen", "contest", "newcomer"}},
		{Name: "hv3", Claims: []string{"free", "orphan", "contest"}},
		{Name: "hv4", Claims: []string{"ghost"}},
		{Name: "hv5", Claims: []string{"newcomer", "lonely"}}, // not judged: claims nothing yet
	}
	alive := map[string]bool{"hv1": true, "hv2": true, "hv3": true, "hv4": false}
	var got []string
	for _, g := range grants(pbs, privs, alive, nil) {
		from := "-"
		if g.from != nil {
			from = *g.from
		}
		got = append(got, fmt.Sprintf("%s %s->%s", g.pb.LogicalPort, from, g.to))
	}
	want := []string{"free -->hv2", "left hv1->hv2", "orphan hv4->hv3"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("grants %v, want %v", got, want)
	}
}
