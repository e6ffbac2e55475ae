package southd

import "github.com/prometheus/client_golang/prometheus"

// Metrics are southd's Prometheus metrics.
type Metrics struct {
	active   prometheus.Gauge
	chassis  *prometheus.GaugeVec
	hubMoves prometheus.Counter
	learned  *prometheus.CounterVec
	accepted prometheus.Counter
	stalls   prometheus.Counter
	grants   prometheus.Counter
	// portStates counts northbound ports whose up or chassis was written.
	portStates prometheus.Counter
	// decide and phase time each pass of the active instance.
	decide prometheus.Histogram
	phase  *prometheus.HistogramVec
	// passes counts passes by what they read (full, changes: pass.go)
	passes *prometheus.CounterVec
	// SNAT blocks (snat.go): ports found lacking, blocks written, and
	// per VPC (by key) the blocks in use and in all
	snatExhausted       prometheus.Counter
	snatWrites          prometheus.Counter
	snatUsed, snatTotal *prometheus.GaugeVec
	// handoffsRemoved counts stale SNAT_Handoff rows removed, by why
	// (handoff.go)
	handoffsRemoved *prometheus.CounterVec
}

// NewMetrics registers southd's metrics with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		active: prometheus.NewGauge(prometheus.GaugeOpts{Name: "courier_southd_active",
			Help: "1 while this instance holds the lock and decides."}),
		chassis: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "courier_southd_chassis",
			Help: "Chassis by state (alive, dead)."}, []string{"state"}),
		hubMoves: prometheus.NewCounter(prometheus.CounterOpts{Name: "courier_southd_hub_moves_total",
			Help: "Hub assignments made or moved."}),
		learned: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "courier_southd_learned_removed_total",
			Help: "Learned bindings removed, by why (no_port, wrong_chassis, not_declared, bad_address, fixed_ip, virtual_ip, limit, superseded, aged)."}, []string{"why"}),
		accepted: prometheus.NewCounter(prometheus.CounterOpts{Name: "courier_southd_learned_accepted_total",
			Help: "Learned bindings accepted: hosts and hubs act on them from then on."}),
		stalls: prometheus.NewCounter(prometheus.CounterOpts{Name: "courier_southd_view_stalls_total",
			Help: "Times the southbound stopped answering long enough that liveness judgments were suspended, then restarted with a grace period."}),
		grants: prometheus.NewCounter(prometheus.CounterOpts{Name: "courier_southd_port_grants_total",
			Help: "Ports nobody requested bound to a live chassis that claims them."}),
		portStates: prometheus.NewCounter(prometheus.CounterOpts{Name: "courier_southd_port_state_writes_total",
			Help: "Northbound ports whose up or chassis southd wrote."}),
		decide: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "courier_southd_decide_seconds",
			Help:    "Time of one pass of the active southd: judging, writing the southbound, hv_cfg and ports' state.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
		phase: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "courier_southd_phase_seconds",
			Help:    "Where a pass's time goes: write_sb (liveness, grants, hubs, learned), ack_hosts (hv_cfg), write_port_state, snat (SNAT blocks).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10)}, []string{"phase"}),
		passes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "courier_southd_passes_total",
			Help: "Decision passes of the active instance, by what they read: full (every binding and port) or changes (only those that changed since the last pass)."}, []string{"read"}),
		snatExhausted: prometheus.NewCounter(prometheus.CounterOpts{Name: "courier_southd_snat_exhausted_total",
			Help: "Times a port started lacking SNAT blocks because its VPC's SNAT addresses had no free block."}),
		snatWrites: prometheus.NewCounter(prometheus.CounterOpts{Name: "courier_southd_snat_block_writes_total",
			Help: "SNAT blocks allocated or freed."}),
		snatUsed: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "courier_southd_snat_blocks_used",
			Help: "SNAT blocks allocated to a VPC's ports, by VPC key."}, []string{"vpc"}),
		snatTotal: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "courier_southd_snat_blocks",
			Help: "SNAT blocks a VPC's addresses have in all, by VPC key."}, []string{"vpc"}),
		handoffsRemoved: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "courier_southd_snat_handoffs_removed_total",
			Help: "Stale SNAT_Handoff rows removed, by why: no_port (its port was deleted), destination_gone (its destination chassis was deleted or dead past --handoff-dead-for), aged (seen for --handoff-max-age)."}, []string{"why"}),
	}
	if reg != nil {
		reg.MustRegister(m.active, m.chassis, m.hubMoves, m.learned, m.accepted, m.stalls, m.grants, m.portStates, m.decide, m.phase, m.passes,
			m.snatExhausted, m.snatWrites, m.snatUsed, m.snatTotal, m.handoffsRemoved)
	}
	return m
}
