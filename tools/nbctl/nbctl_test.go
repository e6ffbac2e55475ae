package nbctl_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/courier-sdn/courier/internal/testenv"
	"github.com/courier-sdn/courier/tools/nbctl"
)

// nb runs one courier-nbctl invocation in-process against db.
func nb(db string, args ...string) (string, error) {
	var out bytes.Buffer
	o := nbctl.Options{DB: db, Wait: "none", Format: "table", LeaderOnly: true, Timeout: 20 * time.Second}
	for len(args) > 0 && strings.HasPrefix(args[0], "-f=") {
		o.Format = strings.TrimPrefix(args[0], "-f=")
		args = args[1:]
	}
	err := nbctl.Run(context.Background(), o, args, &out)
	return out.String(), err
}

func mustNB(t *testing.T, db string, args ...string) string {
	t.Helper()
	out, err := nb(db, args...)
	if err != nil {
		t.Fatalf("courier-nbctl %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// dump is the whole northbound as Debian's ovsdb-client prints it.
func dump(t *testing.T, db string) string {
	t.Helper()
	out, err := exec.Command("ovsdb-client", "dump", db, "Courier_Northbound").CombinedOutput()
	if err != nil {
		t.Fatalf("ovsdb-client dump: %v\n%s", err, out)
	}
	return string(out)
}

func TestEveryCommand(t *testing.T) {
	dbs := testenv.StartDBs(t)
	db := dbs.NB
	mustNB(t, db, "init")
	mustNB(t, db, "vpc-add", "web", "--", "vpc-add", "db")
	mustNB(t, db, "--may-exist", "vpc-add", "web")
	mustNB(t, db, "vxnet-add", "web", "front", "10.0.1.0/24", "--vni", "5001")
	mustNB(t, db, "vxnet-add", "web", "back", "10.0.2.0/24", "--gateway", "10.0.2.254")
	mustNB(t, db, "vxnet-add", "db", "data", "10.0.1.0/24") // same CIDR, other VPC: fine
	mustNB(t, db, "port-add", "front", "vm1", "02:00:00:00:01:05", "10.0.1.5", "--vip", "10.0.1.100", "--chassis", "hv1")
	mustNB(t, db, "port-add", "back", "vm2", "02:00:00:00:02:05", "10.0.2.5", "10.0.2.6")
	mustNB(t, db, "port-add", "back", "vm3", "02:00:00:00:02:07", "unknown", "--no-port-security")
	mustNB(t, db, "route-add", "web", "192.168.0.0/16", "10.0.1.5")

	show := mustNB(t, db, "show", "web")
	for _, want := range []string{
		"vpc web",
		"vxnet front (10.0.1.0/24, gateway 10.0.1.1, vni 5001)",
		"vxnet back (10.0.2.0/24, gateway 10.0.2.254)",
		"port vm1: 02:00:00:00:01:05 10.0.1.5 vips 10.0.1.100 on hv1",
		"port vm2: 02:00:00:00:02:05 10.0.2.5 10.0.2.6",
		"port vm3: 02:00:00:00:02:07 unknown",
		"route 192.168.0.0/16 via 10.0.1.5",
	} {
		if !strings.Contains(show, want) {
			t.Errorf("show lacks %q:\n%s", want, show)
		}
	}
	if strings.Contains(show, "data") {
		t.Errorf("show web printed another VPC:\n%s", show)
	}

	var vpcs []map[string]any
	if err := json.Unmarshal([]byte(mustNB(t, db, "-f=json", "vpc-list")), &vpcs); err != nil || len(vpcs) != 2 {
		t.Fatalf("vpc-list json: %v %v", vpcs, err)
	}
	// JSON is typed: numbers, arrays, null for none.
	var vxs []map[string]any
	json.Unmarshal([]byte(mustNB(t, db, "-f=json", "vxnet-list", "web")), &vxs)
	if len(vxs) != 2 || vxs[0]["name"] != "back" || vxs[1]["vni"] != 5001.0 || vxs[0]["gateway"] != "10.0.2.254" || vxs[0]["vni"] != nil {
		t.Errorf("vxnet-list web: %v", vxs)
	}
	var ports []map[string]any
	json.Unmarshal([]byte(mustNB(t, db, "-f=json", "port-list", "back")), &ports)
	if len(ports) != 2 || fmt.Sprint(ports[1]["ips"]) != "[]" || fmt.Sprint(ports[0]["ips"]) != "[10.0.2.5 10.0.2.6]" {
		t.Errorf("port-list back: %v", ports)
	}
	if out := mustNB(t, db, "route-list", "web"); !strings.Contains(out, "192.168.0.0/16  10.0.1.5") {
		t.Errorf("route-list: %s", out)
	}

	mustNB(t, db, "port-set", "vm2", "--ips", "10.0.2.9", "--vips", "10.0.2.50,10.0.2.51", "--chassis", "hv2", "--port-security", "off")
	mustNB(t, db, "port-set", "vm2", "--mac", "02:00:00:00:02:09")
	if out := mustNB(t, db, "port-list", "back"); !strings.Contains(out, "vm2   back   02:00:00:00:02:09  10.0.2.9  10.0.2.50,10.0.2.51  hv2") {
		t.Errorf("port-set not applied:\n%s", out)
	}
	mustNB(t, db, "port-set", "vm2", "--chassis", "none", "--vips", "none")
	if out := mustNB(t, db, "show", "web"); !strings.Contains(out, "port vm2: 02:00:00:00:02:09 10.0.2.9\n") {
		t.Errorf("port-set none not applied:\n%s", out)
	}

	mustNB(t, db, "route-del", "web", "192.168.0.0/16")
	mustNB(t, db, "--if-exists", "route-del", "web", "192.168.0.0/16")
	mustNB(t, db, "port-del", "vm3")
	mustNB(t, db, "--if-exists", "port-del", "vm3")
	mustNB(t, db, "vxnet-del", "back")
	if out := mustNB(t, db, "port-list"); strings.Contains(out, "vm2") {
		t.Errorf("deleting a vxnet left its ports:\n%s", out)
	}
	mustNB(t, db, "vpc-del", "web")
	mustNB(t, db, "--if-exists", "vpc-del", "web")
	d := dump(t, db)
	for _, gone := range []string{"front", "vm1", "10.0.1.5\""} {
		if strings.Contains(d, gone) {
			t.Errorf("vpc-del left %q behind:\n%s", gone, d)
		}
	}
	if !strings.Contains(d, "data") {
		t.Errorf("vpc-del web removed the other VPC's vxnet:\n%s", d)
	}
}

// Every refusal must name the offending value, exit non-zero, and leave the
// database exactly as it was.
func TestBadInputChangesNothing(t *testing.T) {
	dbs := testenv.StartDBs(t)
	db := dbs.NB
	mustNB(t, db, "vpc-add", "web", "--", "vxnet-add", "web", "front", "10.0.1.0/24", "--vni", "5001",
		"--", "vxnet-add", "web", "back", "10.0.2.0/24",
		"--", "port-add", "front", "vm1", "02:00:00:00:01:05", "10.0.1.5", "--vip", "10.0.1.100")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"vxnet-add", "web", "x", "10.0.300.0/24"}, `"10.0.300.0/24" is not an IPv4 CIDR`},
		{[]string{"vxnet-add", "web", "x", "10.0.3.7/24"}, "CIDR 10.0.3.7/24 has host bits set"},
		{[]string{"vxnet-add", "web", "x", "10.0.1.128/25"}, "CIDR 10.0.1.128/25 overlaps vxnet front"},
		{[]string{"vxnet-add", "web", "x", "10.0.3.0/24", "--vni", "5001"}, "VNI 5001 is already used by vxnet front"},
		{[]string{"vxnet-add", "web", "x", "10.0.3.0/24", "--vni", "16777216"}, `VNI "16777216" is not between`},
		{[]string{"vxnet-add", "web", "x", "10.0.3.0/24", "--gateway", "10.0.4.1"}, "gateway 10.0.4.1 is not a host address"},
		{[]string{"vxnet-add", "web", "front", "10.0.3.0/24"}, "vxnet front already exists"},
		{[]string{"vxnet-add", "nope", "x", "10.0.3.0/24"}, `no VPC named "nope"`},
		{[]string{"vpc-add", "web"}, "VPC web already exists"},
		{[]string{"vpc-add", "bad name"}, `VPC name "bad name"`},
		{[]string{"port-add", "front", "vm2", "02:00:00:00:01:09", "10.0.9.5"}, "IP 10.0.9.5 is outside vxnet front's CIDR 10.0.1.0/24"},
		{[]string{"port-add", "front", "vm2", "02:00:00:00:01:09", "10.0.1.5"}, "IP 10.0.1.5 is already used by port vm1"},
		{[]string{"port-add", "front", "vm2", "02:00:00:00:01:05", "10.0.1.6"}, "MAC 02:00:00:00:01:05 is already used by port vm1"},
		{[]string{"port-add", "front", "vm2", "02:00:00:00:01:09", "10.0.1.1"}, "IP 10.0.1.1 is vxnet front's gateway"},
		{[]string{"port-add", "front", "vm2", "02:00:00:00:01:09", "10.0.1.100"}, "IP 10.0.1.100 is a virtual IP of another port"},
		{[]string{"port-add", "front", "vm2", "02:00:00:00:01:09", "10.0.1.256"}, `"10.0.1.256" is not an IPv4 address`},
		{[]string{"port-add", "front", "vm2", "zz:00:00:00:01:09", "10.0.1.6"}, `"zz:00:00:00:01:09" is not a MAC address`},
		{[]string{"port-add", "front", "vm2", "03:00:00:00:01:09", "10.0.1.6"}, "MAC 03:00:00:00:01:09 is a multicast address"},
		{[]string{"port-add", "front", "vm2", "0a:c0:00:00:00:01", "10.0.1.6"}, "reserved for gateway MACs"},
		{[]string{"port-add", "front", "vm1", "02:00:00:00:01:09", "10.0.1.6"}, "port vm1 already exists"},
		{[]string{"port-add", "front", "vm2", "dynamc"}, `"dynamc" is not a MAC address (want xx:xx:xx:xx:xx:xx), or 'dynamic'`},
		{[]string{"port-add", "front", "vm2", "dynamic", "dynamc"}, `"dynamc" is not an IPv4 address, 'dynamic' or 'unknown'`},
		{[]string{"port-add", "front", "vm2", "dynamic", "dynamic", "10.0.1.7"}, "'dynamic' cannot be combined with fixed IPs"},
		{[]string{"port-add", "front", "vm2", "dynamic", "10.0.9.5"}, "IP 10.0.9.5 is outside vxnet front's CIDR 10.0.1.0/24"},
		{[]string{"port-add", "front"}, "wrong number of arguments"},
		{[]string{"port-add", "nope", "vm2", "02:00:00:00:01:09", "10.0.1.6"}, `no vxnet named "nope"`},
		{[]string{"port-set", "vm1", "--ips", "10.0.2.5"}, "IP 10.0.2.5 is outside vxnet front's CIDR"},
		{[]string{"port-set", "vm1"}, "nothing to change"},
		{[]string{"port-set", "nope", "--mac", "02:00:00:00:01:09"}, `no port named "nope"`},
		{[]string{"route-add", "web", "192.168.0.0/16", "10.9.9.9"}, "next hop 10.9.9.9 is not a host address in any vxnet of VPC web"},
		{[]string{"route-add", "web", "10.0.1.128/25", "10.0.2.5"}, "lies inside vxnet front"},
		{[]string{"route-add", "web", "192.168.0.1/16", "10.0.1.5"}, "has host bits set"},
		{[]string{"route-del", "web", "192.168.0.0/16"}, "VPC web has no route for 192.168.0.0/16"},
		{[]string{"vpc-del", "nope"}, `no VPC named "nope"`},
		{[]string{"vxnet-del", "nope"}, `no vxnet named "nope"`},
		{[]string{"port-del", "nope"}, `no port named "nope"`},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"vpc-add"}, "wrong number of arguments"},
		{[]string{"vpc-add", "x", "--colour"}, "unknown option --colour"},
		// A command list fails as a whole: the first two would succeed.
		{[]string{"vpc-add", "a", "--", "vxnet-add", "a", "v1", "10.0.0.0/24", "--", "vxnet-add", "a", "v2", "10.0.0.0/25"},
			"CIDR 10.0.0.0/25 overlaps vxnet v1"},
		{[]string{"vpc-add", "b", "--", "vpc-add", "b"}, "VPC b already exists"},
	}
	before := dump(t, db)
	for _, c := range cases {
		_, err := nb(db, c.args...)
		if err == nil {
			t.Errorf("%v: accepted", c.args)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %q does not say %q", c.args, err, c.want)
		}
		if strings.Contains(strings.TrimSpace(err.Error()), "\n") && !strings.Contains(err.Error(), "usage:") {
			t.Errorf("%v: error is not one line: %q", c.args, err)
		}
		if after := dump(t, db); after != before {
			t.Fatalf("%v changed the database:\nbefore:\n%s\nafter:\n%s", c.args, before, after)
		}
	}
}

