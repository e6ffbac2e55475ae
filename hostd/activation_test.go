package hostd

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	dto "github.com/prometheus/client_model/go"

	"github.com/courier-sdn/courier/dataplane"
	"github.com/courier-sdn/courier/internal/central"
	"github.com/courier-sdn/courier/internal/testenv"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/ops/sbops"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// migrating is a binding held by holder and migrating to dest.
func migrating(name, holder, dest string) *sbdb.PortBinding {
	p := pb(name, "dp-web", str(holder), nil, "10.0.1.5")
	p.MigrationDestination = str(dest)
	up := true
	p.Up = &up
	return p
}

func TestDesiredDuringMigration(t *testing.T) {
	t.Run("the destination prepares the port: programmed, flagged migrating, its addresses not delivered, not marked up", func(t *testing.T) {
		s := snap([]*sbdb.PortBinding{migrating("vm1", "hv2", "hv1")}, map[string]int{"vm1": 5}, func(s *snapshot) {
			s.learned = []*sbdb.LearnedBinding{{LogicalPort: "vm1", Vpc: 7, IP: "10.0.1.77", Accepted: true, Chassis: "hv1"}}
		})
		d := desired(s)
		if len(d.state.Ports) != 1 || !d.state.Ports[0].Migrating {
			t.Fatalf("ports %+v, want vm1 migrating", d.state.Ports)
		}
		if len(d.up) != 0 {
			t.Errorf("the destination marks up a port its source holds: %v", d.up)
		}
		if len(d.state.Locals) != 0 {
			t.Errorf("a learned address of a port still on its source is delivered here: %v", d.state.Locals)
		}
	})
	t.Run("its EIPs, physical EIP and SNAT stay its holder's until it is bound here", func(t *testing.T) {
		withEIP := migrating("vm1", "hv2", "hv1")
		withEIP.Eip, withEIP.EipNetwork = str("203.0.113.10"), str("internet")
		phys := migrating("vm2", "hv2", "hv1")
		phys.Eip, phys.EipNetwork, phys.EipKind = str("192.168.200.5"), str("dcnet"), str("physical")
		snatted := migrating("vm3", "hv2", "hv1")
		for _, pbs := range [][]*sbdb.PortBinding{{withEIP, phys, snatted}, {migrating("vm1", "hv1", "hv1")}} {
			here := !migratingHere("hv1", pbs[0])
			s := &snapshot{chassis: "hv1", ifaces: map[string]int{"vm1": 5, "vm2": 6, "vm3": 7}, ports: pbs,
				snat: map[int]*sbdb.SNAT{7: {Vpc: 7, Network: "internet", Addresses: []string{"203.0.113.50"}, BlockSize: 1024}}}
			var st dataplane.State
			localNAT(s, &st)
			if got := len(st.EIPs) + len(st.PhysEIPs) + len(st.SNATPorts); here != (got > 0) {
				t.Errorf("bound here %v: EIPs %v, physical EIPs %v, SNAT ports %v", here, st.EIPs, st.PhysEIPs, st.SNATPorts)
			}
		}
		if d := desired(snap([]*sbdb.PortBinding{phys}, map[string]int{"vm2": 6})); len(d.state.PhysEIPs) != 0 {
			t.Errorf("the destination answers for a physical EIP its source serves: %v", d.state.PhysEIPs)
		}
	})
	t.Run("without its interface here the destination has nothing to prepare", func(t *testing.T) {
		if d := desired(snap([]*sbdb.PortBinding{migrating("vm1", "hv2", "hv1")}, map[string]int{})); len(d.state.Ports) != 0 {
			t.Errorf("ports %+v", d.state.Ports)
		}
	})
	t.Run("the source keeps the port as it was until the guest resumes elsewhere", func(t *testing.T) {
		d := desired(snap([]*sbdb.PortBinding{migrating("vm1", "hv1", "hv3")}, map[string]int{"vm1": 5}))
		if len(d.state.Ports) != 1 || d.state.Ports[0].Migrating {
			t.Errorf("ports %+v, want vm1 not migrating", d.state.Ports)
		}
	})
	t.Run("once bound here the port is an ordinary one", func(t *testing.T) {
		d := desired(snap([]*sbdb.PortBinding{migrating("vm1", "hv1", "hv1")}, map[string]int{"vm1": 5}))
		if len(d.state.Ports) != 1 || d.state.Ports[0].Migrating {
			t.Errorf("ports %+v, want vm1 not migrating", d.state.Ports)
		}
	})
}

