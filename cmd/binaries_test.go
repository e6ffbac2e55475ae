// Tests of what every binary in cmd/ promises on its command line, run
// against the built binaries ($COURIER_BIN, see internal/testenv).
package cmd_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/courier-sdn/courier/internal/testenv"
)

// binaries lists cmd/'s directories: a new binary is covered unasked.
func binaries(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(testenv.RepoRoot(t), "cmd"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	if len(out) < 8 {
		t.Fatalf("only %d binaries in cmd/: %v", len(out), out)
	}
	return out
}

// run runs a binary for at most ten seconds and kills it (by its pid,
// through exec) if it is still running then.
func run(t *testing.T, bin string, args ...string) (out string, exitCode int, timedOut bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "COURIER_RUNDIR="+testenv.RunDir(t), "COURIER_SANDBOX_DIR="+testenv.RunDir(t))
	b, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("%s: %v", bin, err)
	}
	return string(b), cmd.ProcessState.ExitCode(), ctx.Err() != nil
}

// Every binary answers --version (and -V) with its name and the same
// version: none had a --version before.
func TestEveryBinaryReportsItsVersion(t *testing.T) {
	testenv.Integration(t)
	dir := testenv.BinDir(t)
	versions := map[string]bool{}
	for _, name := range binaries(t) {
		for _, flag := range []string{"--version", "-V"} {
			out, code, _ := run(t, filepath.Join(dir, name), flag)
			v, ok := strings.CutPrefix(strings.TrimSpace(out), name+" version ")
			if code != 0 || !ok || v == "" || strings.Contains(v, "\n") {
				t.Errorf("%s %s: exit %d, output %.200q; want one line \"%s version V\"", name, flag, code, out, name)
				continue
			}
			versions[v] = true
		}
	}
	if len(versions) != 1 {
		t.Errorf("the binaries of one build report different versions: %v", versions)
	}
}