// A writer that bypasses the CLI gets OVSDB's atomicity: a transaction the
// server refuses half-way leaves nothing behind.
func TestServerRefusalIsAtomic(t *testing.T) {
	dbs := testenv.StartDBs(t)
	before := dump(t, dbs.NB)
	txn := `["Courier_Northbound",
	  {"op":"insert","table":"VPC","row":{"name":"x"}},
	  {"op":"insert","table":"VPC","row":{"name":"y"}},
	  {"op":"insert","table":"VPC","row":{"name":"x"}}]`
	out, _ := exec.Command("ovsdb-client", "transact", dbs.NB, txn).CombinedOutput()
	if !strings.Contains(string(out), "constraint violation") {
		t.Fatalf("duplicate VPC name not refused by the schema index: %s", out)
	}
	txn = `["Courier_Northbound",
	  {"op":"insert","table":"VPC","row":{"name":"z"}},
	  {"op":"insert","table":"Vxnet","row":{"name":"v","cidr":"10.0.0.0/24","vni":16777216}}]`
	out, _ = exec.Command("ovsdb-client", "transact", dbs.NB, txn).CombinedOutput()
	if !strings.Contains(string(out), "constraint violation") {
		t.Fatalf("VNI out of range not refused by the schema: %s", out)
	}
	if after := dump(t, dbs.NB); after != before {
		t.Fatalf("refused transactions changed the database:\n%s", after)
	}
}

