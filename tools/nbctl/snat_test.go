package nbctl_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/ovn-kubernetes/libovsdb/client"

	"github.com/courier-sdn/courier/internal/central"
	"github.com/courier-sdn/courier/internal/testenv"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// SNAT: each refusal names what is wrong and leaves the database as it
// was; snat-set creates, then replaces in place; show and snat-list
// print it; northd writes the southbound row and the status; snat-del
// and vpc-del delete it.
func TestSNATCommands(t *testing.T) {
	dbs := testenv.StartDBs(t, central.Daemons("", "")[0])
	db := dbs.NB
	nbWait(t, db, "init", "--", "vpc-add", "blue", "--", "vpc-add", "red", "--", "vxnet-add", "blue", "web", "10.0.1.0/24",
		"--", "port-add", "web", "vm1", "02:00:00:00:01:05", "10.0.1.5")
	mustNB(t, db, "extnet-add", "internet", "203.0.113.0/24", "--kind", "public")
	mustNB(t, db, "extnet-add", "dc", "198.51.100.0/24", "--kind", "physical")
	mustNB(t, db, "eip-add", "internet", "203.0.113.50", "--port", "vm1")
	mustNB(t, db, "snat-set", "red", "internet", "203.0.113.20")
	for _, c := range []struct {
		args []string
		err  string
	}{
		{[]string{"snat-set", "green", "internet", "203.0.113.9"}, `no VPC named "green"`},
		{[]string{"snat-set", "blue", "nowhere", "203.0.113.9"}, `no external network named "nowhere"`},
		{[]string{"snat-set", "blue", "dc", "198.51.100.9"}, "SNAT needs a public network"},
		{[]string{"snat-set", "blue", "internet", "192.0.2.1"}, "SNAT address 192.0.2.1 is outside external network internet"},
		{[]string{"snat-set", "blue", "internet", "203.0.113.50"}, "is an EIP of external network internet"},
		{[]string{"snat-set", "blue", "internet", "203.0.113.20"}, "SNAT address 203.0.113.20 is VPC red's"},
		{[]string{"snat-set", "blue", "internet", "203.0.113.9,203.0.113.9"}, "given twice"},
		{[]string{"snat-set", "blue", "internet", "203.0.113.9", "--block", "1000"}, "--block 1000: a power of two from 64 to 32768"},
		{[]string{"snat-set", "blue", "internet", "203.0.113.9", "--block", "65536"}, "--block 65536"},
		{[]string{"snat-del", "blue"}, "VPC blue has no SNAT"},
		{[]string{"eip-add", "internet", "203.0.113.20"}, "203.0.113.20 is a SNAT address of VPC red"},
		{[]string{"extnet-del", "internet"}, "external network internet is the SNAT network of VPC red: snat-del it first"},
		// one bad command of several: none of them is applied
		{[]string{"snat-set", "blue", "internet", "203.0.113.9", "--", "snat-set", "red", "internet", "203.0.114.1"}, "outside"},
	} {
		if _, err := nb(db, c.args...); err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%v: %v, want an error with %q", c.args, err, c.err)
		}
	}
	nbWait(t, db, "snat-set", "blue", "internet", "203.0.113.10,203.0.113.9", "--block", "4096")
	list := func() []map[string]any {
		var rows []map[string]any
		if err := json.Unmarshal([]byte(mustNB(t, db, "-f=json", "snat-list")), &rows); err != nil {
			t.Fatal(err)
		}
		return rows
	}
	rows := list()
	if len(rows) != 2 || rows[0]["vpc"] != "blue" || rows[0]["addresses"] != "203.0.113.9,203.0.113.10" || rows[0]["block"] != float64(4096) ||
		rows[0]["status"] != "ok" || rows[1]["vpc"] != "red" || rows[1]["block"] != float64(1024) {
		t.Fatalf("snat-list: %v", rows)
	}
	if show := mustNB(t, db, "show", "blue"); !strings.Contains(show, "    snat 203.0.113.9,203.0.113.10 via internet, block 4096\n") {
		t.Errorf("show blue:\n%s", show)
	}
	// The southbound: one row per VPC, addresses in numeric order.
	sbSNAT := func() map[int]*sbdb.SNAT {
		m, _ := sbdb.FullDatabaseModel()
		s, err := ops.Open(context.Background(), m, ops.SessionOptions{Remotes: []string{dbs.SB}, Monitor: []client.MonitorOption{client.WithTable(&sbdb.SNAT{})}})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		out := map[int]*sbdb.SNAT{}
		for _, r := range ops.Rows[sbdb.SNAT](s) {
			out[r.Vpc] = r
		}
		return out
	}
	got := sbSNAT()
	if len(got) != 2 {
		t.Fatalf("southbound SNAT rows: %v", got)
	}
	for _, r := range got {
		if r.Addresses[0] == "203.0.113.9" && (len(r.Addresses) != 2 || r.BlockSize != 4096 || r.Network != "internet") {
			t.Errorf("blue's southbound SNAT: %+v", r)
		}
	}
	// Replaced in place: one row still; without --block, the default.
	before := strings.TrimSpace(mustNB(t, db, "get", "VPC", "blue", "snat"))
	nbWait(t, db, "snat-set", "blue", "internet", "203.0.113.11")
	if after := strings.TrimSpace(mustNB(t, db, "get", "VPC", "blue", "snat")); after != before {
		t.Errorf("snat-set replaced the row (%s, then %s) instead of updating it", before, after)
	}
	if rows := list(); rows[0]["addresses"] != "203.0.113.11" || rows[0]["block"] != float64(1024) {
		t.Errorf("after replacing: %v", rows)
	}
	nbWait(t, db, "snat-del", "blue")
	mustNB(t, db, "--if-exists", "snat-del", "blue")
	nbWait(t, db, "vpc-del", "red")
	if rows := list(); len(rows) != 0 {
		t.Errorf("after snat-del and vpc-del: %v", rows)
	}
	if out := mustNB(t, db, "list", "SNAT"); strings.TrimSpace(out) != "" {
		t.Errorf("SNAT rows outlived their VPCs:\n%s", out)
	}
	if got := sbSNAT(); len(got) != 0 {
		for _, r := range got {
			t.Errorf("southbound SNAT row after deleting them: %+v", r)
		}
	}
	mustNB(t, db, "eip-unbind", "203.0.113.50", "--", "extnet-del", "internet")
}
