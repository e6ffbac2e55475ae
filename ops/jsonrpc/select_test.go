package jsonrpc

import (
	"errors"
	"strings"
	"testing"

	"github.com/courier-sdn/courier/schema/sbdb"
)

func TestDecodeSelect(t *testing.T) {
	dec, err := NewRowDecoder(&sbdb.PortBinding{})
	if err != nil {
		t.Fatal(err)
	}
	rows, err := decodeSelect([]byte(`[{"rows":[{"_uuid":["uuid","c0ffee00-1234-4abc-8def-0123456789ab"],"_version":["uuid","c0ffee00-1234-4abc-8def-0123456789ac"],`+
		`"logical_port":"p1","tunnel_key":7,"ips":["set",["10.0.0.2","10.0.0.3"]],"chassis":["set",[]]},`+
		`{"_uuid":["uuid","c0ffee00-1234-4abc-8def-0123456789ad"],"logical_port":"p2","chassis":"hv1"}]}]`), dec)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 {
		t.Fatalf("%d rows", len(rows))
	}
	p1, p2 := rows[0].(*sbdb.PortBinding), rows[1].(*sbdb.PortBinding)
	if p1.UUID != "c0ffee00-1234-4abc-8def-0123456789ab" || p1.LogicalPort != "p1" || p1.TunnelKey != 7 || len(p1.IPs) != 2 || p1.Chassis != nil {
		t.Errorf("p1 = %+v", p1)
	}
	if p2.Chassis == nil || *p2.Chassis != "hv1" {
		t.Errorf("p2 = %+v", p2)
	}
	if rows, err := decodeSelect([]byte(`[{"rows":[]}]`), dec); err != nil || len(rows) != 0 {
		t.Errorf("empty table: %v %v", rows, err)
	}
	for reply, want := range map[string]string{
		`[{"error":"unknown table","details":"no table X"}]`: "no table X",
		`[]`:                              "empty reply",
		`[{"rows":[{"tunnel_key":"x"}]}]`: "column tunnel_key",
	} {
		if _, err := decodeSelect([]byte(reply), dec); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %v, want one saying %q", reply, err, want)
		}
	}
}

// decodeResult reads each select's rows, and a refused select as a
// SelectError (not a lost connection: reading again would not help).
func TestDecodeResults(t *testing.T) {
	dec, err := NewRowDecoder(&sbdb.PortBinding{})
	if err != nil {
		t.Fatal(err)
	}
	s := &scanner{b: []byte(`{"rows":[{"logical_port":"p1"},{"logical_port":"p2"}]}`)}
	if rows, err := decodeResult(s, dec); err != nil || len(rows) != 2 || rows[1].(*sbdb.PortBinding).LogicalPort != "p2" {
		t.Errorf("rows: %v %v", rows, err)
	}
	s = &scanner{b: []byte(`{"error":"syntax error","details":"no column nosuch"}`)}
	_, err = decodeResult(s, dec)
	var se *SelectError
	if !errors.As(err, &se) || se.Details != "no column nosuch" {
		t.Errorf("refused select: %v, want a SelectError", err)
	}
}