func TestWaitWithoutNorthdTimesOut(t *testing.T) {
	dbs := testenv.StartDBs(t)
	o := nbctl.Options{DB: dbs.NB, Wait: "sb", Format: "table", Timeout: 500 * time.Millisecond}
	err := nbctl.Run(context.Background(), o, []string{"vpc-add", "w"}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "timed out waiting for northd") {
		t.Fatalf("want a timeout naming northd, got %v", err)
	}
	// The change itself committed; only the wait gave up.
	if out := mustNB(t, dbs.NB, "vpc-list"); !strings.Contains(out, "w ") {
		t.Fatalf("vpc-add --wait=sb did not commit:\n%s", out)
	}
	if _, err := nb(dbs.NB, "--bogus"); err == nil {
		t.Fatal("an option without a command was accepted")
	}
}

// --may-exist succeeds for a row that exists as given and, for one that
// exists otherwise, names what differs (before, port-add --may-exist
// succeeded whatever the MAC and addresses).
func TestMayExistSaysWhatDiffers(t *testing.T) {
	dbs := testenv.StartDBs(t)
	db := dbs.NB
	mustNB(t, db, "vpc-add", "web", "--", "vxnet-add", "web", "front", "10.0.1.0/24", "--vni", "5001")
	mustNB(t, db, "port-add", "front", "vm1", "02:00:00:00:01:05", "10.0.1.5", "--vip", "10.0.1.100")
	mustNB(t, db, "route-add", "web", "192.168.0.0/16", "10.0.1.5")
	mustNB(t, db, "--may-exist", "vxnet-add", "web", "front", "10.0.1.0/24", "--vni", "5001")
	mustNB(t, db, "--may-exist", "port-add", "front", "vm1", "02:00:00:00:01:05", "10.0.1.5", "--vip", "10.0.1.100")
	mustNB(t, db, "--may-exist", "route-add", "web", "192.168.0.0/16", "10.0.1.5")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--may-exist", "vxnet-add", "web", "front", "10.0.2.0/24"}, "CIDR 10.0.1.0/24, not 10.0.2.0/24"},
		{[]string{"--may-exist", "vxnet-add", "web", "front", "10.0.1.0/24", "--vni", "7"}, "VNI 5001, not 7"},
		{[]string{"--may-exist", "port-add", "front", "vm1", "02:00:00:00:01:06", "10.0.1.6", "--vip", "10.0.1.100"},
			"MAC 02:00:00:00:01:05, not 02:00:00:00:01:06; IPs 10.0.1.5, not 10.0.1.6"},
		{[]string{"--may-exist", "port-add", "front", "vm1", "02:00:00:00:01:05", "10.0.1.5"}, "virtual IPs 10.0.1.100, not []"},
		{[]string{"--may-exist", "route-add", "web", "192.168.0.0/16", "10.0.1.100"}, "next hop 10.0.1.5, not 10.0.1.100"},
	} {
		if _, err := nb(db, c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: got %v, want an error saying %q", c.args, err, c.want)
		}
	}
}

