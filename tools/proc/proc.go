// Package proc starts and stops the background processes of Courier's
// control tools (ovsdb-server, the daemons, hostd in a sandbox) and records
// them in pid files. It only ever signals a process whose pid it recorded
// and whose command line still matches what it started, so a stale pid
// file can never make it kill somebody else's process.
package proc

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Spec is a process to run in the background.
type Spec struct {
	Bin     string
	Args    []string
	LogFile string // stdout and stderr are appended here
	PidFile string
	Env     []string // added to the environment
	// Start, if set, starts the command instead of cmd.Start (for example
	// to start it inside a network namespace).
	Start func(*exec.Cmd) error
}

// Find locates one of Courier's binaries: in binDir when given, else next
// to the running executable, else in $PATH.
func Find(binDir, name string) (string, error) {
	var dirs []string
	if binDir != "" {
		dirs = append(dirs, binDir)
	}
	if exe, err := os.Executable(); err == nil {
		dirs = append(dirs, filepath.Dir(exe))
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s not found next to %s or in $PATH (run make build)", name, os.Args[0])
	}
	return p, nil
}

// Start runs the process in its own session so that it outlives the tool
// that started it, and writes its pid file.
func Start(s Spec) (int, error) {
	logf, err := os.OpenFile(s.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	defer logf.Close()
	cmd := exec.Command(s.Bin, s.Args...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.Env = append(os.Environ(), s.Env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	start := cmd.Start
	if s.Start != nil {
		start = func() error { return s.Start(cmd) }
	}
	if err := start(); err != nil {
		return 0, fmt.Errorf("start %s: %w", s.Bin, err)
	}
	pid := cmd.Process.Pid
	// Reap the child if this tool lives longer than it (tests, sandbox).
	go cmd.Wait()
	if err := os.WriteFile(s.PidFile, []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		cmd.Process.Kill()
		return 0, err
	}
	return pid, nil
}

// Running returns the pid recorded in pidFile when that process is alive
// and its command line contains want.
func Running(pidFile, want string) (int, bool) {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0, false
	}
	return pid, Matches(pid, want)
}

// Matches reports whether pid is alive (not a zombie) and its command line
// contains want.
func Matches(pid int, want string) bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(cmdline) == 0 {
		return false
	}
	if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		if i := bytes.LastIndexByte(st, ')'); i > 0 && i+2 < len(st) && st[i+2] == 'Z' {
			return false
		}
	}
	return bytes.Contains(bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}), []byte(want))
}

// Stop terminates the process recorded in pidFile if it is still the one
// we started (its command line contains want): SIGTERM, then SIGKILL after
// timeout. The pid file is removed. Stopping something already gone is
// not an error.
func Stop(pidFile, want string, timeout time.Duration) error {
	pid, ok := Running(pidFile, want)
	defer os.Remove(pidFile)
	if !ok {
		return nil
	}
	return StopPID(pid, want, timeout)
}

// StopPID is Stop for a known pid.
func StopPID(pid int, want string, timeout time.Duration) error {
	if !Matches(pid, want) {
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if !Matches(pid, want) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	for i := 0; i < 100 && Matches(pid, want); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if Matches(pid, want) {
		return fmt.Errorf("process %d (%s) did not exit", pid, want)
	}
	return nil
}

// Kill sends SIGKILL to pid if it is still the process we started (its
// command line contains want) and waits for it to go.
func Kill(pid int, want string) error {
	if !Matches(pid, want) {
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	for i := 0; i < 200 && Matches(pid, want); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}
