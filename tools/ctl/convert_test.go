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
	"github.com/courier-sdn/courier/schema"
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

// oldNB is the northbound schema of an older version: the current one
// without the Port keys (before 1.8.0) and, before 1.7.0, without
// address claims.
func oldNB(version string) []byte {
	var sch map[string]any
	json.Unmarshal(central.Databases[0].Schema, &sch)
	sch["version"] = version
	tables := sch["tables"].(map[string]any)
	port := tables["Port"].(map[string]any)
	delete(port["columns"].(map[string]any), "mac_key")
	delete(port["columns"].(map[string]any), "ip_key")
	port["indexes"] = []any{[]any{"name"}}
	if version < "1.7.0" {
		delete(tables, "Address_Claim")
		delete(port["columns"].(map[string]any), "claims")
	}
	old, _ := json.Marshal(sch)
	return old
}

// held lists the addresses the northbound's ports hold, as address/kind,
// sorted: Port keys (not per-port scopes) and Address_Claim rows.
func held(t *testing.T, remote string) []string {
	var got []string
	for i, cols := range [][]string{{"Address_Claim", "address", "kind"}, {"Port", "mac_key"}, {"Port", "ip_key"}} {
		out := testenv.Run(t, "ovsdb-client", append([]string{"-f", "csv", "--no-headings", "dump", remote, "Courier_Northbound"}, cols...)...)
		_, rows, _ := strings.Cut(out, "\n") // after the table's name
		for _, f := range strings.Fields(strings.ReplaceAll(strings.ReplaceAll(rows, ",", "/"), `"`, "")) {
			switch _, addr, keyed := strings.Cut(f, "/"); {
			case i == 0:
				got = append(got, f)
			case keyed:
				got = append(got, addr+"/"+strings.TrimSuffix(cols[1], "_key"))
			}
		}
	}
	slices.Sort(got)
	return got
}

// An upgrade from schema 1.6.0, before address claims, or 1.7.0, when
// every MAC and IP was a claim row: courier-ctl start converts the
// database in two steps (to the schema without the keys' unique indexes,
// then, after courier-nbctl claim-sync has given every port its keys and
// the claims a key cannot hold, to the current one), so that
// courier-nbctl, which reads no other port, still refuses an address an
// old port holds. Of two old ports sharing an IP, the first by name holds
// it; a shared virtual IP is one claim; a 1.7.0 port's MAC and single IP
// move from claim rows to its keys.
func TestUpgradeFillsAddressClaims(t *testing.T) {
	testenv.Integration(t, "ovsdb-client")
	for _, tc := range oldNBRows() {
		t.Run(tc.version, func(t *testing.T) { upgradeFrom(t, tc.version, tc.rows) })
	}
}

// oldNBRows are a northbound's rows at schema versions 1.6.0 and 1.7.0:
// a vxnet web whose ports a and b share a virtual IP and c takes a's IP.
func oldNBRows() []struct{ version, rows string } {
	port := func(name, mac, ip, vip, claims string) string {
		row := fmt.Sprintf(`"name":%q,"mac":%q,"ips":%q`, name, mac, ip)
		if vip != "" {
			row += fmt.Sprintf(`,"virtual_ips":%q`, vip)
		}
		if claims != "" {
			row += `,"claims":["set",[` + claims + `]]`
		}
		return fmt.Sprintf(`{"op":"insert","table":"Port","uuid-name":%q,"row":{%s}}`, name, row)
	}
	claim := func(name, addr, kind string) string {
		return fmt.Sprintf(`{"op":"insert","table":"Address_Claim","uuid-name":%q,"row":{"vxnet":["named-uuid","web"],"address":%q,"kind":%q}},`, name, addr, kind)
	}
	return []struct{ version, rows string }{
		{"1.6.0", port("a", "02:00:00:00:01:0a", "10.0.1.10", "10.0.1.100", "") + "," +
			port("b", "02:00:00:00:01:0b", "10.0.1.11", "10.0.1.100", "") + "," + port("c", "02:00:00:00:01:0c", "10.0.1.10", "", "")},
		{"1.7.0", claim("am", "02:00:00:00:01:0a", "mac") + claim("ai", "10.0.1.10", "ip") + claim("v", "10.0.1.100", "vip") +
			claim("bm", "02:00:00:00:01:0b", "mac") + claim("bi", "10.0.1.11", "ip") + claim("cm", "02:00:00:00:01:0c", "mac") +
			port("a", "02:00:00:00:01:0a", "10.0.1.10", "10.0.1.100", `["named-uuid","am"],["named-uuid","ai"],["named-uuid","v"]`) + "," +
			port("b", "02:00:00:00:01:0b", "10.0.1.11", "10.0.1.100", `["named-uuid","bm"],["named-uuid","bi"],["named-uuid","v"]`) + "," +
			port("c", "02:00:00:00:01:0c", "10.0.1.10", "", `["named-uuid","cm"]`)},
	}
}

// oldNBTxn is a transaction of the vxnet and rows of oldNBRows.
func oldNBTxn(rows string) string {
	return `["Courier_Northbound",
		{"op":"insert","table":"VPC","row":{"name":"blue","vxnets":["named-uuid","web"]}},
		{"op":"insert","table":"Vxnet","uuid-name":"web","row":{"name":"web","cidr":"10.0.1.0/24",
			"ports":["set",[["named-uuid","a"],["named-uuid","b"],["named-uuid","c"]]]}},
		` + rows + `]`
}

