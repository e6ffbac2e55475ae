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
	}
	if reg != nil {
		reg.MustRegister(m.active, m.chassis, m.hubMoves, m.learned, m.accepted, m.stalls, m.grants)
	}
	return m
}
