package ctl_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/courier-sdn/courier/internal/central"
	"github.com/courier-sdn/courier/internal/proc"
	"github.com/courier-sdn/courier/internal/testenv"
)

// The operations guide's upgrade of a clustered database: ovsdb-client
// convert, online, with the new schema, keeps every row. (A standalone
// database is converted by courier-ctl start: TestStartConvertsOldSchema.)
func TestClusterConvertsOnline(t *testing.T) {
	testenv.Integration(t, "ovsdb-client")
	dir := testenv.RunDir(t)
	var sch map[string]any
	if err := json.Unmarshal(central.Databases[0].Schema, &sch); err != nil {
		t.Fatal(err)
	}
	current := sch["version"].(string)
	sch["version"] = "0.9.0"
	delete(sch["tables"].(map[string]any)["Route"].(map[string]any)["columns"].(map[string]any), "external_ids")
	old, _ := json.Marshal(sch)
	oldFile, newFile := filepath.Join(dir, "old.ovsschema"), filepath.Join(dir, "nb.ovsschema")
	os.WriteFile(oldFile, old, 0o644)
	os.WriteFile(newFile, central.Databases[0].Schema, 0o644)
	db, sock, pid := filepath.Join(dir, "nb.db"), filepath.Join(dir, "nb.sock"), filepath.Join(dir, "nb.pid")
	testenv.Run(t, "ovsdb-tool", "create-cluster", db, oldFile, fmt.Sprintf("tcp:127.0.0.1:%d", testenv.FreePort(t)))
	testenv.Run(t, "ovsdb-server", db, "--remote=punix:"+sock, "--unixctl="+filepath.Join(dir, "nb.ctl"), "--pidfile="+pid,
		"--log-file="+filepath.Join(dir, "nb.log"), "--detach", "--no-chdir", "-vconsole:off")
	t.Cleanup(func() { proc.Stop(pid, "ovsdb-server", 5*time.Second) })
	remote := "unix:" + sock
	testenv.Eventually(t, 10*time.Second, "the cluster has a leader", func() error {
		out, err := exec.Command("ovsdb-client", "transact", remote,
			`["Courier_Northbound",{"op":"insert","table":"VPC","row":{"name":"kept"}}]`).CombinedOutput()
		if err != nil || strings.Contains(string(out), "error") {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	})
	testenv.Run(t, "ovsdb-client", "convert", remote, newFile)
	if v := strings.TrimSpace(testenv.Run(t, "ovsdb-client", "get-schema-version", remote, "Courier_Northbound")); v != current {
		t.Errorf("schema version after convert: %s, want %s", v, current)
	}
	if out := testenv.Run(t, "ovsdb-client", "dump", remote, "Courier_Northbound", "VPC"); !strings.Contains(out, "kept") {
		t.Errorf("conversion lost a row:\n%s", out)
	}
}

// An upgrade from schema 1.6.0, before address claims: courier-ctl start
// converts the database and gives every port the claims of its MAC and
// IPs (courier-nbctl claim-sync), so that courier-nbctl, which reads no
// other port, still refuses an address an old port holds. Of two old
// ports sharing an IP, the first by name gets the claim; a shared
// virtual IP is one claim.
func TestUpgradeFillsAddressClaims(t *testing.T) {
	testenv.Integration(t, "ovsdb-client")
	dir := testenv.RunDir(t)
	var sch map[string]any
	json.Unmarshal(central.Databases[0].Schema, &sch)
	sch["version"] = "1.6.0"
	tables := sch["tables"].(map[string]any)
	delete(tables, "Address_Claim")
	delete(tables["Port"].(map[string]any)["columns"].(map[string]any), "claims")
	old, _ := json.Marshal(sch)
	os.WriteFile(filepath.Join(dir, "old.ovsschema"), old, 0o644)
	db := filepath.Join(dir, "nb.db")
	testenv.Run(t, "ovsdb-tool", "create", db, filepath.Join(dir, "old.ovsschema"))
	port := func(name, mac, ip, vip string) string {
		row := fmt.Sprintf(`"name":%q,"mac":%q,"ips":%q`, name, mac, ip)
		if vip != "" {
			row += fmt.Sprintf(`,"virtual_ips":%q`, vip)
		}
		return fmt.Sprintf(`{"op":"insert","table":"Port","uuid-name":%q,"row":{%s}}`, name, row)
	}
	testenv.Run(t, "ovsdb-tool", "transact", db, `["Courier_Northbound",
		{"op":"insert","table":"VPC","row":{"name":"blue","vxnets":["named-uuid","web"]}},
		{"op":"insert","table":"Vxnet","uuid-name":"web","row":{"name":"web","cidr":"10.0.1.0/24",
			"ports":["set",[["named-uuid","a"],["named-uuid","b"],["named-uuid","c"]]]}},
		`+port("a", "02:00:00:00:01:0a", "10.0.1.10", "10.0.1.100")+`,
		`+port("b", "02:00:00:00:01:0b", "10.0.1.11", "10.0.1.100")+`,
		`+port("c", "02:00:00:00:01:0c", "10.0.1.10", "")+`]`)
	c := &central.Config{RunDir: dir, BinDir: testenv.BinDir(t)}
	t.Cleanup(func() { c.Stop() })
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	remote := c.Remote(central.Databases[0])
	out := testenv.Run(t, "ovsdb-client", "-f", "csv", "--no-headings", "dump", remote, "Courier_Northbound", "Address_Claim", "address", "kind")
	_, rows, _ := strings.Cut(out, "\n") // after the table's name
	got := strings.Fields(strings.ReplaceAll(strings.ReplaceAll(rows, ",", "/"), `"`, ""))
	slices.Sort(got)
	want := []string{"02:00:00:00:01:0a/mac", "02:00:00:00:01:0b/mac", "02:00:00:00:01:0c/mac", "10.0.1.10/ip", "10.0.1.100/vip", "10.0.1.11/ip"}
	if !slices.Equal(got, want) {
		t.Errorf("claims after the upgrade: %v, want %v", got, want)
	}
	nbctl := filepath.Join(testenv.BinDir(t), "courier-nbctl")
	for _, tc := range []struct{ args, want string }{
		{"port-add web d 02:00:00:00:01:0d 10.0.1.10", "IP 10.0.1.10 is already used by port a in vxnet web"},
		{"port-add web d 02:00:00:00:01:0d 10.0.1.100", "IP 10.0.1.100 is a virtual IP of another port in vxnet web"},
		{"port-add web d 02:00:00:00:01:0b 10.0.1.13", "MAC 02:00:00:00:01:0b is already used by port b in vxnet web"},
	} {
		out, err := exec.Command(nbctl, append([]string{"--db", remote, "--timeout", "20s"}, strings.Fields(tc.args)...)...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("%s after the upgrade: %v: %s, want %q", tc.args, err, out, tc.want)
		}
	}
}