// A connection to another database says so at once, naming what it
// found, instead of retrying and reporting "cannot reach".
func TestWrongDatabaseSaysSo(t *testing.T) {
	dbs := testenv.StartDBs(t)
	start := time.Now()
	err := nbctl.Run(context.Background(), nbctl.Options{DB: dbs.SB, Wait: "none", Format: "table"}, []string{"vpc-list"}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "this is not a Courier northbound database (found Courier_Southbound)") {
		t.Errorf("got %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v: the wrong database must not be retried", d)
	}
}

// TestInitCreatesTheGlobalRow: init on a northbound without NB_Global
// inserts it (a row of defaults, which the commit must still send).
func TestInitCreatesTheGlobalRow(t *testing.T) {
	db := testenv.StartDBs(t).NB
	testenv.Run(t, "ovsdb-client", "transact", db, `["Courier_Northbound",{"op":"delete","table":"NB_Global","where":[]}]`)
	mustNB(t, db, "init", "--", "vpc-add", "v")
	out := testenv.Run(t, "ovsdb-client", "transact", db, `["Courier_Northbound",{"op":"select","table":"NB_Global","where":[],"columns":["nb_cfg"]}]`)
	if !strings.Contains(out, `"nb_cfg":0`) {
		t.Errorf("NB_Global after init: %s", out)
	}
}
