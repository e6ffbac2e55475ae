package bench

import (
	"fmt"
	"strings"
)

func (r *HostScaleResult) markdown(b *strings.Builder) {
	fmt.Fprintf(b, "## Host-side scale (%d ports, all bound, churned at %s changes a second)\n\n", r.Ports, r.rateList())
	fmt.Fprintf(b, "Four hosts (hv1 and hv2 the VPC's hubs), every port of the VPC bound on a chassis that runs nothing, so that both hubs hold all %d bindings in their kernel. Set-up (load until both hubs held them) took %.0f s. ", r.Ports, r.SetupSeconds)
	fmt.Fprintf(b, "Per rate, the churn deletes a port, adds back the one deleted longest ago, and moves one between two such chassis, in turn, each its own NB transaction sent when due (up to %d in flight); after 3 s, new ports on hv4 are measured from their NB commit, pinged every 2 ms from a VM on hv3 in another vxnet.\n\n", churnInFlight)
	if len(r.BelowTarget) > 0 {
		fmt.Fprintf(b, "**BELOW TARGET:**\n\n")
		for _, s := range r.BelowTarget {
			fmt.Fprintf(b, "- %s\n", s)
		}
		fmt.Fprintf(b, "\n")
	}
	fmt.Fprintf(b, "| changes/s asked | made/s | adds / deletes / moves (failed, sent late) | churn commit p50 / p99 ms | binding in SB p50 / p99 / max ms | **port up** p50 / p99 / max ms | **first echo reply** p50 / p99 / max ms | samples | load avg |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, s := range r.Rates {
		c := s.Churn
		fmt.Fprintf(b, "| %d | %.1f | %d / %d / %d (%d, %d) | %.1f / %.1f | %s | %s | %s | %d | %.1f → %.1f |\n",
			c.Asked, c.Achieved, c.Adds, c.Deletes, c.Moves, c.Failed, c.Late, c.Commit.P50, c.Commit.P99,
			lat3(s.ToBinding), lat3(s.ToUp), lat3(s.Latency), s.Samples, s.LoadAvg[0], s.LoadAvg[1])
	}
	fmt.Fprintf(b, "\nTargets at %d ports and %d changes a second: port up p99 under %d ms, first echo reply p99 under %d ms. The first port of the VPC on hv4 (which opens its monitor of the VPC) is not among the samples: %.1f ms.\n\n",
		targetPorts, targetRate, targetUpP99Ms, targetReplyP99Ms, r.FirstOnHost)
	fmt.Fprintf(b, "CPU in %% of a core and peak RSS in MiB over each rate's samples (at least 10 s), and the hub hv1's reconciles per change made in that window:\n\n")
	fmt.Fprintf(b, "| changes/s | hub hv1 CPU / RSS | hv3 (sender) | hv4 (new ports) | northd | southd | NB server | SB server | hub reconciles per change | hub reconcile ms per change | hub map writes per change |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, s := range r.Rates {
		per := func(v float64) float64 {
			if s.Changes == 0 {
				return 0
			}
			return v / float64(s.Changes)
		}
		fmt.Fprintf(b, "| %d |", s.Churn.Asked)
		for _, n := range []string{"hostd-hv1", "hostd-hv3", "hostd-hv4", "courier-northd", "courier-southd", "ovsdb-server-nb", "ovsdb-server-sb"} {
			l := loadOf(s.Load, n)
			fmt.Fprintf(b, " %.1f / %.0f |", l.CPUPct, l.PeakRSSMiB)
		}
		fmt.Fprintf(b, " %.2f | %.3f | %.2f |\n", per(s.HubReconciles), per(s.HubReconcileSecs*1000), per(s.HubMapWrites))
	}
	fmt.Fprintf(b, "\nIdle (%.0f s after the load, nothing changing, load average %.1f; target: a hostd under %d%% of a core):", idleWindow.Seconds(), r.IdleLoadAvg, targetIdlePct)
	for _, l := range r.Idle {
		fmt.Fprintf(b, " %s %.1f%%,", l.Host, l.CPUPct)
	}
	rss, heap, live, kernel := r.Memory.PerBinding()
	m := r.Memory
	fmt.Fprintf(b, "\n\nHub memory (hv1), before the VPC existed → holding its %d bindings: RSS %.0f → %.0f MiB, **%.0f bytes per binding**; Go heap in use %.0f → %.0f MiB (%.0f bytes per binding), of which live at the last collection %.0f → %.0f MiB (%.0f bytes per binding: the libovsdb cache of the bindings and the hub's table; the rest is garbage not yet collected). The kernel's hub map is preallocated: %d entries in %.1f MiB (%.0f bytes per entry), whatever it holds.\n\n",
		m.Bindings, m.RSSBeforeMiB, m.RSSAfterMiB, rss, m.HeapBeforeMiB, m.HeapAfterMiB, heap, m.LiveBeforeMiB, m.LiveAfterMiB, live, m.MapMaxEntries, m.MapBytes/(1<<20), kernel)
}

func (r *HostScaleResult) rateList() string {
	var s []string
	for _, x := range r.Rates {
		s = append(s, fmt.Sprint(x.Churn.Asked))
	}
	return strings.Join(s, "/")
}

func lat3(l Latency) string { return fmt.Sprintf("%.1f / %.1f / %.1f", l.P50, l.P99, l.Max) }

func loadOf(ls []HostLoad, name string) HostLoad {
	for _, l := range ls {
		if l.Host == name {
			return l
		}
	}
	return HostLoad{}
}
