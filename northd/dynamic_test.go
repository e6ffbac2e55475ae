package northd_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/courier-sdn/courier/internal/testenv"
	"github.com/courier-sdn/courier/tools/nbctl"
)

// Dynamic addresses survive a restart: a new northd reads what the old
// one wrote into dynamic_addresses and keeps it, even when ports that
// would come first by name or an address freed meanwhile would give a
// fresh allocation other answers.
func TestDynamicAddressesSurviveRestart(t *testing.T) {
	dbs := testenv.StartDBs(t)
	stop := startNorthdStoppable(t, dbs.NB, dbs.SB)
	nb(t, dbs.NB, "vpc-add", "web", "--", "vxnet-add", "web", "front", "10.0.1.0/24")
	for _, p := range []string{"z1", "z2", "z3"} {
		nb(t, dbs.NB, "port-add", "front", p)
	}
	before := map[string]string{}
	for _, p := range []string{"z2", "z3"} {
		before[p] = nb(t, dbs.NB, "get", "Port", p, "dynamic_addresses")
	}
	if !strings.Contains(before["z3"], " 10.0.1.4") {
		t.Fatalf("z3 = %s, want 10.0.1.4 (z1 .2, z2 .3)", before["z3"])
	}
	stop()

	// While no northd runs: z1 goes, a0 comes.
	var out strings.Builder
	o := nbctl.Options{DB: dbs.NB, Wait: "none", Format: "table", Timeout: 20 * time.Second}
	if err := nbctl.Run(context.Background(), o, []string{"port-del", "z1", "--", "port-add", "front", "a0"}, &out); err != nil {
		t.Fatal(err)
	}
	startNorthdStoppable(t, dbs.NB, dbs.SB)
	nb(t, dbs.NB, "sync")
	for p, want := range before {
		if got := nb(t, dbs.NB, "get", "Port", p, "dynamic_addresses"); got != want {
			t.Errorf("%s: %s after the restart, %s before", p, got, want)
		}
	}
	if got := nb(t, dbs.NB, "get", "Port", "a0", "dynamic_addresses"); !strings.Contains(got, " 10.0.1.2") {
		t.Errorf("a0 = %s, want the freed 10.0.1.2", got)
	}
	ip := strings.Trim(strings.Fields(before["z2"])[1], "\"\n")
	if snap := testenv.SBSnapshot(t, dbs.SB); !strings.Contains(snap, "pb z2 dp=vxnet:front vpc=1 key=3 mac="+
		strings.Trim(strings.Fields(before["z2"])[0], "\"")+" ips=["+ip+"]") {
		t.Errorf("z2's binding does not carry its dynamic addresses:\n%s", snap)
	}
}
