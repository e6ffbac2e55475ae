package ctl_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
