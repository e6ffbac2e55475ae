package hostd

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
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
	"github.com/courier-sdn/courier/tools/nbctl"
)

// connect gives a hostd for chassis a base session on the southbound's
// hypervisor listener, presenting the certificate signed for cert, and
// registers it with VTEP address encap if it may.
func connect(t *testing.T, dbs *testenv.TLSDBs, chassis, cert, encap string) (*Daemon, error) {
	t.Helper()
	d := New(Config{Chassis: chassis, EncapIP: netip.MustParseAddr(encap), SB: []string{dbs.SBChassis},
		Credentials: dbs.Creds(t, cert), Log: testenv.Logger(t)})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := d.openBase(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.base.Close)
	return d, d.register(ctx)
}

// nbRun runs a courier-nbctl command line (a -- chain) against the test's
// northbound, waiting as wait says (none, sb, hv).
func nbRun(ctx context.Context, dbs *testenv.TLSDBs, wait string, args ...string) error {
	return nbctl.Run(ctx, nbctl.Options{DB: dbs.NB, Wait: wait, Format: "table", LeaderOnly: true, Timeout: 30 * time.Second},
		args, &bytes.Buffer{})
}

func binding(t *testing.T, d *Daemon, port string) *sbdb.PortBinding {
	t.Helper()
	var pb *sbdb.PortBinding
	testenv.Eventually(t, 10*time.Second, "binding "+port, func() error {
		for _, b := range ops.Rows[sbdb.PortBinding](d.base) {
			if b.LogicalPort == port {
				pb = b
				return nil
			}
		}
		return fmt.Errorf("not monitored")
	})
	return pb
}

// refusals is how many writes to table the southbound refused d.
func refusals(d *Daemon, table string) float64 {
	var m dto.Metric
	d.m.refused.WithLabelValues(table).Write(&m)
	return m.GetCounter().GetValue()
}

func learnedRow(chassis, port, ip string, extra ovsdb.Row) ovsdb.Operation {
	row := ovsdb.Row{"vpc": 1, "vni": 1, "ip": ip, "mac": "02:00:00:00:00:09", "logical_port": port,
		"chassis": chassis, "kind": "unknown", "seq": 1, "timestamp": int(time.Now().UnixMilli())}
	for k, v := range extra {
		row[k] = v
	}
	return ovsdb.Operation{Op: ovsdb.OperationInsert, Table: sbdb.LearnedBindingTable, Row: row}
}

// The test's world: hv1 and hv3, honest, each with a port requested for
// it and one with unknown addresses, bound, and an address each such port
// announced, accepted by southd (lbs: chassis to its learned binding).
func honestHosts(ctx context.Context, t *testing.T, dbs *testenv.TLSDBs) (hv1, hv3 *Daemon, lbs map[string]string) {
	t.Helper()
	err := nbRun(ctx, dbs, "sb", []string{
		"vpc-add", "v", "--", "vxnet-add", "v", "x", "10.0.0.0/24",
		"--", "port-add", "x", "p1", "02:00:00:00:00:01", "10.0.0.11", "--chassis", "hv1",
		"--", "port-add", "x", "u1", "02:00:00:00:00:02", "unknown", "--chassis", "hv1",
		"--", "port-add", "x", "p3", "02:00:00:00:00:03", "10.0.0.13", "--chassis", "hv3",
		"--", "port-add", "x", "u3", "02:00:00:00:00:04", "unknown", "--chassis", "hv3",
		"--", "port-add", "x", "free", "02:00:00:00:00:05", "10.0.0.15"}...)
	if err != nil {
		t.Fatal(err)
	}
	hv1, err = connect(t, dbs, "hv1", "hv1", "192.0.2.1")
	if err != nil {
		t.Fatalf("hv1 registers itself: %v", err)
	}
	hv3, err = connect(t, dbs, "hv3", "hv3", "192.0.2.3")
	if err != nil {
		t.Fatalf("hv3 registers itself: %v", err)
	}
	// Each host binds its ports and records an address its port with
	// unknown addresses announced: what is its own it may still write.
	lbs = map[string]string{}
	for i, h := range []struct {
		d              *Daemon
		name, port, ip string
	}{{hv1, "hv1", "u1", "10.0.0.50"}, {hv1, "hv1", "p1", ""}, {hv3, "hv3", "u3", "10.0.0.60"}, {hv3, "hv3", "p3", ""}} {
		h.d.ifaces[h.port] = i + 1
		h.d.claim(ctx, []*sbdb.PortBinding{binding(t, h.d, h.port)})
		testenv.Eventually(t, 10*time.Second, h.name+" binds "+h.port, func() error {
			if pb := binding(t, h.d, h.port); !isMe(pb.Chassis, h.name) {
				return fmt.Errorf("bound to %v", pb.Chassis)
			}
			return nil
		})
		if h.ip == "" {
			continue
		}
		if _, err := h.d.writeLearned(ctx, &sbdb.PortBinding{LogicalPort: h.port, Vpc: binding(t, h.d, h.port).Vpc}, "unknown",
			dataplane.Event{IP: netip.MustParseAddr(h.ip), VNI: 1, MAC: net.HardwareAddr{2, 0, 0, 0, 0, 9}}); err != nil {
			t.Fatalf("%s records what its port announced: %v", h.name, err)
		}
		testenv.Eventually(t, 10*time.Second, "southd accepts "+h.ip, func() error {
			for _, lb := range ops.Rows[sbdb.LearnedBinding](h.d.base) {
				if lb.IP == h.ip && lb.Accepted {
					lbs[h.name] = lb.UUID
					return nil
				}
			}
			return fmt.Errorf("not accepted")
		})
	}

	return hv1, hv3, lbs
}

