package bench

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/courier-sdn/courier/tests/bench/ctbench"
)

// CTResult compares connection tracking in Courier's own table with the
// kernel's conntrack through its kfuncs (ctbench), per packet.
type CTResult struct {
	*ctbench.Result
	Stats map[string]map[ctbench.Tracker]Stat `json:"stats"` // by case and tracker
	// KfuncOverLRU is the ratio of the medians, by case.
	KfuncOverLRU map[string]float64 `json:"kfunc_over_lru"`
}

// A lookup's sample is the mean of ctRepeat runs; a new connection's, of
// ctNewRepeat runs, each a new connection. Both tables hold far fewer
// entries than their limits (262,144 each) after the rounds.
const (
	ctRepeat    = 200000
	ctNewRepeat = 20000
)

// Conntrack runs the connection tracking benchmark in rounds, in a
// namespace of its own (deleted after, with the kernel's entries).
func Conntrack(rounds int) (*CTResult, error) {
	a, z := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	ma, mz := net.HardwareAddr{2, 0, 0, 0, 0, 1}, net.HardwareAddr{2, 0, 0, 0, 0, 2}
	fwd, rev := tcpFrame(mz, ma, a, z, 40000, 80), tcpFrame(ma, mz, z, a, 80, 40000)
	prefix := fmt.Sprintf("bc%d-", os.Getpid()%10000)
	r, err := ctbench.Measure(prefix, fwd, rev, rounds, ctRepeat, ctNewRepeat)
	if err != nil {
		return nil, err
	}
	res := &CTResult{Result: r, Stats: map[string]map[ctbench.Tracker]Stat{}, KfuncOverLRU: map[string]float64{}}
	for c, byTracker := range r.NS {
		res.Stats[c] = map[ctbench.Tracker]Stat{}
		for t, v := range byTracker {
			res.Stats[c][t] = stat(v)
		}
		if l, k := res.Stats[c][ctbench.LRU].Med, res.Stats[c][ctbench.Kfunc].Med; l > 0 {
			res.KfuncOverLRU[c] = k / l
		}
	}
	return res, nil
}

func (s *CTResult) markdown(b *strings.Builder) {
	fmt.Fprintf(b, "## Connection tracking: Courier's table against the kernel's conntrack\n\n")
	fmt.Fprintf(b, "One TCP/IPv4 frame through BPF_PROG_RUN, ns per packet, %d interleaved rounds (min / median / max; a sample is the mean of %d runs, %d for new connections, each run a new one):\n\n", s.Rounds, s.Repeat, s.NewRepeat)
	fmt.Fprintf(b, "| case | Courier's LRU (ct_v1) | kernel conntrack (kfuncs) | kfunc / LRU (medians) |\n|---|---|---|---|\n")
	f := func(st Stat) string { return fmt.Sprintf("%.0f / %.0f / %.0f", st.Min, st.Med, st.Max) }
	names := map[string]string{ctbench.CaseHit: "tracked, as opened", ctbench.CaseHitReply: "tracked, the reply", ctbench.CaseNew: "new connection (miss, insert)"}
	for _, c := range ctbench.Cases {
		if c == ctbench.CaseParse {
			continue
		}
		st := s.Stats[c]
		fmt.Fprintf(b, "| %s | %s | %s | %.2f |\n", names[c], f(st[ctbench.LRU]), f(st[ctbench.Kfunc]), s.KfuncOverLRU[c])
	}
	fmt.Fprintf(b, "\nParsing the frame alone (both programs do it): %s ns. A kernel hit restarts the entry's idle timeout at most once a second, as ct_v1's does (netfilter never sees the packets the DVR redirects). The measurement's namespace held %d kernel entries at the end; the host's table is not touched.\n\n",
		f(s.Stats[ctbench.CaseParse][ctbench.Parse]), s.KernelEntries)
}
