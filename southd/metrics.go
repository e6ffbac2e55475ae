package southd

import "github.com/prometheus/client_golang/prometheus"

// Metrics are southd's Prometheus metrics.
type Metrics struct {
	active   prometheus.Gauge
	chassis  *prometheus.GaugeVec
	hubMoves prometheus.Counter
	learned  *prometheus.CounterVec
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
			Help: "Learned bindings removed, by why: rejected, superseded, aged."}, []string{"why"}),
	}
	if reg != nil {
		reg.MustRegister(m.active, m.chassis, m.hubMoves, m.learned)
	}
	return m
}