type attempt struct {
	what  string
	table string
	try   func() error
}

// whereName selects a chassis's row by name. The attempts below build
// what no verb of sbops would, as a hostile host would.
func whereName(name string) []ovsdb.Condition {
	return []ovsdb.Condition{{Column: "name", Function: ovsdb.ConditionEqual, Value: name}}
}

// rogueAttempts are what the hostile host tries.
func rogueAttempts(ctx context.Context, t *testing.T, rogue, hv3 *Daemon, lbs map[string]string) []attempt {
	t.Helper()
	p1 := binding(t, rogue, "p1")
	res, _ := ops.Transact(ctx, hv3.base, ovsdb.Operation{Op: ovsdb.OperationSelect, Table: sbdb.LogicalFlowTable,
		Where: ops.All(), Columns: []string{"_uuid"}})
	if len(res[0].Rows) == 0 {
		t.Fatal("northd wrote no logical flow")
	}
	flow := res[0].Rows[0]["_uuid"].(ovsdb.UUID)
	byUUID := func(u string) []ovsdb.Condition {
		return []ovsdb.Condition{{Column: "_uuid", Function: ovsdb.ConditionEqual, Value: ovsdb.UUID{GoUUID: u}}}
	}
	return []attempt{
		{"claim hv1's port", sbdb.PortBindingTable, func() error {
			_, err := rogue.guarded(ctx, sbops.BindPortBinding(p1, "hv3"))
			return err
		}},
		{"release hv1's port", sbdb.PortBindingTable, func() error {
			_, err := rogue.guarded(ctx, sbops.UnbindPortBinding(p1))
			return err
		}},
		{"beat hv1's heart", sbdb.ChassisPrivateTable, func() error { return rogue.heartbeat(ctx) }},
		{"acknowledge for hv1", sbdb.ChassisPrivateTable, func() error {
			_, err := rogue.transact(ctx, sbops.SetChassisPrivateNbCfg("hv1", 1<<30, time.Now()))
			return err
		}},
		{"declare itself alive", sbdb.ChassisPrivateTable, func() error {
			_, err := rogue.transact(ctx, ovsdb.Operation{Op: ovsdb.OperationUpdate, Table: sbdb.ChassisPrivateTable,
				Where: whereName("hv3"), Row: ovsdb.Row{"alive": true}})
			return err
		}},
		{"insert a learned binding for hv1", sbdb.LearnedBindingTable, func() error {
			_, err := rogue.transact(ctx, learnedRow("hv1", "u1", "10.0.0.70", nil))
			return err
		}},
		{"move hv1's learned binding", sbdb.LearnedBindingTable, func() error {
			_, err := rogue.transact(ctx, ovsdb.Operation{Op: ovsdb.OperationUpdate, Table: sbdb.LearnedBindingTable,
				Where: byUUID(lbs["hv1"]), Row: ovsdb.Row{"seq": 1 << 30}})
			return err
		}},
		{"accept its own learned binding", sbdb.LearnedBindingTable, func() error {
			_, err := rogue.transact(ctx, ovsdb.Operation{Op: ovsdb.OperationUpdate, Table: sbdb.LearnedBindingTable,
				Where: byUUID(lbs["hv3"]), Row: ovsdb.Row{"accepted": true}})
			return err
		}},
		{"hand its learned binding to hv1", sbdb.LearnedBindingTable, func() error {
			_, err := rogue.transact(ctx, ovsdb.Operation{Op: ovsdb.OperationUpdate, Table: sbdb.LearnedBindingTable,
				Where: byUUID(lbs["hv3"]), Row: ovsdb.Row{"chassis": "hv1"}})
			return err
		}},
		{"delete a logical flow", sbdb.LogicalFlowTable, func() error {
			_, err := rogue.transact(ctx, ovsdb.Operation{Op: ovsdb.OperationDelete, Table: sbdb.LogicalFlowTable,
				Where: []ovsdb.Condition{{Column: "_uuid", Function: ovsdb.ConditionEqual, Value: flow}}})
			return err
		}},
		{"insert a Hub row", sbdb.HubTable, func() error {
			_, err := rogue.transact(ctx, ovsdb.Operation{Op: ovsdb.OperationInsert, Table: sbdb.HubTable,
				Row: ovsdb.Row{"vpc": 4242, "chassis": "hv3"}})
			return err
		}},
		{"rename its chassis to hv1's", sbdb.ChassisTable, func() error {
			_, err := rogue.transact(ctx, ovsdb.Operation{Op: ovsdb.OperationUpdate, Table: sbdb.ChassisTable,
				Where: whereName("hv3"), Row: ovsdb.Row{"name": "hv9"}})
			return err
		}},
		{"hand SNAT connections from hv1 to another host", sbdb.SNATHandoffTable, func() error {
			_, err := rogue.transact(ctx, sbops.InsertSNATHandoff(&sbdb.SNATHandoff{LogicalPort: "p1", FromChassis: "hv1",
				ToChassis: "hv9", Connections: []string{"6 40000 198.51.100.10:80 203.0.113.50:1024"}}))
			return err
		}},
		{"open a listener", "Connection", func() error {
			_, err := rogue.transact(ctx, ovsdb.Operation{Op: ovsdb.OperationInsert, Table: "Connection",
				Row: ovsdb.Row{"target": "ptcp:6699"}})
			return err
		}},
	}
}

