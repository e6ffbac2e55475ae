package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/courier-sdn/courier/internal/central"
	"github.com/courier-sdn/courier/internal/testenv"
)

// The example declares a network against real databases, northd and
// southd, and reports each port as Courier judged it: a good one
// accepted, one whose address is outside its vxnet refused by northd
// with the reason, and a second VPC of the same name refused by the
// database, naming the row.
func TestOrchestratorExample(t *testing.T) {
	dbs := testenv.StartDBs(t, central.Daemons("", "")...)
	var out, errb bytes.Buffer
	code := run([]string{"--db", dbs.NB, "--timeout", "30s", "vm1=02:00:00:00:01:0a,10.0.1.10", "vm2=02:00:00:00:01:0b,10.0.9.11"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	want := "vm1: accepted, no chassis yet\nvm2: refused: IP 10.0.9.11"
	if !strings.HasPrefix(out.String(), want) {
		t.Errorf("got:\n%s\nwant it to start with:\n%s", out.String(), want)
	}
	out.Reset()
	if code := run([]string{"--db", dbs.NB, "vm3=02:00:00:00:01:0c,10.0.1.12"}, &out, &errb); code != 1 ||
		!strings.Contains(errb.String(), "VPC blue refused by database: constraint violation") {
		t.Errorf("a second VPC blue: exit %d: %s", code, errb.String())
	}
}
