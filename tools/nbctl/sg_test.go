package nbctl_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/courier-sdn/courier/internal/testenv"
)

// Security groups: same-named groups in two VPCs, rules by port range,
// CIDR and remote group, ports in two groups, refusals that name the
// row, and show.
func TestSecurityGroupCommands(t *testing.T) {
	dbs := testenv.StartDBs(t)
	db := dbs.NB
	mustNB(t, db, "init")
	mustNB(t, db, "vpc-add", "blue", "--", "vpc-add", "red", "--", "vpc-add", "lab", "--open")
	mustNB(t, db, "vxnet-add", "blue", "web", "10.0.1.0/24", "--", "vxnet-add", "red", "web2", "10.0.1.0/24")
	mustNB(t, db, "port-add", "web", "vm1", "02:00:00:00:01:05", "10.0.1.5")
	mustNB(t, db, "sg-add", "blue", "web", "--", "sg-add", "blue", "db", "--", "sg-add", "red", "web")
	mustNB(t, db, "--may-exist", "sg-add", "blue", "web")
	mustNB(t, db, "--may-exist", "vpc-add", "lab", "--open")
	if _, err := nb(db, "--may-exist", "vpc-add", "blue", "--open"); err == nil || !strings.Contains(err.Error(), "open") {
		t.Errorf("--may-exist vpc-add of a closed VPC with --open: %v", err)
	}
	if _, err := nb(db, "sg-add", "blue", "web"); err == nil || !strings.Contains(err.Error(), "already has") {
		t.Errorf("a second group web in blue: %v", err)
	}
	// "web" is in two VPCs: a bare name is ambiguous.
	if _, err := nb(db, "sg-rule-add", "web", "ingress", "tcp", "80"); err == nil || !strings.Contains(err.Error(), "VPC/web") {
		t.Errorf("ambiguous group name: %v", err)
	}
	mustNB(t, db, "sg-rule-add", "blue/web", "ingress", "tcp", "80-81", "--remote", "10.0.0.0/8")
	mustNB(t, db, "sg-rule-add", "blue/web", "ingress", "icmp")
	mustNB(t, db, "sg-rule-add", "db", "ingress", "tcp", "5432", "--remote-group", "web")
	mustNB(t, db, "--may-exist", "sg-rule-add", "blue/web", "ingress", "icmp")
	for _, bad := range [][]string{
		{"sg-rule-add", "db", "ingress", "icmp", "80"},                      // a port for icmp
		{"sg-rule-add", "db", "sideways", "tcp"},                            // direction
		{"sg-rule-add", "db", "egress", "tcp", "90-80"},                     // range
		{"sg-rule-add", "db", "egress", "tcp", "--remote", "x"},             // CIDR
		{"sg-rule-add", "db", "egress", "tcp", "--remote-group", "red/web"}, // other VPC
		{"sg-rule-add", "db", "ingress", "icmp", "--remote", "10.0.0.1/8"},  // host bits
	} {
		if _, err := nb(db, bad...); err == nil {
			t.Errorf("%v was accepted", bad)
		}
	}
	var rules []map[string]any
	if err := json.Unmarshal([]byte(mustNB(t, db, "-f=json", "sg-rule-list", "blue/web")), &rules); err != nil || len(rules) != 2 {
		t.Fatalf("sg-rule-list: %v %v", rules, err)
	}
	mustNB(t, db, "port-set", "vm1", "--sg", "web,db")
	show := mustNB(t, db, "show", "blue")
	for _, want := range []string{
		"port vm1: 02:00:00:00:01:05 10.0.1.5 sg db,web",
		"security group db",
		"ingress tcp 5432 from group web",
		"security group web",
		"ingress tcp 80-81 from 10.0.0.0/8",
		"ingress icmp from 0.0.0.0/0",
	} {
		if !strings.Contains(show, want) {
			t.Errorf("show lacks %q:\n%s", want, show)
		}
	}
	if !strings.Contains(mustNB(t, db, "show", "lab"), "open: no security groups") {
		t.Errorf("show lab does not say it is open")
	}
	// A group in use, or named by a rule, is not deleted.
	if _, err := nb(db, "sg-del", "db"); err == nil || !strings.Contains(err.Error(), "port vm1") {
		t.Errorf("sg-del of a group in use: %v", err)
	}
	mustNB(t, db, "port-set", "vm1", "--sg", "")
	if !strings.Contains(mustNB(t, db, "show", "blue"), "port vm1: 02:00:00:00:01:05 10.0.1.5\n") {
		t.Errorf("port-set --sg '' left groups")
	}
	if _, err := nb(db, "sg-del", "blue/web"); err == nil || !strings.Contains(err.Error(), "remote group of a rule of group db") {
		t.Errorf("sg-del of a remote group: %v", err)
	}
	id := rules[0]["id"].(string)
	mustNB(t, db, "sg-rule-del", "blue/web", id)
	if _, err := nb(db, "sg-rule-del", "blue/web", id); err == nil {
		t.Errorf("a rule deleted twice")
	}
	mustNB(t, db, "--if-exists", "sg-rule-del", "blue/web", id)
	json.Unmarshal([]byte(mustNB(t, db, "-f=json", "sg-rule-list", "db")), &rules)
	mustNB(t, db, "sg-rule-del", "db", rules[0]["id"].(string))
	mustNB(t, db, "sg-del", "blue/web", "--", "sg-del", "db")
	mustNB(t, db, "--if-exists", "sg-del", "db")
	var groups []map[string]any
	json.Unmarshal([]byte(mustNB(t, db, "-f=json", "sg-list")), &groups)
	if len(groups) != 1 || groups[0]["vpc"] != "red" {
		t.Errorf("sg-list after deletes: %v", groups)
	}
	// Deleting the VPC deletes its groups and their rules.
	mustNB(t, db, "vpc-del", "red")
	if d := dump(t, db); strings.Contains(d, "5432") || strings.Contains(d, "red") {
		t.Errorf("rows left after vpc-del:\n%s", d)
	}
}