// A hypervisor that holds a valid certificate for hv3 and runs hostd
// code set up as hv1 (a compromised host) tries to take what is hv1's
// and what is the control plane's: ovsdb-server refuses every write, and
// hostd counts each refusal. OVN's ovn-controller role would have let it
// claim hv1's port.
func TestRogueChassisIsRefused(t *testing.T) {
	dbs := testenv.StartTLSDBs(t, central.Daemons("", "")...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	hv1, hv3, lbs := honestHosts(ctx, t, dbs)
	// Registering as hv1 means pointing hv1's VTEP address elsewhere.
	rogue, err := connect(t, dbs, "hv1", "hv3", "192.0.2.3")
	if table, ok := ops.PermissionDenied(err); !ok || table != sbdb.ChassisTable {
		t.Errorf("registering as hv1 with hv3's certificate: %v, want refused on Chassis", err)
	}
	attempts := rogueAttempts(ctx, t, rogue, hv3, lbs)
	for _, a := range attempts {
		before := refusals(rogue, a.table)
		err := a.try()
		if table, ok := ops.PermissionDenied(err); !ok || table != a.table {
			t.Errorf("%s: %v, want refused by ovsdb-server on %s", a.what, err, a.table)
		}
		if got := refusals(rogue, a.table) - before; got != 1 {
			t.Errorf("%s: counted %v refusals, want 1", a.what, got)
		}
	}
	for _, table := range []string{sbdb.ChassisTable, sbdb.ChassisPrivateTable, sbdb.PortBindingTable, sbdb.LearnedBindingTable} {
		if n := refusals(hv1, table) + refusals(hv3, table); n != 0 {
			t.Errorf("%v of the honest hosts' own writes to %s were refused", n, table)
		}
	}
	if pb := binding(t, hv1, "p1"); !isMe(pb.Chassis, "hv1") {
		t.Errorf("p1 is bound to %v, want hv1", pb.Chassis)
	}
	ownHandoffsOnly(ctx, t, hv1, hv3)
	unrequestedStaysWithItsHolder(ctx, t, hv1, hv3)
	forgedVerdictIsUndone(ctx, t, hv3)
}

// A port nobody requested is granted to the host that claims it first;
// a hostile host that claims it too neither gets it from southd nor can
// take it itself.
func unrequestedStaysWithItsHolder(ctx context.Context, t *testing.T, hv1, hv3 *Daemon) {
	hv1.ifaces["free"] = 10
	if err := hv1.writeClaims(ctx); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "southd grants the unrequested port to hv1", func() error {
		if pb := binding(t, hv1, "free"); !isMe(pb.Chassis, "hv1") {
			return fmt.Errorf("bound to %v", pb.Chassis)
		}
		return nil
	})
	hv3.ifaces["free"] = 10
	if err := hv3.writeClaims(ctx); err != nil {
		t.Fatal(err)
	}
	pb := binding(t, hv1, "free")
	if _, err := hv3.guarded(ctx, sbops.BindPortBinding(pb, "hv3")); err == nil {
		t.Error("hv3 took a port bound to hv1 that nobody requested")
	}
	time.Sleep(time.Second) // southd has judged the claims many times
	if pb := binding(t, hv1, "free"); !isMe(pb.Chassis, "hv1") {
		t.Errorf("the port moved from its live holder to %v", pb.Chassis)
	}
}

