// Package install checks what "make install" puts on a machine: the
// services start with the installed units' ExecStart lines, reading the
// installed environment files, as systemd would run them.
package install

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/courier-sdn/courier/internal/lab"
	"github.com/courier-sdn/courier/internal/testenv"
)

// unit is what the test reads from an installed unit file.
type unit struct {
	env       string // EnvironmentFile, without systemd's "-"
	execStart string
	execStop  string
}

func readUnit(t *testing.T, path string) unit {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var u unit
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		switch k {
		case "EnvironmentFile":
			u.env = strings.TrimPrefix(v, "-")
		case "ExecStart":
			u.execStart = v
		case "ExecStop":
			u.execStop = v
		}
	}
	if u.execStart == "" {
		t.Fatalf("%s has no ExecStart", path)
	}
	return u
}

// readEnv reads an EnvironmentFile (KEY=VALUE, optionally quoted).
func readEnv(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		k, v, _ := strings.Cut(l, "=")
		env[k] = strings.Trim(v, `"`)
	}
	return env
}

// expand turns an ExecStart line into argv as systemd does: ${VAR} is
// one word, $VAR is split at spaces (and vanishes when empty). The
// binary's path is found under destdir.
func expand(line, destdir string, env map[string]string) []string {
	var argv []string
	for _, w := range strings.Fields(line) {
		switch {
		case strings.HasPrefix(w, "${") && strings.HasSuffix(w, "}"):
			argv = append(argv, env[w[2:len(w)-1]])
		case strings.HasPrefix(w, "$"):
			argv = append(argv, strings.Fields(env[w[1:]])...)
		default:
			argv = append(argv, w)
		}
	}
	argv[0] = filepath.Join(destdir, argv[0])
	return argv
}

func environ(env map[string]string) []string {
	out := os.Environ()
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

func TestInstalledUnitsStartTheServices(t *testing.T) {
	testenv.Integration(t)
	testenv.Root(t)
	dest := testenv.RunDir(t)
	root := testenv.RepoRoot(t)
	make := exec.Command("make", "-C", root, "install", "DESTDIR="+dest, "PREFIX=/usr", "BIN="+testenv.BinDir(t))
	if out, err := make.CombinedOutput(); err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	units := filepath.Join(dest, "usr/lib/systemd/system")
	for _, f := range []string{"usr/share/man/man8/courier-nbctl.8", "usr/share/man/man5/courier-nb.5", "usr/share/man/man5/courier-sb.5",
		"usr/share/bash-completion/completions/courier-nbctl",
		"etc/default/courier", "etc/default/courier-hostd", "usr/bin/courier-hostd"} {
		if _, err := os.Stat(filepath.Join(dest, f)); err != nil {
			t.Errorf("make install did not install %s", f)
		}
	}

	// The installed environment, pointed at this test's directories and
	// ports, as an operator would edit it.
	db, northd, southd := readUnit(t, filepath.Join(units, "courier-ovsdb.service")), readUnit(t, filepath.Join(units, "courier-northd.service")),
		readUnit(t, filepath.Join(units, "courier-southd.service"))
	env := readEnv(t, filepath.Join(dest, strings.TrimPrefix(db.env, "/")))
	run := testenv.RunDir(t)
	env["COURIER_RUNDIR"], env["COURIER_DBDIR"] = run, run
	nPort, sPort := testenv.FreePort(t), testenv.FreePort(t)
	env["COURIER_NORTHD_OPTS"] = strings.Replace(env["COURIER_NORTHD_OPTS"], "127.0.0.1:9650", fmt.Sprintf("127.0.0.1:%d", nPort), 1)
	env["COURIER_SOUTHD_OPTS"] = strings.Replace(env["COURIER_SOUTHD_OPTS"], "127.0.0.1:9651", fmt.Sprintf("127.0.0.1:%d", sPort), 1)

	start := exec.Command(expand(db.execStart, dest, env)[0], expand(db.execStart, dest, env)[1:]...)
	start.Env = environ(env)
	t.Cleanup(func() {
		stop := expand(db.execStop, dest, env)
		c := exec.Command(stop[0], stop[1:]...)
		c.Env = environ(env)
		if out, err := c.CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s", db.execStop, err, out)
		}
	})
	if out, err := start.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", db.execStart, err, out)
	}
	for _, u := range []unit{northd, southd} {
		argv := expand(u.execStart, dest, env)
		c := exec.Command(argv[0], argv[1:]...)
		c.Env = environ(env)
		c.Stdout, c.Stderr = testWriter{t}, testWriter{t}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			c.Process.Signal(os.Interrupt)
			c.Wait()
		})
	}
	for _, port := range []int{nPort, sPort} {
		testenv.Eventually(t, 20*time.Second, fmt.Sprintf("daemon on :%d ready", port), func() error {
			resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", port))
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return fmt.Errorf("/readyz: %s", resp.Status)
			}
			return nil
		})
	}
	// The installed tools find the databases through the same file, and
	// northd compiles.
	nbctl := exec.Command(filepath.Join(dest, "usr/bin/courier-nbctl"), "--timeout=20s", "--wait=sb", "vpc-add", "blue")
	nbctl.Env = environ(env)
	if out, err := nbctl.CombinedOutput(); err != nil {
		t.Fatalf("installed courier-nbctl --wait=sb: %v\n%s", err, out)
	}
	startHostd(t, dest, units, run)
}

// startHostd runs the installed hostd unit's ExecStart in a hypervisor
// namespace and waits for its chassis to register.
func startHostd(t *testing.T, dest, units, run string) {
	u := readUnit(t, filepath.Join(units, "courier-hostd.service"))
	env := readEnv(t, filepath.Join(dest, strings.TrimPrefix(u.env, "/")))
	id := testenv.ID()
	l, err := lab.New("crt"+id+"-", netip.MustParsePrefix("192.0.2.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Destroy() })
	h, err := l.AddHost("hv1", 1)
	if err != nil {
		t.Fatal(err)
	}
	pins := "/sys/fs/bpf/crt" + id
	t.Cleanup(func() { os.RemoveAll(pins) })
	env["COURIER_CHASSIS"], env["COURIER_ENCAP_IP"] = "hv1", h.VTEP.String()
	env["COURIER_SB_DB"] = "unix:" + filepath.Join(run, "sb.sock")
	env["COURIER_HOSTD_OPTS"] += " --pin-root " + pins
	argv := expand(u.execStart, dest, env)
	c := exec.Command(argv[0], argv[1:]...)
	c.Env = environ(env)
	c.Stdout, c.Stderr = testWriter{t}, testWriter{t}
	if err := lab.Do(h.NS, c.Start); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Process.Signal(os.Interrupt)
		c.Wait()
	})
	sbctl := filepath.Join(dest, "usr/bin/courier-sbctl")
	testenv.Eventually(t, 20*time.Second, "hostd's chassis registered", func() error {
		out, err := exec.Command(sbctl, "--db", env["COURIER_SB_DB"], "--bare", "--columns=name,encap_ip", "list", "Chassis").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "hv1\n"+h.VTEP.String()) {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	})
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
