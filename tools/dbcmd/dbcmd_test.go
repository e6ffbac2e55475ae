package dbcmd_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/courier-sdn/courier/internal/testenv"
	"github.com/courier-sdn/courier/tools/cmdline"
	"github.com/courier-sdn/courier/tools/nbctl"
	"github.com/courier-sdn/courier/tools/sbctl"
)

type tool func(style cmdline.Style, args ...string) (string, error)

func nbTool(db string) tool {
	return func(style cmdline.Style, args ...string) (string, error) {
		var out bytes.Buffer
		o := nbctl.Options{DB: db, Wait: "none", Format: style.Format, FormatSet: style.FormatSet,
			NoHeadings: style.NoHeadings, Bare: style.Bare, LeaderOnly: true, Timeout: 10 * time.Second}
		if o.Format == "" {
			o.Format = "table"
		}
		err := nbctl.Run(context.Background(), o, args, &out)
		return out.String(), err
	}
}

func sbTool(db string) tool {
	return func(style cmdline.Style, args ...string) (string, error) {
		var out bytes.Buffer
		err := sbctl.RunWith(context.Background(), sbctl.Options{DB: db, Style: style, Timeout: 10 * time.Second}, args, &out)
		return out.String(), err
	}
}

func (f tool) must(t *testing.T, args ...string) string {
	t.Helper()
	out, err := f(cmdline.Style{}, args...)
	if err != nil {
		t.Fatalf("%s: %v", strings.Join(args, " "), err)
	}
	return out
}

func (f tool) refused(t *testing.T, want string, args ...string) {
	t.Helper()
	if _, err := f(cmdline.Style{}, args...); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("%s: got %v, want an error saying %q", strings.Join(args, " "), err, want)
	}
}

func expect(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("%s:\ngot  %q\nwant %q", what, got, want)
	}
}

