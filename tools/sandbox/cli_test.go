package sandbox

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// start tells the operator to export COURIER_RUNDIR for courier-nbctl
// and courier-sbctl; the sandbox's own commands that it lists next must
// find the same sandbox by it.
func TestRunDirFromCourierRundir(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("COURIER_SANDBOX_DIR", "") // restored after the test
	os.Unsetenv("COURIER_SANDBOX_DIR")
	t.Setenv("COURIER_RUNDIR", dir)
	var out bytes.Buffer
	err := App(&out).Run([]string{"courier-sandbox", "status"})
	if err == nil || !strings.Contains(err.Error(), "no sandbox in "+dir) {
		t.Errorf("status with COURIER_RUNDIR=%s: %v; want it to look there", dir, err)
	}
}
