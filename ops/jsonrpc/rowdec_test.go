package jsonrpc

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"reflect"
	"testing"

	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/schema/nbdb"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// RowDecoder must give exactly what libovsdb's mapper gives for the same
// row, for every table of both databases, with random contents: empty,
// one-member and larger sets, absent and present optionals, escapes.
func TestRowDecoderMatchesLibovsdb(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for _, db := range []struct {
		client func() (model.ClientDBModel, error)
		schema ovsdb.DatabaseSchema
	}{{nbdb.FullDatabaseModel, nbdb.Schema()}, {sbdb.FullDatabaseModel, sbdb.Schema()}} {
		cm, err := db.client()
		if err != nil {
			t.Fatal(err)
		}
		dbm, errs := model.NewDatabaseModel(db.schema, cm)
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		for table, typ := range cm.Types() {
			proto := reflect.New(typ.Elem()).Interface().(model.Model)
			dec, err := NewRowDecoder(proto)
			if err != nil {
				t.Fatalf("%s: %v", table, err)
			}
			ts := db.schema.Table(table)
			for i := 0; i < 200; i++ {
				uuid := randUUID(rng)
				js := randomRow(rng, ts, i%4 == 0)
				var row ovsdb.Row
				if err := json.Unmarshal(js, &row); err != nil {
					t.Fatalf("%s: %v\n%s", table, err, js)
				}
				want, err := model.CreateModel(dbm, table, &row, uuid)
				if err != nil {
					t.Fatalf("%s: libovsdb: %v\n%s", table, err, js)
				}
				got, err := dec.Decode(uuid, js)
				if err != nil {
					t.Fatalf("%s: %v\n%s", table, err, js)
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("%s: row %s\n got %#v\nwant %#v", table, js, got, want)
				}
			}
		}
	}
}

func TestRowDecoderRefusesBadInput(t *testing.T) {
	dec, err := NewRowDecoder(&nbdb.Port{})
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{
		``, `{`, `{"name":}`, `{"name":"x"`, `{"name":5}`, `{"ips":["map",[]]}`,
		`{"status":["set",[]]}`, `{"port_security":"yes"}`, `{"name":"unterminated}`,
		`{"requested_chassis":["uuid"]}`, `{"name":"a" "mac":"b"}`,
	} {
		if _, err := dec.Decode("u", []byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
	if _, err := NewRowDecoder(&struct {
		UUID string   `ovsdb:"_uuid"`
		X    []func() `ovsdb:"x"`
	}{}); err == nil {
		t.Error("planned a decoder for a column of funcs")
	}
}

func randUUID(rng *rand.Rand) string {
	b := make([]byte, 16)
	rng.Read(b)
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

var oddStrings = []string{"", "plain", `quo"te`, "back\\slash", "new\nline", "é☃", "\u2028", "tab\t"}

func randomAtom(rng *rand.Rand, bt ovsdb.BaseType) any {
	switch bt.Type {
	case ovsdb.TypeString:
		if e := bt.Enum; len(e) > 0 {
			return e[rng.Intn(len(e))]
		}
		return oddStrings[rng.Intn(len(oddStrings))] + fmt.Sprint(rng.Intn(1000))
	case ovsdb.TypeInteger:
		return rng.Intn(1<<20) - 1000
	case ovsdb.TypeReal:
		return rng.Float64() * 100
	case ovsdb.TypeBoolean:
		return rng.Intn(2) == 1
	case ovsdb.TypeUUID:
		return []any{"uuid", randUUID(rng)}
	}
	panic(bt.Type)
}

// randomRow writes a row the way ovsdb-server does; with all set, every
// column is present, else about half of them.
func randomRow(rng *rand.Rand, ts *ovsdb.TableSchema, all bool) []byte {
	row := map[string]any{}
	for name, col := range ts.Columns {
		if !all && rng.Intn(2) == 0 {
			continue
		}
		ct := col.TypeObj
		max := ct.Max()
		switch {
		case col.Type == ovsdb.TypeMap:
			var pairs []any
			for i := rng.Intn(4); i > 0; i-- {
				pairs = append(pairs, []any{randomAtom(rng, *ct.Key), randomAtom(rng, *ct.Value)})
			}
			if pairs == nil {
				pairs = []any{}
			}
			row[name] = []any{"map", pairs}
		case col.Type == ovsdb.TypeSet:
			n := rng.Intn(4)
			if max != ovsdb.Unlimited && n > max {
				n = max
			}
			elems := []any{}
			for i := 0; i < n; i++ {
				elems = append(elems, randomAtom(rng, *ct.Key))
			}
			if n == 1 && rng.Intn(2) == 0 {
				row[name] = elems[0] // a one-member set may be written bare
			} else {
				row[name] = []any{"set", elems}
			}
		default:
			row[name] = randomAtom(rng, *ct.Key)
		}
	}
	js, err := json.Marshal(row)
	if err != nil {
		panic(err)
	}
	return js
}

// An update2 diff: scalars and optionals are sent whole, sets toggle
// their members, maps add, change or (when sent unchanged) remove pairs.
func TestApplyDiff(t *testing.T) {
	dec, err := NewRowDecoder(&nbdb.Port{})
	if err != nil {
		t.Fatal(err)
	}
	hv1, yes := "hv1", true
	old := &nbdb.Port{UUID: "u", Name: "p", MAC: "02:00:00:00:00:01", IPs: []string{"10.0.0.1", "10.0.0.2"},
		RequestedChassis: &hv1, Status: map[string]string{"state": "error", "error": "x"}}
	got, err := dec.ApplyDiff(old, []byte(`{"mac":"02:00:00:00:00:02","ips":["set",["10.0.0.2","10.0.0.3"]],`+
		`"requested_chassis":["set",[]],"port_security":true,"status":["map",[["state","ok"],["error","x"]]],"external_ids":["map",[["k","v"]]]}`))
	if err != nil {
		t.Fatal(err)
	}
	want := &nbdb.Port{UUID: "u", Name: "p", MAC: "02:00:00:00:00:02", IPs: []string{"10.0.0.1", "10.0.0.3"},
		PortSecurity: &yes, Status: map[string]string{"state": "ok"}, ExternalIDs: map[string]string{"k": "v"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	if old.MAC != "02:00:00:00:00:01" || len(old.IPs) != 2 || old.RequestedChassis == nil || len(old.Status) != 2 {
		t.Errorf("the old row was modified: %+v", old)
	}
	if _, err := dec.ApplyDiff(old, []byte(`{"requested_chassis":["set",["a","b"]]}`)); err == nil {
		t.Error("two values for an optional column were accepted")
	}
	if _, err := dec.ApplyDiff(&nbdb.VPC{}, []byte(`{}`)); err == nil {
		t.Error("a diff was applied to a row of another table")
	}
}