// Every column type of the northbound through the generic commands:
// strings (scalar, optional, constrained), integers (scalar, optional),
// booleans, sets of strings, sets of strong references, maps (free and
// enum-keyed).
func TestNorthboundColumnTypes(t *testing.T) {
	dbs := testenv.StartDBs(t)
	nb := nbTool(dbs.NB)
	nb.must(t, "vpc-add", "blue", "--", "vxnet-add", "blue", "web", "10.0.1.0/24")
	nb.must(t, "port-add", "web", "vm1", "02:00:00:00:01:0a", "10.0.1.10")

	nb.must(t, "set", "Port", "vm1", "external_ids:owner=alice", `external_ids:"a b"="c d"`, "learned_limit=8", "port_security=false",
		`ips=["10.0.1.10", "10.0.1.11"]`, "requested_chassis=hv1")
	expect(t, "get", nb.must(t, "get", "Port", "vm1", "external_ids", "external_ids:owner", "learned_limit", "port_security", "ips", "requested_chassis", "mac"),
		"{\"a b\"=\"c d\", owner=alice}\nalice\n8\nfalse\n[\"10.0.1.10\", \"10.0.1.11\"]\nhv1\n\"02:00:00:00:01:0a\"\n")
	nb.must(t, "add", "Port", "vm1", "virtual_ips", "10.0.1.50", "10.0.1.51")
	nb.must(t, "remove", "Port", "vm1", "virtual_ips", "10.0.1.50")
	nb.must(t, "remove", "Port", "vm1", "external_ids", `"a b"`)
	nb.must(t, "add", "Port", "vm1", "external_ids", "owner=bob", "team=net") // an existing key keeps its value
	nb.must(t, "clear", "Port", "vm1", "learned_limit", "requested_chassis")
	expect(t, "after add/remove/clear", nb.must(t, "get", "Port", "vm1", "virtual_ips", "external_ids", "learned_limit", "requested_chassis"),
		"[\"10.0.1.51\"]\n{owner=alice, team=net}\n[]\n[]\n")
	expect(t, "bare", mustStyle(t, nb, cmdline.Style{Bare: true}, "--columns=external_ids,ips", "list", "Port", "vm1"),
		"owner=alice team=net\n10.0.1.10 10.0.1.11\n")

	// References: a row made with --id, referred to by @name in the
	// same transaction, and a reference given by the row's name.
	nb.must(t, "--", "--id=@r", "create", "Route", "prefix=192.168.0.0/16", "nexthop=10.0.1.10", "external_ids:why=test",
		"--", "add", "VPC", "blue", "routes", "@r")
	expect(t, "route-list after create", nb.must(t, "route-list", "blue"), "PREFIX          NEXTHOP    STATUS\n192.168.0.0/16  10.0.1.10  pending\n")
	nb.must(t, "--", "--id=@v", "create", "Vxnet", "name=db", "cidr=10.0.2.0/24", "vni=77", "--", "add", "VPC", "blue", "vxnets", "db")
	expect(t, "find by integer", mustStyle(t, nb, cmdline.Style{Bare: true}, "--columns=name", "find", "Vxnet", "vni=77"), "db\n")
	expect(t, "find by set", mustStyle(t, nb, cmdline.Style{Bare: true}, "--columns=name", "find", "Port", "ips{>=}10.0.1.11"), "vm1\n")
	expect(t, "find by key", mustStyle(t, nb, cmdline.Style{Bare: true}, "--columns=name", "find", "Port", "external_ids:team=net"), "vm1\n")
	expect(t, "find none", mustStyle(t, nb, cmdline.Style{Bare: true}, "find", "Port", "external_ids:team!=net"), "")

	// create prints the new row's UUID; NB_Global is ".".
	u := strings.TrimSpace(nb.must(t, "create", "VPC", "name=green"))
	expect(t, "created row by UUID", nb.must(t, "get", "VPC", u, "name"), "green\n")
	expect(t, "one-row table", nb.must(t, "get", "NB_Global", ".", "nb_cfg"), "0\n")

	// list in each format.
	expect(t, "list", nb.must(t, "--columns=name,vxnets", "list", "VPC", "green"), "name                : green\nvxnets              : []\n")
	expect(t, "table", mustStyle(t, nb, cmdline.Style{Format: "table", FormatSet: true}, "--columns=name,routes", "list", "VPC", "green"),
		"name  routes\n----- ------\ngreen []\n")
	expect(t, "csv", mustStyle(t, nb, cmdline.Style{Format: "csv", FormatSet: true}, "--columns=name,external_ids", "list", "Port"),
		"name,external_ids\nvm1,\"{owner=alice, team=net}\"\n")
	var j struct {
		Data     [][]any
		Headings []string
	}
	if err := json.Unmarshal([]byte(mustStyle(t, nb, cmdline.Style{Format: "json", FormatSet: true}, "--columns=name,learned_limit,port_security,status", "list", "Port")), &j); err != nil {
		t.Fatal(err)
	}
	if len(j.Data) != 1 || j.Data[0][0] != "vm1" || j.Data[0][2] != false || strings.Join(j.Headings, ",") != "name,learned_limit,port_security,status" {
		t.Errorf("json: %+v", j)
	}

	// A row a specific command creates in the same invocation can be
	// written, not read.
	nb.must(t, "vpc-add", "red", "--", "set", "VPC", "red", "external_ids:owner=carol", "--", "add", "VPC", "red", "external_ids", "team=x")
	expect(t, "set on a row made by vpc-add", nb.must(t, "get", "VPC", "red", "external_ids"), "{owner=carol, team=x}\n")
	nb.refused(t, "created by this same invocation", "vpc-add", "red2", "--", "get", "VPC", "red2", "name")

	nb.must(t, "destroy", "VPC", "green")
	nb.must(t, "--if-exists", "destroy", "VPC", "green")
	nb.refused(t, `no row "green" in table VPC`, "destroy", "VPC", "green")
	nb.refused(t, `does not contain a column whose name matches "colour"`, "set", "VPC", "blue", "colour=red")
	nb.refused(t, `"many" is not a valid integer or range`, "set", "Vxnet", "db", "vni=many")
	nb.refused(t, "not one of the allowed values", "set", "VPC", "blue", "status:colour=red")
	nb.refused(t, "not a root table", "create", "Port", "name=x", "mac=02:00:00:00:00:09")
	nb.refused(t, "unknown table", "list", "Switch")
	nb.must(t, "wait-until", "Port", "vm1", "port_security=false")
}

