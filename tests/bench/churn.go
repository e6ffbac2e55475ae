package bench

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/tools/sandbox"
)

// HostLoad is one hostd's CPU over a window, in percent of a core, and
// its peak RSS.
type HostLoad struct {
	Host       string  `json:"host"`
	CPUPct     float64 `json:"cpu_pct"`
	PeakRSSMiB float64 `json:"peak_rss_mib"`
}

// cpuMeter reads hostds' CPU time from /proc.
type cpuMeter struct {
	pids  map[string]int
	ticks map[string]float64
	start time.Time
}

func newCPUMeter(sb *sandbox.Sandbox, hosts ...string) *cpuMeter {
	m := &cpuMeter{pids: map[string]int{}, ticks: map[string]float64{}, start: time.Now()}
	for _, h := range hosts {
		b, err := os.ReadFile(filepath.Join(sb.RunDir, "hostd-"+h+".pid"))
		if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && perr == nil {
			m.pids[h] = pid
			m.ticks[h] = cpuTicks(pid)
		}
	}
	return m
}

// read returns each hostd's load since the meter was made.
func (m *cpuMeter) read() []HostLoad {
	secs := time.Since(m.start).Seconds()
	var out []HostLoad
	for _, h := range slices.Sorted(maps.Keys(m.pids)) {
		pid := m.pids[h]
		out = append(out, HostLoad{Host: h, CPUPct: (cpuTicks(pid) - m.ticks[h]) / secs, PeakRSSMiB: peakRSS(pid)})
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

// churn moves present ports between two chassis that run nothing,
// rate changes a second, one NB transaction each, until stop is called;
// stop returns how many changes were made.
func churn(ctx context.Context, nbS *ops.Session, present, rate int, from, to string) (stop func() int, err error) {
	res, err := ops.Transact(ctx, nbS, ovsdb.Operation{Op: ovsdb.OperationSelect, Table: "Port",
		Where: []ovsdb.Condition{{Column: "requested_chassis", Function: ovsdb.ConditionEqual, Value: from}}, Columns: []string{"_uuid"}})
	if err != nil {
		return nil, err
	}
	var uuids []string
	for _, r := range res[0].Rows {
		if u, ok := r["_uuid"].(ovsdb.UUID); ok {
			uuids = append(uuids, u.GoUUID)
		}
	}
	if len(uuids) == 0 {
		return nil, fmt.Errorf("no port on %s to move", from)
	}
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan int)
	go func() {
		n := 0
		t := time.NewTicker(time.Second / time.Duration(rate))
		defer t.Stop()
		for {
			select {
			case <-cctx.Done():
				done <- n
				return
			case <-t.C:
			}
			// Each port goes over and, a round later, comes back.
			at := to
			if (n/len(uuids))%2 == 1 {
				at = from
			}
			u := uuids[(n*97)%len(uuids)]
			if _, err := ops.Transact(cctx, nbS, ovsdb.Operation{Op: ovsdb.OperationUpdate, Table: "Port",
				Where: ops.WhereUUID(u), Row: ovsdb.Row{"requested_chassis": at}}); err == nil {
				n++
			}
		}
	}()
	return func() int { cancel(); return <-done }, nil
}
