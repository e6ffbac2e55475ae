// Package testenv starts the real parts Courier's tests run against:
// ovsdb-server processes in a private run directory, the repository's
// built binaries, network namespaces with a test-unique prefix. Everything
// it creates is removed by t.Cleanup, also when the test fails.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/courier-sdn/courier/internal/central"
)

// Integration skips t under "go test -short" (make unit), and fails it if a
// required program is missing: a test that silently passes without its
// real parts would be a lie.
func Integration(t testing.TB, programs ...string) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: runs real servers (skipped with -short)")
	}
	for _, p := range append([]string{"ovsdb-server", "ovsdb-tool"}, programs...) {
		if _, err := exec.LookPath(p); err != nil {
			t.Fatalf("%s is not installed (make deps installs it)", p)
		}
	}
}

// Root fails t unless it runs as root (namespaces, links, BPF).
func Root(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("this test needs root (network namespaces and BPF)")
	}
}

// ID returns a short random identifier, unique per test run, for names
// of namespaces, links and pinned objects.
func ID() string {
	b := make([]byte, 3)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// RunDir returns a fresh short directory (unix socket paths are limited to
// 108 bytes) removed after the test.
func RunDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "crt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// Logger returns a logger that writes into the test's log.
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// DBs are a northbound and a southbound ovsdb-server for one test.
type DBs struct {
	*central.Config
	NB, SB string // unix remotes
}

// StartDBs starts both databases (standalone) in a fresh run directory,
// plus the given central daemons, and stops everything when the test ends.
func StartDBs(t testing.TB, daemons ...central.Daemon) *DBs {
	t.Helper()
	Integration(t)
	c := &central.Config{RunDir: RunDir(t), Daemons: daemons, BinDir: BinDir(t)}
	t.Cleanup(func() {
		if t.Failed() {
			DumpLogs(t, c.RunDir)
		}
		if err := c.Stop(); err != nil {
			t.Errorf("stop services: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatalf("start databases: %v", err)
	}
	return &DBs{Config: c, NB: c.Remote(central.Databases[0]), SB: c.Remote(central.Databases[1])}
}

// DumpLogs copies the run directory's logs into the test log.
func DumpLogs(t testing.TB, dir string) {
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		if len(b) > 20000 {
			b = b[len(b)-20000:]
		}
		t.Logf("==== %s ====\n%s", l, b)
	}
}

// BinDir is where the built binaries are: $COURIER_BIN (set by make test),
// else the repository's bin/, which it builds if needed.
func BinDir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("COURIER_BIN"); d != "" {
		return d
	}
	root := RepoRoot(t)
	bin := filepath.Join(root, "bin")
	cmd := exec.Command("go", "build", "-o", bin+"/", "./cmd/...")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// RepoRoot is the repository's top directory.
func RepoRoot(t testing.TB) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Eventually polls cond every 20 ms until it returns nil or timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: not true after %v: %v", what, timeout, err)
}

// Run runs a command and returns its combined output, failing t on error.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Sprintf is fmt.Sprintf, for brevity in table tests.
var Sprintf = fmt.Sprintf