// A failing command anywhere in a "--" chain leaves nothing behind:
// caught before sending, or refused by the server.
func TestFailingChainLeavesNothing(t *testing.T) {
	dbs := testenv.StartDBs(t)
	nb := nbTool(dbs.NB)
	nb.must(t, "vpc-add", "blue", "--", "vxnet-add", "blue", "web", "10.0.1.0/24")
	nb.must(t, "port-add", "web", "vm1", "02:00:00:00:01:0a", "10.0.1.10")
	before := nb.must(t, "list", "VPC")
	for _, chain := range [][]string{
		{"vpc-add", "red", "--", "set", "VPC", "red", "external_ids:a=b", "--", "set", "VPC", "blue", "nope=1"},
		{"create", "VPC", "name=red", "--", "set", "Port", "vm1", "learned_limit=5000"}, // the server refuses the range
		{"set", "VPC", "blue", "external_ids:a=b", "--", "vpc-add", "blue"},
		{"--", "--id=@x", "create", "Vxnet", "name=x", "cidr=10.9.0.0/24", "--", "add", "VPC", "blue", "vxnets", "@x", "--", "destroy", "VPC", "nosuch"},
	} {
		if _, err := nb(cmdline.Style{}, chain...); err == nil {
			t.Errorf("%v: succeeded", chain)
		}
	}
	expect(t, "VPCs after failed chains", nb.must(t, "list", "VPC"), before)
	expect(t, "vxnets after failed chains", mustStyle(t, nb, cmdline.Style{Bare: true}, "--columns=name", "list", "Vxnet"), "web\n")
}

// The southbound's tables through courier-sbctl: lookup by name (a
// binding by its logical port), sets, maps, integers, booleans.
func TestSouthbound(t *testing.T) {
	dbs := testenv.StartDBs(t)
	sb := sbTool(dbs.SB)
	u := strings.TrimSpace(sb.must(t, "create", "Chassis", "name=hv9", "encap_ip=192.0.2.9", "roles=[hub]", "external_ids:rack=r1"))
	sb.must(t, "create", "Chassis_Private", "name=hv9", "nb_cfg=3", "alive=true")
	sb.must(t, "create", "Hub", "vpc=7", "chassis=[hv9,hv8]")
	expect(t, "get by name", sb.must(t, "get", "Chassis", "hv9", "_uuid", "roles", "external_ids:rack"), u+"\n[hub]\nr1\n")
	expect(t, "get by UUID prefix", sb.must(t, "get", "Chassis", u[:8], "name"), "hv9\n")
	expect(t, "boolean and integer", sb.must(t, "get", "Chassis_Private", "hv9", "alive", "nb_cfg"), "true\n3\n")
	expect(t, "find an integer", mustStyle(t, sb, cmdline.Style{Bare: true}, "--columns=chassis", "find", "Hub", "vpc>=7"), "hv8 hv9\n")
	sb.refused(t, `no row "7" in table Hub`, "get", "Hub", "7", "vpc")
	hub := strings.TrimSpace(mustStyle(t, sb, cmdline.Style{Bare: true}, "--columns=_uuid", "find", "Hub", "vpc=7"))
	sb.must(t, "remove", "Hub", hub, "chassis", "hv8")
	expect(t, "set member removed", sb.must(t, "get", "Hub", hub, "chassis"), "[hv9]\n")
	sb.must(t, "destroy", "Chassis_Private", "hv9", "--", "destroy", "Chassis", "hv9")
	expect(t, "chassis destroyed", sb.must(t, "list", "Chassis"), "")
}

func mustStyle(t *testing.T, f tool, style cmdline.Style, args ...string) string {
	t.Helper()
	out, err := f(style, args...)
	if err != nil {
		t.Fatalf("%s: %v", strings.Join(args, " "), err)
	}
	return out
}
