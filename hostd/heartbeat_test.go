package hostd

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/courier-sdn/courier/internal/central"
	"github.com/courier-sdn/courier/internal/testenv"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/ops/sbops"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// A chassis's own heartbeat does not come back to it: every bump woke a
// reconcile, once a second on every host (a hub's 1.3% of a core idle at
// 64,000 bindings). Its other columns do.
func TestOwnHeartbeatIsNotMonitored(t *testing.T) {
	dbs := testenv.StartTLSDBs(t, central.Daemons("", "")...)
	d, err := connect(t, dbs, "hv1", "hv1", "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := 0; i < 3; i++ {
		if err := d.heartbeat(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// A write after the bumps: once the monitor shows it, it has shown
	// everything before it.
	if _, err := d.transact(ctx, sbops.SetChassisPrivateClaims("hv1", []string{"vm1"})); err != nil {
		t.Fatal(err)
	}
	for {
		rows := ops.Rows[sbdb.ChassisPrivate](d.base)
		if len(rows) == 1 && slices.Equal(rows[0].Claims, []string{"vm1"}) {
			if rows[0].Heartbeat != 0 {
				t.Fatalf("the monitor shows this chassis's heartbeat (%d)", rows[0].Heartbeat)
			}
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the claims written never showed: %+v", rows)
		case <-time.After(10 * time.Millisecond):
		}
	}
	ch := d.baseTracker.Drain()
	for _, c := range ch.Table(sbdb.ChassisPrivateTable) {
		if o, ok := c.Old.(*sbdb.ChassisPrivate); ok && slices.Equal(o.Claims, c.New.(*sbdb.ChassisPrivate).Claims) {
			t.Errorf("a change of this chassis's row that is not its claims woke hostd: %+v -> %+v", c.Old, c.New)
		}
	}
}
