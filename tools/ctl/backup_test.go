package ctl_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/courier-sdn/courier/internal/central"
	"github.com/courier-sdn/courier/internal/testenv"
)

// backup writes ovsdb-client's backup of a database to file.
func backup(t *testing.T, remote, db, file string) {
	t.Helper()
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command("ovsdb-client", "backup", remote, db)
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = f, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("ovsdb-client backup %s: %v\n%s", remote, err, stderr.String())
	}
}

// restore runs ovsdb-client restore of file into a running database.
func restore(t *testing.T, remote, db, file string, flags ...string) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command("ovsdb-client", append(flags, "restore", remote, db)...)
	cmd.Stdin = f
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ovsdb-client %s restore %s: %v\n%s", strings.Join(flags, " "), remote, err, out)
	}
}

// The operations guide's backup and restore, as an operator runs them
// (docs/operations.md): ovsdb-client backup of the running databases
// gives standalone database files that ovsdb-tool reads; such a file
// restores a running database (ovsdb-client restore) or, with the
// services stopped, replaces the database file; and a backup taken
// from a Raft cluster restores into it through any member (one from a
// standalone server too, with --force).
func TestBackupAndRestore(t *testing.T) {
	testenv.Integration(t, "ovsdb-client")
	dir := testenv.RunDir(t)
	ctl := courierCtl(t, dir)
	if out, err := ctl("start", "--northd-metrics", "", "--southd-metrics", ""); err != nil {
		t.Fatalf("start: %v\n%s", err, out)
	}
	nbctl := func(args ...string) string {
		t.Helper()
		out, err := tool(t, "courier-nbctl", append([]string{"--run-dir", dir, "--timeout", "20s"}, args...)...)
		if err != nil {
			t.Fatalf("courier-nbctl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	nbctl("--wait=sb", "vpc-add", "blue", "--", "vxnet-add", "blue", "web", "10.0.1.0/24", "--",
		"port-add", "web", "vm1", "02:00:00:00:01:0a", "10.0.1.10")
	nb, sb := "unix:"+filepath.Join(dir, "nb.sock"), "unix:"+filepath.Join(dir, "sb.sock")
	saved := t.TempDir()
	nbFile, sbFile := filepath.Join(saved, "nb.backup"), filepath.Join(saved, "sb.backup")
	backup(t, nb, "Courier_Northbound", nbFile)
	backup(t, sb, "Courier_Southbound", sbFile)
	for file, name := range map[string]string{nbFile: "Courier_Northbound", sbFile: "Courier_Southbound"} {
		if got := strings.TrimSpace(testenv.Run(t, "ovsdb-tool", "db-name", file)); got != name {
			t.Errorf("ovsdb-tool db-name %s = %q, want %s", file, got, name)
		}
		testenv.Run(t, "ovsdb-tool", "db-is-standalone", file)
		testenv.Run(t, "ovsdb-tool", "query", file, `["`+name+`",{"op":"select","table":"`+
			map[string]string{"Courier_Northbound": "NB_Global", "Courier_Southbound": "SB_Global"}[name]+`","where":[]}]`)
	}
	hasVM1 := func(when string) {
		t.Helper()
		nbctl("--wait=sb", "sync")
		if out := nbctl("--bare", "--columns=name", "list", "Port"); strings.TrimSpace(out) != "vm1" {
			t.Errorf("%s: ports %q, want vm1", when, out)
		}
		out, err := tool(t, "courier-sbctl", "--run-dir", dir, "--bare", "--columns=logical_port", "list", "Port_Binding")
		if err != nil || strings.TrimSpace(out) != "vm1" {
			t.Errorf("%s: northd's bindings %q (%v), want vm1", when, out, err)
		}
	}

	// Online: the intent is lost and restored while everything runs;
	// northd compiles it again.
	nbctl("vpc-del", "blue")
	restore(t, nb, "Courier_Northbound", nbFile)
	hasVM1("after ovsdb-client restore")

	// Offline: the services stopped, the file replaced.
	nbctl("vpc-del", "blue")
	if out, err := ctl("stop"); err != nil {
		t.Fatalf("stop: %v\n%s", err, out)
	}
	c := &central.Config{RunDir: dir}
	b, err := os.ReadFile(nbFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.DBFile(central.Databases[0]), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := ctl("start", "--northd-metrics", "", "--southd-metrics", ""); err != nil {
		t.Fatalf("start after restoring the file: %v\n%s", err, out)
	}
	hasVM1("after replacing nb.db")

	// A Raft cluster: a standalone server's backup restores into it, through
	// a member that is not the leader, with --force only: a cluster keeps
	// the Connection table's two ephemeral columns, so the schemas differ
	// in that. The cluster's own backup restores without it.
	cl := testenv.StartCluster(t)
	remotes := cl.Remotes("nb")
	follower := remotes[(cl.Leader("nb")+1)%len(remotes)]
	cmd := exec.Command("ovsdb-client", "restore", follower, "Courier_Northbound")
	cmd.Stdin, _ = os.Open(nbFile)
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "--force") {
		t.Errorf("a standalone backup restored into a cluster without --force: %v\n%s", err, out)
	}
	restore(t, follower, "Courier_Northbound", nbFile, "--force")
	ports := func() string {
		return strings.TrimSpace(testenv.Run(t, filepath.Join(testenv.BinDir(t), "courier-nbctl"), "--db", strings.Join(remotes, ","),
			"--bare", "--columns=name", "list", "Port"))
	}
	if got := ports(); got != "vm1" {
		t.Errorf("the cluster after restore: ports %q, want vm1", got)
	}
	clusterFile := filepath.Join(saved, "cluster-nb.backup")
	backup(t, follower, "Courier_Northbound", clusterFile)
	testenv.Run(t, "ovsdb-tool", "db-is-standalone", clusterFile)
	testenv.Run(t, filepath.Join(testenv.BinDir(t), "courier-nbctl"), "--db", strings.Join(remotes, ","), "vpc-del", "blue")
	restore(t, remotes[cl.Leader("nb")], "Courier_Northbound", clusterFile)
	if got := ports(); got != "vm1" {
		t.Errorf("the cluster after restoring its own backup: ports %q, want vm1", got)
	}
}