// Until the monitor brings its own activation back, a host reads the port
// as bound to itself, so the reconcile after it delivers the port's
// addresses at once; the echo ends that.
func TestActivatedPortReadsAsBoundHere(t *testing.T) {
	d := New(Config{Chassis: "hv1", Log: testenv.Logger(t)})
	d.activated = map[string]bool{"vm1": true}
	rows := d.withActivations([]*sbdb.PortBinding{migrating("vm1", "hv2", "hv1"), migrating("vm2", "hv2", "hv1")})
	if !isMe(rows[0].Chassis, "hv1") || *rows[0].Up || migratingHere("hv1", rows[0]) {
		t.Errorf("activated vm1 reads %+v", rows[0])
	}
	if !migratingHere("hv1", rows[1]) {
		t.Errorf("vm2, not activated, reads %+v", rows[1])
	}
	if st := desired(snap(rows, map[string]int{"vm1": 5})).state; len(st.Ports) != 1 || st.Ports[0].Migrating || len(st.Ports[0].IPs) != 1 {
		t.Errorf("ports %+v, want vm1 delivered here", st.Ports)
	}
	d.withActivations([]*sbdb.PortBinding{migrating("vm1", "hv1", "hv1")})
	if d.activated["vm1"] {
		t.Error("the activation is still remembered after its echo")
	}
}

func TestMigratedAway(t *testing.T) {
	p := pb("vm1", "dp-web", str("hv2"), str("hv1"), "10.0.1.5")
	if migratedAway(p, "hv1") {
		t.Error("a port requested here and held elsewhere without a migration counts as migrated away")
	}
	p.MigrationDestination = str("hv2")
	if !migratedAway(p, "hv1") {
		t.Error("a port its migration bound to its destination does not count as migrated away")
	}
	p.Chassis = str("hv3")
	if migratedAway(p, "hv1") {
		t.Error("a port held by a host that is not its destination counts as migrated away")
	}
}

func isDenied(err error, table string) bool {
	t, ok := ops.PermissionDenied(err)
	return ok && t == table
}

func activations(d *Daemon, outcome string) float64 {
	var m dto.Metric
	d.m.activations.WithLabelValues(outcome).Write(&m)
	return m.GetCounter().GetValue()
}

func empty(v any) bool {
	s, ok := v.(ovsdb.OvsSet)
	return ok && len(s.GoSet) == 0
}

// readBinding reads a binding from the server itself, not a monitor:
// what a write just committed.
func readBinding(ctx context.Context, t *testing.T, d *Daemon, port string) ovsdb.Row {
	t.Helper()
	res, err := ops.Transact(ctx, d.base, ovsdb.Operation{Op: ovsdb.OperationSelect, Table: sbdb.PortBindingTable,
		Where: []ovsdb.Condition{{Column: "logical_port", Function: ovsdb.ConditionEqual, Value: port}}})
	if err != nil || len(res[0].Rows) != 1 {
		t.Fatalf("read %s: %v", port, err)
	}
	return res[0].Rows[0]
}

func atom(v any) any {
	if s, ok := v.(ovsdb.OvsSet); ok && len(s.GoSet) == 1 {
		return s.GoSet[0]
	}
	return v
}

