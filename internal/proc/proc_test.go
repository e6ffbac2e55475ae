package proc

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Start with Ready: up when the process says so on its readiness pipe,
// an error quoting the log when it exits first or stays silent.
func TestStartWaitsForReadiness(t *testing.T) {
	dir := t.TempDir()
	start := func(name, script string) (int, error) {
		return Start(Spec{Bin: "/bin/sh", Args: []string{"-c", script, name}, Ready: time.Second,
			LogFile: filepath.Join(dir, name+".log"), PidFile: filepath.Join(dir, name+".pid")})
	}
	pid, err := start("up", `echo "READY=1" >&3; exec 3>&-; exec sleep 30`)
	if err != nil {
		t.Fatalf("a process that reports readiness: %v", err)
	}
	t.Cleanup(func() { StopPID(pid, "sleep", 5*time.Second) })
	if !Alive(pid) { // not Matches: sh may be exec'ing sleep just now
		t.Errorf("process %d not running after it said it is up", pid)
	}

	_, err = start("dies", `echo "cannot listen: address already in use"; exit 3`)
	if err == nil || !strings.Contains(err.Error(), "sh exited during start-up (exit status 3)") ||
		!strings.Contains(err.Error(), "address already in use") {
		t.Errorf("a process that exits at start-up: %v", err)
	}
	if _, serr := os.Stat(filepath.Join(dir, "dies.pid")); serr == nil {
		t.Errorf("the pid file of a process that died is left behind")
	}

	began := time.Now()
	_, err = start("hangs", `echo stuck; exec sleep 30`)
	if err == nil || !strings.Contains(err.Error(), "did not report that it is up within 1s") || !strings.Contains(err.Error(), "stuck") {
		t.Errorf("a process that never reports: %v", err)
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Errorf("waited %v for a silent process, not about a second", d)
	}
}
