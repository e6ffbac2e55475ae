// Package ovsdbclient holds an orchestrator's integration written with
// nothing but ovsdb-client (declare-port.sh), and the test that runs it
// against real databases and a real northd, as docs/orchestrators.md
// shows it.
package ovsdbclient

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/courier-sdn/courier/internal/central"
	"github.com/courier-sdn/courier/internal/testenv"
)

// The script declares a network, waits for northd's sb_cfg and reports
// each port as northd judged it; run again, it changes nothing.
func TestDeclarePortScript(t *testing.T) {
	testenv.Integration(t, "ovsdb-client")
	dbs := testenv.StartDBs(t, central.Daemons("", "")...)
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("./declare-port.sh", append([]string{dbs.NB}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("declare-port.sh %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	if got := run("vm1", "02:00:00:00:01:0a", "10.0.1.10"); got != "vm1: accepted\n" {
		t.Errorf("first port: %q", got)
	}
	if got := run("vm2", "02:00:00:00:01:0b", "10.0.9.11"); !strings.HasPrefix(got, "VPC blue exists already\nvm2: refused: IP 10.0.9.11") {
		t.Errorf("port outside its vxnet: %q", got)
	}
	if got := run("vm1", "02:00:00:00:01:0a", "10.0.1.10"); got != "VPC blue exists already\nvm1 exists already\nvm1: accepted\n" {
		t.Errorf("run again: %q", got)
	}
	ports := testenv.Run(t, filepath.Join(testenv.BinDir(t), "courier-nbctl"), "--db", dbs.NB, "--bare", "--columns=name", "list", "Port")
	if strings.Count(ports, "vm1") != 1 {
		t.Errorf("vm1 declared more than once:\n%s", ports)
	}
}
