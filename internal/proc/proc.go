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
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/courier-sdn/courier/internal/ready"
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
	// Ready, when set, is how long Start waits for the process to say it
	// is up (internal/ready). Start fails, naming the process and quoting
	// what it logged, if it exits first or stays silent (it is killed
	// then): a daemon that dies at start-up must not look started.
	Ready time.Duration
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
	logStart, _ := logf.Seek(0, io.SeekEnd)
	cmd := exec.Command(s.Bin, s.Args...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.Env = append(withoutReadyFD(os.Environ()), s.Env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	var readyR, readyW *os.File
	if s.Ready > 0 {
		if readyR, readyW, err = os.Pipe(); err != nil {
			return 0, err
		}
		defer readyR.Close()
		defer readyW.Close()
		cmd.ExtraFiles = []*os.File{readyW} // descriptor 3
		cmd.Env = append(cmd.Env, ready.FDEnv+"=3")
	}
	start := cmd.Start
	if s.Start != nil {
		start = func() error { return s.Start(cmd) }
	}
	if err := start(); err != nil {
		return 0, fmt.Errorf("start %s: %w", s.Bin, err)
	}
	pid := cmd.Process.Pid
	// Reap the child if this tool lives longer than it (tests, sandbox).
	var waitErr error
	exited := make(chan struct{}) // closed once waitErr is set
	go func() { waitErr = cmd.Wait(); close(exited) }()
	if err := os.WriteFile(s.PidFile, []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		cmd.Process.Kill()
		return 0, err
	}
	if readyR == nil {
		return pid, nil
	}
	readyW.Close() // the child's copy is the only one left
	if err := awaitReady(readyR, exited, &waitErr, s.Ready); err != nil {
		cmd.Process.Kill() // ours, and alive only if it hangs
		<-exited
		os.Remove(s.PidFile)
		return 0, fmt.Errorf("%s %w%s", filepath.Base(s.Bin), err, LogTail(s.LogFile, logStart))
	}
	return pid, nil
}

// awaitReady reads the readiness pipe until the message, the end of file
// (the process exited: its copy of the pipe closed with it) or timeout.
func awaitReady(r *os.File, exited <-chan struct{}, waitErr *error, timeout time.Duration) error {
	r.SetReadDeadline(time.Now().Add(timeout))
	var got []byte
	buf := make([]byte, 64)
	for {
		n, err := r.Read(buf)
		got = append(got, buf[:n]...)
		if bytes.Contains(got, []byte(ready.Message)) {
			return nil
		}
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			return fmt.Errorf("did not report that it is up within %v; killed it", timeout)
		case err != nil:
			select {
			case <-exited:
				status := "exit status 0"
				if *waitErr != nil {
					status = (*waitErr).Error()
				}
				return fmt.Errorf("exited during start-up (%s)", status)
			case <-time.After(2 * time.Second):
				return errors.New("closed its readiness pipe without reporting that it is up; killed it")
			}
		}
	}
}

// LogTail is the last lines a process wrote to its log from offset on,
// to quote in an error ("; the end of FILE:" and the lines).
func LogTail(file string, offset int64) string {
	const most = 4096
	f, err := os.Open(file)
	if err != nil {
		return ""
	}
	defer f.Close()
	if end, err := f.Seek(0, io.SeekEnd); err == nil && end-offset > most {
		offset = end - most
	}
	f.Seek(offset, io.SeekStart)
	b, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) == 1 && lines[0] == "" {
		return "; it logged nothing in " + file
	}
	if len(lines) > 10 {
		lines = lines[len(lines)-10:]
	}
	return "; the end of " + file + ":\n    " + strings.Join(lines, "\n    ")
}

// withoutReadyFD drops a readiness descriptor this tool was itself given:
// the process it starts must not write to a descriptor it does not have.
func withoutReadyFD(env []string) []string {
	out := env[:0:0]
	for _, e := range env {
		if !strings.HasPrefix(e, ready.FDEnv+"=") {
			out = append(out, e)
		}
	}
	return out
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
	if err != nil || len(cmdline) == 0 || !Alive(pid) {
		return false
	}
	return bytes.Contains(bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}), []byte(want))
}

// Alive reports whether pid is a process that has not exited, whatever
// it runs. Right after Start, use it rather than Matches: for a moment
// after exec the new program's command line reads empty.
func Alive(pid int) bool {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(st, ')')
	return i > 0 && i+2 < len(st) && st[i+2] != 'Z' && st[i+2] != 'X'
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