// ovsdb-server checks an insert's row against the role's authorization
// only, so a host can insert its own learned binding already marked
// accepted. southd judges every row on each pass: one it would refuse
// is removed at once.
func forgedVerdictIsUndone(ctx context.Context, t *testing.T, hv3 *Daemon) {
	res, err := hv3.transact(ctx, learnedRow("hv3", "u3", "10.0.0.11", ovsdb.Row{"accepted": true})) // p1's fixed IP
	if err != nil {
		t.Fatalf("inserting its own learned binding: %v", err)
	}
	forged := res[0].UUID.GoUUID
	testenv.Eventually(t, 5*time.Second, "southd removes the forged verdict", func() error {
		res, err := ops.Transact(ctx, hv3.base, ovsdb.Operation{Op: ovsdb.OperationSelect, Table: sbdb.LearnedBindingTable,
			Where: []ovsdb.Condition{{Column: "_uuid", Function: ovsdb.ConditionEqual, Value: ovsdb.UUID{GoUUID: forged}}}})
		if err != nil || len(res[0].Rows) > 0 {
			return fmt.Errorf("still there (%v)", err)
		}
		return nil
	})
}

// A host may hand connections from itself, and delete what was handed
// to it, but not delete a handoff between two others'.
func ownHandoffsOnly(ctx context.Context, t *testing.T, hv1, hv3 *Daemon) {
	res, err := hv3.transact(ctx, sbops.InsertSNATHandoff(&sbdb.SNATHandoff{LogicalPort: "p3", FromChassis: "hv3", ToChassis: "hv1"}))
	if err != nil {
		t.Fatalf("hv3 hands its own port's connections to hv1: %v", err)
	}
	uuid := res[0].UUID.GoUUID
	if _, err := hv1.transact(ctx, sbops.InsertSNATHandoff(&sbdb.SNATHandoff{LogicalPort: "p3", FromChassis: "hv3", ToChassis: "hv9"})); err == nil {
		t.Error("hv1 inserted a handoff from hv3 to hv9")
	}
	if _, err := hv1.transact(ctx, sbops.DeleteSNATHandoff(uuid)); err != nil {
		t.Errorf("hv1 deletes what was handed to it: %v", err)
	}
}
