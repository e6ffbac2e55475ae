package northd

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/courier-sdn/courier/northd/engine"
)

// Metrics are northd's Prometheus metrics.
type Metrics struct {
	runs       *prometheus.CounterVec
	runSeconds *prometheus.HistogramVec
	phases     *prometheus.HistogramVec
	sbTxns     prometheus.Counter
	active     prometheus.Gauge
	sessions   prometheus.Counter
	nodeRuns   *prometheus.CounterVec
	// seen is each node's counters at the last observe: the engine
	// keeps totals, the counter adds what changed.
	seen map[string]engine.Stats
	// ports counts the valid and refused ports for rows and
	// refusedRows, port by port (portCounts)
	ports       portCounts
	rows        *prometheus.GaugeVec
	writeErrors prometheus.Counter
	refusedRows *prometheus.GaugeVec
}

// NewMetrics registers northd's metrics with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "courier_northd_runs_total",
			Help: "Engine runs, by kind: full (every node recomputed) or incremental."}, []string{"kind"}),
		runSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "courier_northd_run_seconds",
			Help:    "Time to compile and write one run, by kind.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"kind"}),
		phases: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "courier_northd_run_phase_seconds",
			Help: "Where a run's time goes: wait (from the first change's arrival to the run: the rest of its " +
				"burst, reading the bindings), compile, write_sb, write_nb.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10)}, []string{"phase"}),
		sbTxns: prometheus.NewCounter(prometheus.CounterOpts{Name: "courier_northd_sb_transactions_total",
			Help: "Southbound transactions committed."}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{Name: "courier_northd_active",
			Help: "1 while this instance holds the lock and writes."}),
		sessions: prometheus.NewCounter(prometheus.CounterOpts{Name: "courier_northd_session_restarts_total",
			Help: "Database sessions reopened after a failure."}),
		nodeRuns: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "courier_northd_engine_node_runs_total",
			Help: "Per engine node: recomputes and incremental computes."}, []string{"node", "kind"}),
		seen: map[string]engine.Stats{},
		rows: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "courier_northd_compiled",
			Help: "Compiled objects: datapaths, bindings, logical flows."}, []string{"kind"}),
		writeErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "courier_northd_write_errors_total",
			Help: "Runs whose writes failed (followed by a full recompute)."}),
		refusedRows: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "courier_northd_refused_rows",
			Help: "Northbound rows refused by validation, by table."}, []string{"table"}),
	}
	if reg != nil {
		reg.MustRegister(m.runs, m.runSeconds, m.phases, m.sbTxns, m.active, m.sessions, m.nodeRuns, m.rows, m.writeErrors, m.refusedRows)
	}
	return m
}

func (m *Metrics) observe(n *compiler, st RunStats) {
	kind := "incremental"
	if st.Full {
		kind = "full"
	}
	m.runs.WithLabelValues(kind).Inc()
	m.runSeconds.WithLabelValues(kind).Observe(st.Duration.Seconds())
	for phase, d := range map[string]float64{"wait": st.Waited.Seconds(), "compile": st.Compile.Seconds(),
		"write_sb": st.WriteSB.Seconds(), "write_nb": st.WriteNB.Seconds()} {
		m.phases.WithLabelValues(phase).Observe(d)
	}
	if st.Err != nil {
		m.writeErrors.Inc()
	}
	for name, s := range n.eng.Stats() {
		last := m.seen[name]
		if s.Recompute < last.Recompute || s.Compute < last.Compute {
			last = engine.Stats{} // a new engine (a new session) counts from zero
		}
		m.nodeRuns.WithLabelValues(name, "recompute").Add(float64(s.Recompute - last.Recompute))
		m.nodeRuns.WithLabelValues(name, "compute").Add(float64(s.Compute - last.Compute))
		m.seen[name] = s
	}
	flows := 0
	for _, fs := range n.flows.byDP {
		flows += len(fs)
	}
	m.rows.WithLabelValues("bindings").Set(float64(m.ports.valid))
	m.refusedRows.WithLabelValues("Port").Set(float64(m.ports.refused))
	m.rows.WithLabelValues("datapaths").Set(float64(len(n.topo.vpcByDP) + len(n.topo.vxByDP)))
	m.rows.WithLabelValues("logical_flows").Set(float64(flows))
	rv := 0
	for _, v := range n.topo.vxnets {
		if v.err != "" {
			rv++
		}
	}
	m.refusedRows.WithLabelValues("Vxnet").Set(float64(rv))
}

// portCounts counts the valid and refused ports from each run's changed
// ports. Counting every port after every run was 90% of northd's CPU
// under a steady churn of a 64,000-port VPC (perf, the hostscale
// bench): a pass over 64,000 ports for each change.
type portCounts struct {
	table          *portTable
	isValid        map[string]bool // by port UUID, as counted
	valid, refused int
}

// track counts what changed in pt since it was last consumed: every
// port of a table it has not seen (a full compile), else the ports the
// run changed, removed ones among them. Call it before the changes are consumed; a
// port counted twice (a run whose write failed) counts once.
func (c *portCounts) track(pt *portTable) {
	if c.table != pt {
		c.table, c.isValid, c.valid, c.refused = pt, make(map[string]bool, len(pt.ports)), 0, 0
		for u, p := range pt.ports {
			c.set(u, p)
		}
		return
	}
	for u := range pt.changed {
		c.set(u, pt.ports[u])
	}
}

// set counts port u as p (nil: gone).
func (c *portCounts) set(u string, p *cPort) {
	if was, ok := c.isValid[u]; ok {
		if was {
			c.valid--
		} else {
			c.refused--
		}
		delete(c.isValid, u)
	}
	if p == nil {
		return
	}
	v := p.valid()
	c.isValid[u] = v
	if v {
		c.valid++
	} else {
		c.refused++
	}
}
