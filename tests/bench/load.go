package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/courier-sdn/courier/tools/sandbox"
)

// HostLoad is one process's CPU over a window, in percent of a core,
// and its peak RSS in that window (or since it started, where the
// kernel would not reset the peak).
type HostLoad struct {
	Host       string  `json:"host"`
	CPUPct     float64 `json:"cpu_pct"`
	PeakRSSMiB float64 `json:"peak_rss_mib"`
}

// cpuMeter reads processes' CPU time from /proc.
type cpuMeter struct {
	names []string
	pids  map[string]int
	ticks map[string]float64
	start time.Time
}

// newCPUMeter meters the hostds of hosts.
func newCPUMeter(sb *sandbox.Sandbox, hosts ...string) *cpuMeter {
	files := make([]string, len(hosts))
	for i, h := range hosts {
		files[i] = "hostd-" + h
	}
	m := newPidMeter(sb.RunDir, files...)
	m.names = hosts // reported by host name, as before
	for i, f := range files {
		if pid, ok := m.pids[f]; ok {
			m.pids[hosts[i]], m.ticks[hosts[i]] = pid, m.ticks[f]
		}
	}
	return m
}

// newPidMeter meters the processes whose pid files are dir/<name>.pid
// (hostd-hv1, courier-northd, ovsdb-server-sb...) and resets their peak
// RSS, so that read reports this window's.
func newPidMeter(dir string, names ...string) *cpuMeter {
	m := &cpuMeter{names: names, pids: map[string]int{}, ticks: map[string]float64{}, start: time.Now()}
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(dir, n+".pid"))
		if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && perr == nil {
			m.pids[n] = pid
			m.ticks[n] = cpuTicks(pid)
			// "5" resets VmHWM to the current RSS (proc(5), clear_refs).
			os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
		}
	}
	return m
}

// read returns each process's load since the meter was made.
func (m *cpuMeter) read() []HostLoad {
	secs := time.Since(m.start).Seconds()
	var out []HostLoad
	for _, n := range m.names {
		pid, ok := m.pids[n]
		if !ok {
			continue
		}
		out = append(out, HostLoad{Host: n, CPUPct: (cpuTicks(pid) - m.ticks[n]) / secs, PeakRSSMiB: peakRSS(pid)})
	}
	return out
}

// cpuTicks is a process's user and system time in clock ticks (1/100 s).
func cpuTicks(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // after the command name
	u, _ := strconv.ParseFloat(f[11], 64)
	k, _ := strconv.ParseFloat(f[12], 64)
	return u + k
}

// rssMiB is a process's resident memory now.
func rssMiB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.Fields(v)[0])
			return float64(kb) / 1024
		}
	}
	return 0
}
