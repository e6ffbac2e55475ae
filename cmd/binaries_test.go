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

// A stray positional argument is refused by name, before anything
// starts: "courier-northd version" used to start northd against the
// default run directory, and the flag parser stopped at the stray word,
// so "courier-ctl start x --no-daemons" started the daemons too.
func TestStrayArgumentIsRefused(t *testing.T) {
	testenv.Integration(t, "ip")
	testenv.Root(t)
	dir := testenv.BinDir(t)
	tmp := testenv.RunDir(t)
	nb, sb := "unix:"+filepath.Join(tmp, "nb.sock"), "unix:"+filepath.Join(tmp, "sb.sock")
	// hostd, should it start after all, does so in a namespace of this
	// test, against a socket nobody serves.
	ns := "ct" + testenv.ID() + "-stray"
	testenv.Run(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	// If courier-ctl ignores the stray word it starts in tmp: stop it.
	t.Cleanup(func() { exec.Command(filepath.Join(dir, "courier-ctl"), "--run-dir", tmp, "stop").Run() })
	cases := map[string][]string{
		"courier-northd":  {"--run-dir", tmp, "--nb", nb, "--sb", sb, "version"},
		"courier-southd":  {"--run-dir", tmp, "--nb", nb, "--sb", sb, "version"},
		"courier-hostd":   {"--chassis", "stray", "--encap-ip", "192.0.2.1", "--sb", sb, "--pin-root", tmp, "--device", "cvx" + testenv.ID(), "version"},
		"courier-ctl":     {"--run-dir", tmp, "version"},
		"courier-nbctl":   {"--db", nb, "version"},
		"courier-sbctl":   {"--db", sb, "version"},
		"courier-dpctl":   {"--chassis", "stray", "--pin-root", tmp, "version"},
		"courier-sandbox": {"--run-dir", tmp, "version"},
		"courier-trace":   {"--db", sb, `inport == "x"`, "version"},
	}
	extra := map[string][]string{
		"courier-ctl start": {"--run-dir", tmp, "start", "--no-daemons", "version"},
		"courier-hostd":     {"version"},
	}
	check := func(label, name string, args []string) {
		bin := filepath.Join(dir, name)
		cmd := []string{bin}
		if name == "courier-hostd" {
			cmd = []string{"ip", "netns", "exec", ns, bin}
		}
		out, code, timedOut := run(t, cmd[0], append(cmd[1:], args...)...)
		switch {
		case timedOut:
			t.Errorf("%s %v: still running after 10 s: it ignored the stray argument and started\n%s", label, args, out)
		case code == 0 || !strings.Contains(out, `"version"`):
			t.Errorf("%s %v: exit %d; want a failure naming the argument \"version\":\n%s", label, args, code, out)
		}
	}
	for _, name := range binaries(t) {
		args, ok := cases[name]
		if !ok {
			t.Errorf("%s: no stray-argument case; add one", name)
			continue
		}
		check(name, name, args)
	}
	for label, args := range extra {
		check(label, strings.Fields(label)[0], args)
	}
}

// "courier-hostd attach PORT IFNAME" needs no --chassis or --encap-ip:
// they were required of the whole command line, attach included.
func TestHostdAttachNeedsNoChassis(t *testing.T) {
	testenv.Integration(t, "ip")
	testenv.Root(t)
	ns := "ct" + testenv.ID() + "-attach"
	testenv.Run(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	testenv.Run(t, "ip", "-n", ns, "link", "add", "vm0", "type", "veth", "peer", "name", "vm1")
	out, code, _ := run(t, "ip", "netns", "exec", ns, filepath.Join(testenv.BinDir(t), "courier-hostd"), "attach", "p1", "vm0")
	if code != 0 {
		t.Fatalf("attach: exit %d\n%s", code, out)
	}
	if link := testenv.Run(t, "ip", "-n", ns, "link", "show", "vm0"); !strings.Contains(link, "alias courier:p1") {
		t.Errorf("attach did not set the alias:\n%s", link)
	}
}