func upgradeFrom(t *testing.T, version, rows string) {
	dir := testenv.RunDir(t)
	os.WriteFile(filepath.Join(dir, "old.ovsschema"), oldNB(version), 0o644)
	db := filepath.Join(dir, "nb.db")
	testenv.Run(t, "ovsdb-tool", "create", db, filepath.Join(dir, "old.ovsschema"))
	testenv.Run(t, "ovsdb-tool", "transact", db, oldNBTxn(rows))
	c := &central.Config{RunDir: dir, BinDir: testenv.BinDir(t)}
	t.Cleanup(func() { c.Stop() })
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	remote := c.Remote(central.Databases[0])
	upgraded(t, remote, remote, filepath.Join(dir, "nb.ovsschema"))
}

// upgraded checks a northbound upgraded from oldNBRows: at the current
// schema, every address held once (read from remote), and courier-nbctl
// (given nbDB) refusing a new port any of them.
func upgraded(t *testing.T, remote, nbDB, schemaFile string) {
	t.Helper()
	// (a cluster's ovsdb-client warns first that its columns are persistent)
	out := strings.TrimSpace(testenv.Run(t, "ovsdb-client", "needs-conversion", remote, schemaFile))
	if out = out[strings.LastIndex(out, "\n")+1:]; out != "no" {
		t.Errorf("after the upgrade, the database needs conversion to the current schema: %s", out)
	}
	want := []string{"02:00:00:00:01:0a/mac", "02:00:00:00:01:0b/mac", "02:00:00:00:01:0c/mac", "10.0.1.10/ip", "10.0.1.100/vip", "10.0.1.11/ip"}
	if got := held(t, remote); !slices.Equal(got, want) {
		t.Errorf("addresses held after the upgrade: %v, want %v", got, want)
	}
	nbctl := filepath.Join(testenv.BinDir(t), "courier-nbctl")
	for _, tc := range []struct{ args, want string }{
		{"port-add web d 02:00:00:00:01:0d 10.0.1.10", "IP 10.0.1.10 is already used by port a in vxnet web"},
		{"port-add web d 02:00:00:00:01:0d 10.0.1.100", "IP 10.0.1.100 is a virtual IP of another port in vxnet web"},
		{"port-add web d 02:00:00:00:01:0b 10.0.1.13", "MAC 02:00:00:00:01:0b is already used by port b in vxnet web"},
	} {
		out, err := exec.Command(nbctl, append([]string{"--db", nbDB, "--timeout", "20s"}, strings.Fields(tc.args)...)...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("%s after the upgrade: %v: %s, want %q", tc.args, err, out, tc.want)
		}
	}
}

// The operations guide's upgrade of a clustered northbound older than
// 1.8.0, online through one member: ovsdb-client convert to the staging
// schema, courier-nbctl claim-sync, ovsdb-client convert to the current
// one. Another member then serves the keys and courier-nbctl refuses
// what the old ports hold.
func TestClusterUpgradeFillsPortKeys(t *testing.T) {
	testenv.Integration(t, "ovsdb-client")
	for _, tc := range oldNBRows() {
		t.Run(tc.version, func(t *testing.T) {
			dir := testenv.RunDir(t)
			oldFile, staging, current := filepath.Join(dir, "old.ovsschema"), filepath.Join(dir, "nb-staging.ovsschema"), filepath.Join(dir, "nb.ovsschema")
			os.WriteFile(oldFile, oldNB(tc.version), 0o644)
			os.WriteFile(staging, schema.NBStaging(), 0o644)
			os.WriteFile(current, central.Databases[0].Schema, 0o644)
			m := oldCluster(t, dir, oldFile, 3)
			testenv.Eventually(t, 20*time.Second, "the cluster takes the old rows", func() error {
				out, err := exec.Command("ovsdb-client", "transact", m[0], oldNBTxn(tc.rows)).CombinedOutput()
				if err != nil || strings.Contains(string(out), "error") {
					return fmt.Errorf("%v: %s", err, out)
				}
				return nil
			})
			nbctl := filepath.Join(testenv.BinDir(t), "courier-nbctl")
			testenv.Run(t, "ovsdb-client", "convert", m[1], staging)
			// courier-nbctl writes to the leader: it is given every member
			testenv.Run(t, nbctl, "--db", strings.Join(m, ","), "--timeout", "20s", "claim-sync")
			testenv.Run(t, "ovsdb-client", "convert", m[1], current)
			upgraded(t, m[2], strings.Join(m, ","), current)
		})
	}
}

// oldCluster starts a northbound Raft cluster of n members at the
// schema in file, and returns the members' unix remotes.
func oldCluster(t *testing.T, dir, file string, n int) []string {
	var remotes []string
	first := fmt.Sprintf("tcp:127.0.0.1:%d", testenv.FreePort(t))
	for i := range n {
		db, sock, pid := filepath.Join(dir, fmt.Sprintf("nb%d.db", i)), filepath.Join(dir, fmt.Sprintf("nb%d.sock", i)), filepath.Join(dir, fmt.Sprintf("nb%d.pid", i))
		if i == 0 {
			testenv.Run(t, "ovsdb-tool", "create-cluster", db, file, first)
		} else {
			testenv.Run(t, "ovsdb-tool", "join-cluster", db, "Courier_Northbound", fmt.Sprintf("tcp:127.0.0.1:%d", testenv.FreePort(t)), first)
		}
		testenv.Run(t, "ovsdb-server", db, "--remote=punix:"+sock, "--unixctl="+filepath.Join(dir, fmt.Sprintf("nb%d.ctl", i)),
			"--pidfile="+pid, "--log-file="+filepath.Join(dir, fmt.Sprintf("nb%d.log", i)), "--detach", "--no-chdir", "-vconsole:off")
		t.Cleanup(func() { proc.Stop(pid, "ovsdb-server", 5*time.Second) })
		remotes = append(remotes, "unix:"+sock)
	}
	return remotes
}
