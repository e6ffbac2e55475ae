package sbctl_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/courier-sdn/courier/internal/testenv"
	"github.com/courier-sdn/courier/tools/sbctl"
)

// courier-sbctl failed at once while its database was restarting; reading
// is always safe to retry, so it waits within its timeout.
func TestReadWaitsOutARestart(t *testing.T) {
	dbs := testenv.StartDBs(t)
	if err := dbs.StopServer("sb"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		done <- sbctl.Run(context.Background(), dbs.SB, nil, "table", 10*time.Second, []string{"chassis-list"}, &bytes.Buffer{})
	}()
	time.Sleep(300 * time.Millisecond)
	if err := dbs.StartServer(t.Context(), "sb"); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	if err := <-done; err != nil {
		t.Fatalf("chassis-list across a restart: %v", err)
	}
	t.Logf("answered %v after the server was back (%v after the call)", time.Since(back).Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

// chassis-del removes a chassis that is gone, both its rows.
func TestChassisDel(t *testing.T) {
	dbs := testenv.StartDBs(t)
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := sbctl.Run(context.Background(), dbs.SB, nil, "table", 10*time.Second, args, &out)
		return out.String(), err
	}
	if _, err := run("create", "Chassis", "name=hv1", "encap_ip=192.0.2.1", "--", "create", "Chassis_Private", "name=hv1",
		"--", "create", "Chassis", "name=hv2", "encap_ip=192.0.2.2"); err != nil {
		t.Fatal(err)
	}
	if _, err := run("chassis-del", "hv1"); err != nil {
		t.Fatal(err)
	}
	if out, err := run("chassis-list"); err != nil || strings.Contains(out, "hv1") || !strings.Contains(out, "hv2") {
		t.Errorf("chassis-list after chassis-del hv1: %v\n%s", err, out)
	}
	if out, _ := run("list", "Chassis_Private"); out != "" {
		t.Errorf("hv1's Chassis_Private row was left:\n%s", out)
	}
	if _, err := run("chassis-del", "hv1"); err == nil || !strings.Contains(err.Error(), `no chassis named "hv1"`) {
		t.Errorf("chassis-del of a missing chassis: %v", err)
	}
	if _, err := run("--if-exists", "chassis-del", "hv1"); err != nil {
		t.Errorf("--if-exists chassis-del: %v", err)
	}
}
