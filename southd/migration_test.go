package southd

import (
	"slices"
	"testing"

	"github.com/courier-sdn/courier/schema/sbdb"
)

func TestStalePrepared(t *testing.T) {
	pb := func(port string, dest, prepared *string) *sbdb.PortBinding {
		return &sbdb.PortBinding{UUID: "u-" + port, LogicalPort: port, MigrationDestination: dest, MigrationPrepared: prepared}
	}
	pbs := []*sbdb.PortBinding{
		pb("idle", nil, nil),                   // no migration
		pb("going", str("hv2"), nil),           // migrating, not prepared yet
		pb("ready", str("hv2"), str("hv2")),    // prepared where it goes
		pb("aborted", nil, str("hv2")),         // the migration ended without activation
		pb("retarget", str("hv3"), str("hv2")), // sent elsewhere after hv2 prepared
	}
	var got []string
	for _, p := range stalePrepared(pbs) {
		got = append(got, p.LogicalPort)
	}
	if want := []string{"aborted", "retarget"}; !slices.Equal(got, want) {
		t.Errorf("stale %v, want %v", got, want)
	}
}