// A live migration's handover against the real southbound and its access
// control: the destination sees the binding before it holds it, says it
// is prepared, and takes it on its guest's announcement; a guest's
// announcement on a host that is not the port's destination, or for a
// port not migrating, takes nothing; the source, whose port it was by
// request, does not take it back while its interface lingers.
func TestMigrationActivation(t *testing.T) {
	dbs := testenv.StartTLSDBs(t, central.Daemons("", "")...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	hv1, hv3, _ := honestHosts(ctx, t, dbs)
	nb := func(args ...string) {
		if err := nbRun(ctx, dbs, "sb", args...); err != nil {
			t.Fatal(err)
		}
	}
	// Before the migration, hv3 writing the activation itself, as a
	// compromised host would, is refused by the southbound.
	if _, err := hv3.guarded(ctx, sbops.ActivatePortBinding(binding(t, hv1, "p1"), "hv3")); !isDenied(err, sbdb.PortBindingTable) {
		t.Errorf("hv3 activated p1, which is not migrating to it: %v", err)
	}
	if _, err := hv3.transact(ctx, sbops.SetPortBindingPrepared(binding(t, hv1, "p1"), "hv3")); err != nil {
		t.Errorf("marking prepared a port not migrating here should match no row, not fail: %v", err)
	}
	nb("port-set", "p1", "--migrating-to", "hv3")
	p1 := binding(t, hv3, "p1") // the destination monitors it now
	if !isMe(p1.Chassis, "hv1") || !migratingHere("hv3", p1) {
		t.Fatalf("p1 reads %+v on its destination", p1)
	}
	hv1.ifaces["p1"], hv3.ifaces["p1"] = 1, 7
	hv3.byIndex = map[int]string{7: "p1", 8: "p3"}
	hv1.byIndex = map[int]string{1: "p1"}
	resumed := func(ix int) dataplane.Event { return dataplane.Event{Type: dataplane.EventResumed, Ifindex: ix} }

	t.Run("the destination says it is prepared once its data plane holds the port", func(t *testing.T) {
		hv3.markPrepared(ctx, []*sbdb.PortBinding{p1}, &dataplane.State{})
		if got := readBinding(ctx, t, hv3, "p1")["migration_prepared"]; !empty(got) {
			t.Errorf("prepared as %v before its data plane held the port", got)
		}
		hv3.markPrepared(ctx, []*sbdb.PortBinding{p1}, &dataplane.State{Ports: []dataplane.Port{{Name: "p1", Migrating: true}}})
		if got := atom(readBinding(ctx, t, hv3, "p1")["migration_prepared"]); got != "hv3" {
			t.Errorf("migration_prepared %v, want hv3", got)
		}
	})
	t.Run("the source's guest announcing itself takes nothing", func(t *testing.T) {
		hv1.activate(ctx, resumed(1))
		if got := atom(readBinding(ctx, t, hv1, "p1")["chassis"]); got != "hv1" || activations(hv1, "refused") != 1 {
			t.Errorf("p1 on %v, refused %v", got, activations(hv1, "refused"))
		}
	})
	t.Run("a port not migrating is not taken by its guest's announcement", func(t *testing.T) {
		// hv3's own p3, and hv1's p1 announced on hv3 after the migration ended
		hv3.activate(ctx, resumed(8))
		if activations(hv3, "refused") != 1 || activations(hv3, "activated") != 0 {
			t.Errorf("refused %v activated %v", activations(hv3, "refused"), activations(hv3, "activated"))
		}
	})
	t.Run("the destination takes the port on its guest's announcement", func(t *testing.T) {
		hv3.activate(ctx, resumed(7))
		row := readBinding(ctx, t, hv3, "p1")
		if got := atom(row["chassis"]); got != "hv3" || activations(hv3, "activated") != 1 {
			t.Fatalf("p1 on %v after the announcement, activated %v", got, activations(hv3, "activated"))
		}
		if !empty(row["migration_prepared"]) {
			t.Errorf("migration_prepared %v stays after the activation", row["migration_prepared"])
		}
	})
	t.Run("an aborted migration's readiness mark is cleared by southd", func(t *testing.T) {
		nb("port-set", "p3", "--migrating-to", "hv1")
		p3 := binding(t, hv1, "p3")
		testenv.Eventually(t, 10*time.Second, "hv1 sees p3 migrating to it", func() error {
			if p3 = binding(t, hv1, "p3"); !migratingHere("hv1", p3) {
				return fmt.Errorf("p3 reads %+v", p3)
			}
			return nil
		})
		hv1.markPrepared(ctx, []*sbdb.PortBinding{p3}, &dataplane.State{Ports: []dataplane.Port{{Name: "p3", Migrating: true}}})
		if got := atom(readBinding(ctx, t, hv1, "p3")["migration_prepared"]); got != "hv1" {
			t.Fatalf("migration_prepared %v, want hv1", got)
		}
		nb("port-set", "p3", "--migrating-to", "none")
		testenv.Eventually(t, 10*time.Second, "southd clears the mark", func() error {
			if got := readBinding(ctx, t, hv3, "p3")["migration_prepared"]; !empty(got) {
				return fmt.Errorf("migration_prepared %v", got)
			}
			return nil
		})
	})
	t.Run("the source, whose port it was by request, does not take it back", func(t *testing.T) {
		testenv.Eventually(t, 10*time.Second, "hv1 reads the activation", func() error {
			if pb := binding(t, hv1, "p1"); !isMe(pb.Chassis, "hv3") {
				return fmt.Errorf("bound to %v", pb.Chassis)
			}
			return nil
		})
		hv1.claim(ctx, ops.Rows[sbdb.PortBinding](hv1.base))
		if got := atom(readBinding(ctx, t, hv1, "p1")["chassis"]); got != "hv3" {
			t.Errorf("p1 back on %v", got)
		}
	})
}
