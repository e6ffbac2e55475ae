package jsonrpc

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"
)

// AppendOperation must say exactly what libovsdb's own encoding says,
// except that a wait always carries where and rows (RFC 7047 requires
// both, and ovsdb-server refuses a wait without them; libovsdb drops
// them when empty, so a wait for no rows could not be sent).
func TestAppendOperationMatchesLibovsdb(t *testing.T) {
	timeout, durable, comment, lock := 5, true, "why \"not\"", "l"
	u := "c0ffee00-1234-4abc-8def-0123456789ab"
	cases := []ovsdb.Operation{
		{Op: "insert", Table: "Port_Binding", UUIDName: "pb1", Row: ovsdb.Row{
			"logical_port": "p1", "datapath": ovsdb.UUID{GoUUID: u}, "vpc": 7, "tunnel_key": int64(9),
			"port_security": true, "ratio": 0.25,
			"ips":          ovsdb.OvsSet{GoSet: []any{"10.0.0.2", "10.0.0.3"}},
			"one":          ovsdb.OvsSet{GoSet: []any{"x"}},
			"none":         ovsdb.OvsSet{GoSet: []any{}},
			"refs":         ovsdb.OvsSet{GoSet: []any{ovsdb.UUID{GoUUID: "named"}, ovsdb.UUID{GoUUID: u}}},
			"external_ids": ovsdb.OvsMap{GoMap: map[any]any{"a": "b", "c<&>": "é\n\u2028"}},
			"empty":        ovsdb.OvsMap{GoMap: map[any]any{}},
			"ptr":          &ovsdb.OvsSet{GoSet: []any{1, 2}},
			"other":        []string{"falls", "back"},
		}},
		{Op: "select", Table: "T"},
		{Op: "select", Table: "T", Columns: []string{"a", "b"}, Where: []ovsdb.Condition{{Column: "_uuid", Function: "==", Value: ovsdb.UUID{GoUUID: u}}}},
		{Op: "update", Table: "T", Row: ovsdb.Row{"mac": "02:00:00:00:00:01"}, Where: []ovsdb.Condition{{Column: "name", Function: "!=", Value: "x"}}},
		{Op: "mutate", Table: "T", Where: []ovsdb.Condition{}, Mutations: []ovsdb.Mutation{
			{Column: "nb_cfg", Mutator: "+=", Value: 1},
			{Column: "external_ids", Mutator: "delete", Value: ovsdb.OvsSet{GoSet: []any{"k"}}}}},
		{Op: "delete", Table: "T", Where: []ovsdb.Condition{{Column: "_uuid", Function: "==", Value: ovsdb.UUID{GoUUID: "ABCDEF00-1234-4abc-8def-0123456789ab"}}}},
		{Op: "wait", Table: "T", Timeout: &timeout, Until: "==", Columns: []string{"a"}, Rows: []ovsdb.Row{{"a": 1}, {"a": "z"}}, Where: []ovsdb.Condition{}},
		{Op: "wait", Table: "T", Timeout: &timeout, Until: "==", Columns: []string{"a"}},
		{Op: "commit", Durable: &durable},
		{Op: "comment", Comment: &comment},
		{Op: "assert", Lock: &lock},
	}
	for _, op := range cases {
		want, err := json.Marshal(op)
		if err != nil {
			t.Fatal(err)
		}
		got, err := AppendOperation(nil, &op)
		if err != nil {
			t.Fatalf("%s: %v", op.Op, err)
		}
		var w, g any
		if err := json.Unmarshal(want, &w); err != nil {
			t.Fatal(err)
		}
		if m, ok := w.(map[string]any); ok && op.Op == "wait" {
			for _, k := range []string{"where", "rows"} {
				if m[k] == nil {
					m[k] = []any{}
				}
			}
		}
		if err := json.Unmarshal(got, &g); err != nil {
			t.Fatalf("%s: invalid JSON %s: %v", op.Op, got, err)
		}
		if !reflect.DeepEqual(sortMaps(w), sortMaps(g)) {
			t.Errorf("%s:\n got %s\nwant %s", op.Op, got, want)
		}
	}
}

// sortMaps puts the pairs of every ["map", [...]] in a fixed order:
// neither encoder promises one.
func sortMaps(v any) any {
	switch x := v.(type) {
	case []any:
		if len(x) == 2 && x[0] == "map" {
			pairs, _ := x[1].([]any)
			m := map[string]any{}
			for _, p := range pairs {
				kv := p.([]any)
				k, _ := json.Marshal(kv[0])
				m[string(k)] = sortMaps(kv[1])
			}
			return m
		}
		out := make([]any, len(x))
		for i := range x {
			out[i] = sortMaps(x[i])
		}
		return out
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			out[k] = sortMaps(e)
		}
		return out
	}
	return v
}

func TestAppendOperationRefusesWhatJSONCannotSay(t *testing.T) {
	op := ovsdb.Operation{Op: "insert", Table: "T", Row: ovsdb.Row{"c": make(chan int)}}
	if _, err := AppendOperation(nil, &op); err == nil {
		t.Fatal("a channel value was encoded")
	}
}

// decodeResults must read a reply as libovsdb's decoder does.
func TestDecodeResultsMatchesLibovsdb(t *testing.T) {
	raw := []byte(`[{},{"uuid":["uuid","c0ffee00-1234-4abc-8def-0123456789ab"]},{"count":3},` +
		`{"rows":[{"name":"a","_uuid":["uuid","c0ffee00-1234-4abc-8def-0123456789ac"]}]},` +
		`{"uuid":[ "uuid", "c0ffee00-1234-4abc-8def-0123456789ad" ]},` +
		`{"error":"constraint violation","details":"why \"quoted\"","extra":[1,{"a":2}]},null]`)
	var want []ovsdb.OperationResult
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	got, err := decodeResults(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	for _, bad := range []string{`[{"count":"x"}]`, `[{"uuid":["uuid"]}]`, `[{]`, `{}`} {
		if _, err := decodeResults([]byte(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}

// An insert of a row of defaults (courier-nbctl init's NB_Global) must
// still carry "row", which RFC 7047 requires and ovsdb-server refuses to
// do without; libovsdb's encoding drops it.
func TestAppendOperationInsertOfDefaults(t *testing.T) {
	got, err := AppendOperation(nil, &ovsdb.Operation{Op: "insert", Table: "NB_Global", UUIDName: "g", Row: ovsdb.Row{}})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"op":"insert","table":"NB_Global","uuid-name":"g","row":{}}`; string(got) != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
