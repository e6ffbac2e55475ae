package nbctl_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/courier-sdn/courier/internal/testenv"
)

// External networks and EIPs: each refusal names what is wrong and
// leaves the database as it was; binding and unbinding write one column;
// deleting a port unbinds its EIP; show prints them.
func TestEIPCommands(t *testing.T) {
	dbs := testenv.StartDBs(t)
	db := dbs.NB
	mustNB(t, db, "init")
	mustNB(t, db, "vpc-add", "blue", "--", "vxnet-add", "blue", "web", "10.0.1.0/24")
	mustNB(t, db, "port-add", "web", "vm1", "02:00:00:00:01:05", "10.0.1.5",
		"--", "port-add", "web", "vm2", "02:00:00:00:01:06", "10.0.1.6",
		"--", "port-add", "web", "vm3", "02:00:00:00:01:07", "unknown")
	mustNB(t, db, "extnet-add", "internet", "203.0.113.0/24", "--kind", "public", "--next-hop", "198.51.100.1")
	mustNB(t, db, "--may-exist", "extnet-add", "internet", "203.0.113.0/24", "--kind", "public", "--next-hop", "198.51.100.1")
	mustNB(t, db, "eip-add", "internet", "203.0.113.10", "--port", "vm1")
	mustNB(t, db, "eip-add", "internet", "203.0.113.11")
	for _, c := range []struct {
		args []string
		err  string
	}{
		{[]string{"extnet-add", "internet", "203.0.113.0/24", "--kind", "public"}, "already exists"},
		{[]string{"extnet-add", "other", "203.0.113.128/25", "--kind", "public"}, "overlaps"},
		{[]string{"extnet-add", "other", "192.0.2.0/24", "--kind", "orbital"}, "want public or physical"},
		{[]string{"extnet-add", "other", "192.0.2.1/24", "--kind", "public"}, "host bits"},
		{[]string{"extnet-add", "other", "192.0.2.0/24", "--kind", "public", "--next-hop", "x"}, "--next-hop"},
		{[]string{"eip-add", "internet", "192.0.2.7"}, "outside external network internet"},
		{[]string{"eip-add", "internet", "203.0.113.10"}, "already exists"},
		{[]string{"eip-add", "nowhere", "203.0.113.12"}, "no external network"},
		{[]string{"eip-add", "internet", "203.0.113.12", "--port", "vm1"}, "already has EIP 203.0.113.10"},
		{[]string{"eip-add", "internet", "203.0.113.12", "--port", "vm3"}, "no IPv4 address"},
		{[]string{"eip-bind", "203.0.113.10", "vm2"}, "bound to port vm1"},
		{[]string{"eip-bind", "203.0.113.11", "vm1"}, "already has EIP"},
		{[]string{"eip-bind", "203.0.113.99", "vm2"}, "no EIP 203.0.113.99"},
		{[]string{"eip-bind", "203.0.113.11", "ghost"}, "no port"},
		{[]string{"extnet-del", "internet"}, "eip-unbind it first"},
		// one bad command of several: none of them is applied
		{[]string{"eip-bind", "203.0.113.11", "vm2", "--", "eip-add", "internet", "203.0.114.1"}, "outside"},
	} {
		if _, err := nb(db, c.args...); err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%v: %v, want an error with %q", c.args, err, c.err)
		}
	}
	list := func() []map[string]any {
		var rows []map[string]any
		if err := json.Unmarshal([]byte(mustNB(t, db, "-f=json", "eip-list")), &rows); err != nil {
			t.Fatal(err)
		}
		return rows
	}
	if rows := list(); len(rows) != 2 || rows[0]["port"] != "vm1" || rows[1]["port"] != "" {
		t.Fatalf("eip-list: %v", rows)
	}
	mustNB(t, db, "eip-bind", "203.0.113.11", "vm2")
	show := mustNB(t, db, "show")
	for _, want := range []string{
		"port vm1: 02:00:00:00:01:05 10.0.1.5 eip 203.0.113.10",
		"extnet internet (public, 203.0.113.0/24, next hop 198.51.100.1)",
		"eip 203.0.113.10 -> port vm1",
		"eip 203.0.113.11 -> port vm2",
	} {
		if !strings.Contains(show, want) {
			t.Errorf("show lacks %q:\n%s", want, show)
		}
	}
	mustNB(t, db, "eip-unbind", "203.0.113.10")
	mustNB(t, db, "port-del", "vm2") // a weak reference: the EIP is unbound
	if rows := list(); rows[0]["port"] != "" || rows[1]["port"] != "" {
		t.Fatalf("after unbind and port-del: %v", rows)
	}
	mustNB(t, db, "eip-del", "203.0.113.11")
	mustNB(t, db, "--if-exists", "eip-del", "203.0.113.11")
	if out := mustNB(t, db, "extnet-list"); !strings.Contains(out, "internet") || !strings.Contains(out, "public") {
		t.Errorf("extnet-list: %s", out)
	}
	mustNB(t, db, "extnet-del", "internet")
	if rows := list(); len(rows) != 0 {
		t.Errorf("EIPs outlived their network: %v", rows)
	}
}
