package sbops_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/ops/sbops"
	"github.com/courier-sdn/courier/schema/sbdb"
)

func byUUID(u string) ovsdb.Condition {
	return ovsdb.Condition{Column: "_uuid", Function: ovsdb.ConditionEqual, Value: ovsdb.UUID{GoUUID: u}}
}

func byName(n string) []ovsdb.Condition {
	return []ovsdb.Condition{{Column: "name", Function: ovsdb.ConditionEqual, Value: n}}
}

// Each verb writes what the hand-made operation it replaced in hostd,
// southd or northd wrote, as the server reads it (the same JSON).
func TestVerbsWriteWhatTheDaemonsWrote(t *testing.T) {
	const u, u2 = "0000000a-0000-4000-8000-00000000000a", "0000000b-0000-4000-8000-00000000000b"
	hv1 := "hv1"
	held := &sbdb.PortBinding{UUID: u, Chassis: &hv1}
	free := &sbdb.PortBinding{UUID: u}
	at := time.UnixMilli(1700000000123)
	timeout := 0
	for _, c := range []struct {
		name      string
		got, want ovsdb.Operation
	}{
		{"bind a port held elsewhere", sbops.BindPortBinding(held, "hv2"), ovsdb.Operation{Op: "update", Table: "Port_Binding",
			Where: []ovsdb.Condition{byUUID(u), {Column: "chassis", Function: "==", Value: ovsdb.OvsSet{GoSet: []any{"hv1"}}}},
			Row:   ovsdb.Row{"chassis": "hv2", "up": ovsdb.OvsSet{GoSet: []any{false}}}}},
		{"bind a free port", sbops.BindPortBinding(free, "hv2"), ovsdb.Operation{Op: "update", Table: "Port_Binding",
			Where: []ovsdb.Condition{byUUID(u), {Column: "chassis", Function: "==", Value: ovsdb.OvsSet{GoSet: []any{}}}},
			Row:   ovsdb.Row{"chassis": "hv2", "up": false}}},
		{"release a port", sbops.UnbindPortBinding(held), ovsdb.Operation{Op: "update", Table: "Port_Binding",
			Where: []ovsdb.Condition{byUUID(u), {Column: "chassis", Function: "==", Value: ovsdb.OvsSet{GoSet: []any{"hv1"}}}},
			Row:   ovsdb.Row{"chassis": ovsdb.OvsSet{GoSet: []any{}}, "up": ovsdb.OvsSet{GoSet: []any{false}}}}},
		{"mark a port down (southd)", sbops.SetPortBindingUp(held, false), ovsdb.Operation{Op: "update", Table: "Port_Binding",
			Where: []ovsdb.Condition{byUUID(u), {Column: "chassis", Function: "==", Value: "hv1"}},
			Row:   ovsdb.Row{"up": false}}},
		{"heartbeat", sbops.BumpHeartbeat("hv1"), ovsdb.Operation{Op: "mutate", Table: "Chassis_Private", Where: byName("hv1"),
			Mutations: []ovsdb.Mutation{{Column: "heartbeat", Mutator: "+=", Value: 1}}}},
		{"acknowledge", sbops.SetChassisPrivateNbCfg("hv1", 7, at), ovsdb.Operation{Op: "update", Table: "Chassis_Private",
			Where: byName("hv1"), Row: ovsdb.Row{"nb_cfg": 7, "nb_cfg_timestamp": 1700000000123}}},
		{"status", sbops.SetChassisPrivateStatus("hv1", map[string]string{"p": "no"}), ovsdb.Operation{Op: "update",
			Table: "Chassis_Private", Where: byName("hv1"), Row: ovsdb.Row{"status": ovsdb.OvsMap{GoMap: map[any]any{"p": "no"}}}}},
		{"claims", sbops.SetChassisPrivateClaims("hv1", []string{"a", "b"}), ovsdb.Operation{Op: "update",
			Table: "Chassis_Private", Where: byName("hv1"), Row: ovsdb.Row{"claims": ovsdb.OvsSet{GoSet: []any{"a", "b"}}}}},
		{"liveness", sbops.SetChassisPrivateAlive(u, true), ovsdb.Operation{Op: "update", Table: "Chassis_Private",
			Where: []ovsdb.Condition{byUUID(u)}, Row: ovsdb.Row{"alive": true}}},
		{"assign hubs", sbops.UpsertHub(nil, 3, []string{"hv1", "hv2"}), ovsdb.Operation{Op: "insert", Table: "Hub",
			Row: ovsdb.Row{"vpc": 3, "chassis": ovsdb.OvsSet{GoSet: []any{"hv1", "hv2"}}}}},
		{"move hubs", sbops.UpsertHub(&sbdb.Hub{UUID: u, Vpc: 3}, 3, []string{"hv2"}), ovsdb.Operation{Op: "update", Table: "Hub",
			Where: []ovsdb.Condition{byUUID(u)}, Row: ovsdb.Row{"chassis": ovsdb.OvsSet{GoSet: []any{"hv2"}}}}},
		{"drop hubs", sbops.DeleteHub(u), ovsdb.Operation{Op: "delete", Table: "Hub", Where: []ovsdb.Condition{byUUID(u)}}},
		{"read holders", sbops.SelectLearnedBindingHolders(3, "10.0.0.9"), ovsdb.Operation{Op: "select", Table: "Learned_Binding",
			Where:   []ovsdb.Condition{{Column: "vpc", Function: "==", Value: 3}, {Column: "ip", Function: "==", Value: "10.0.0.9"}},
			Columns: []string{"_uuid", "logical_port", "seq"}}},
		{"holders as read", sbops.LearnedBindingHoldersAre(3, "10.0.0.9", []ovsdb.Row{{"_uuid": ovsdb.UUID{GoUUID: u}, "seq": 2}}),
			ovsdb.Operation{Op: "wait", Table: "Learned_Binding", Timeout: &timeout,
				Where:   []ovsdb.Condition{{Column: "vpc", Function: "==", Value: 3}, {Column: "ip", Function: "==", Value: "10.0.0.9"}},
				Columns: []string{"_uuid", "seq"}, Until: "==", Rows: []ovsdb.Row{{"_uuid": ovsdb.UUID{GoUUID: u}, "seq": 2}}}},
		{"no holders", sbops.LearnedBindingHoldersAre(3, "10.0.0.9", nil),
			ovsdb.Operation{Op: "wait", Table: "Learned_Binding", Timeout: &timeout,
				Where:   []ovsdb.Condition{{Column: "vpc", Function: "==", Value: 3}, {Column: "ip", Function: "==", Value: "10.0.0.9"}},
				Columns: []string{"vpc"}, Until: "!=", Rows: []ovsdb.Row{{"vpc": 3}}}},
		// The insert also writes accepted: false, the column's default,
		// which an insert by the chassis role may write (RBAC checks an
		// insert's authorization, not its columns).
		{"learn", sbops.UpsertLearnedBinding("", learned()), ovsdb.Operation{Op: "insert", Table: "Learned_Binding",
			Row: ovsdb.Row{"vni": 5, "mac": "02:00:00:00:00:09", "kind": "unknown", "seq": 2, "timestamp": 1700000000123,
				"vpc": 3, "ip": "10.0.0.9", "logical_port": "u1", "chassis": "hv1", "accepted": false}}},
		{"learn again", sbops.UpsertLearnedBinding(u2, learned()), ovsdb.Operation{Op: "update", Table: "Learned_Binding",
			Where: []ovsdb.Condition{byUUID(u2)},
			Row:   ovsdb.Row{"vni": 5, "mac": "02:00:00:00:00:09", "kind": "unknown", "seq": 2, "timestamp": 1700000000123}}},
		{"refresh", sbops.TouchLearnedBinding(u, at), ovsdb.Operation{Op: "update", Table: "Learned_Binding",
			Where: []ovsdb.Condition{byUUID(u)}, Row: ovsdb.Row{"timestamp": 1700000000123}}},
		{"accept", sbops.AcceptLearnedBinding(u), ovsdb.Operation{Op: "update", Table: "Learned_Binding",
			Where: []ovsdb.Condition{byUUID(u)}, Row: ovsdb.Row{"accepted": true}}},
		{"judge", sbops.DeleteLearnedBinding(u), ovsdb.Operation{Op: "delete", Table: "Learned_Binding",
			Where: []ovsdb.Condition{byUUID(u)}}},
		{"northd's acknowledgement", sbops.SetSBGlobalNbCfg(&sbdb.SBGlobal{UUID: u, NbCfg: 4}, 5), ovsdb.Operation{Op: "update",
			Table: "SB_Global", Where: []ovsdb.Condition{byUUID(u)}, Row: ovsdb.Row{"nb_cfg": 5}}},
	} {
		got, err := json.Marshal(c.got)
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(c.want)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got, want)
		}
	}
}

func learned() *sbdb.LearnedBinding {
	return &sbdb.LearnedBinding{Vpc: 3, IP: "10.0.0.9", LogicalPort: "u1", Chassis: "hv1", Vni: 5,
		MAC: "02:00:00:00:00:09", Kind: "unknown", Seq: 2, Timestamp: 1700000000123}
}
