package hostd

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/courier-sdn/courier/dataplane"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// Metrics are hostd's Prometheus metrics. The data plane's counters are
// read from the kernel when scraped.
type Metrics struct {
	reconcileSeconds prometheus.Histogram
	applyErrors      prometheus.Counter
	lflowErrors      prometheus.Gauge
	written          prometheus.Counter
	sessionRestarts  prometheus.Counter
	learned          *prometheus.CounterVec
	learnedRefused   *prometheus.CounterVec
	activations      *prometheus.CounterVec
	learnedRetries   prometheus.Counter
	probes           prometheus.Counter
	hubsDown         prometheus.Gauge
	monitoredRows    *prometheus.GaugeVec
	vpcSessions      prometheus.Gauge
	refused          *prometheus.CounterVec
	certReloads      prometheus.Counter
	snatDemand       prometheus.Counter
	snatHandoffs     *prometheus.CounterVec
	linkResyncs      prometheus.Counter
	forwardingResets prometheus.Counter
	underlayChanges  prometheus.Counter
	routeChanges     prometheus.Counter
	vmMTU            prometheus.Gauge

	mu sync.Mutex
	dp *dataplane.Datapath
}

// NewMetrics registers hostd's metrics with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		reconcileSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "courier_hostd_reconcile_seconds",
			Help: "Time to compute and apply the desired data plane.", Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18)}),
		applyErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "courier_hostd_apply_errors_total",
			Help: "Reconciles whose kernel changes failed (also reported in Chassis_Private.status)."}),
		lflowErrors: prometheus.NewGauge(prometheus.GaugeOpts{Name: "courier_hostd_lflows_not_applied",
			Help: "Logical flows this data plane cannot implement."}),
		written: prometheus.NewCounter(prometheus.CounterOpts{Name: "courier_hostd_map_writes_total",
			Help: "BPF map entries written or removed by reconciles."}),
		sessionRestarts: prometheus.NewCounter(prometheus.CounterOpts{Name: "courier_hostd_session_restarts_total",
			Help: "Southbound sessions reopened after a failure."}),
		learned: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "courier_hostd_learned_bindings_total",
			Help: "Addresses this host's ports announced, by kind."}, []string{"kind"}),
		learnedRefused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "courier_hostd_learned_refused_total",
			Help: "Addresses this host's ports announced that it refused to record, by reason."}, []string{"reason"}),
		activations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "courier_hostd_migration_activations_total",
			Help: "Guests that announced themselves out of a port migrating here, by outcome: activated (bound here), raced (its holder changed meanwhile), failed (the write failed), refused (not migrating here)."}, []string{"outcome"}),
		learnedRetries: prometheus.NewCounter(prometheus.CounterOpts{Name: "courier_hostd_learned_write_retries_total",
			Help: "Learned binding writes retried because another writer changed the address's holders meanwhile."}),
		probes: prometheus.NewCounter(prometheus.CounterOpts{Name: "courier_hostd_hub_probes_total",
			Help: "Liveness probes sent to hubs and gateways."}),
		hubsDown: prometheus.NewGauge(prometheus.GaugeOpts{Name: "courier_hostd_hubs_down",
			Help: "Hubs and gateways this host probes that have not answered lately: its data plane passes over each to another of its VPC's hubs or network's gateways that answers, if any (courier-dpctl hubs says which)."}),
		monitoredRows: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "courier_hostd_monitored_rows",
			Help: "Southbound rows this host receives, by table."}, []string{"table"}),
		vpcSessions: prometheus.NewGauge(prometheus.GaugeOpts{Name: "courier_hostd_vpc_sessions",
			Help: "VPCs this host monitors."}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "courier_hostd_sb_writes_refused_total",
			Help: "Southbound writes the database's access control refused, by table: the certificate is not this chassis's, or the row is not this chassis's to write."}, []string{"table"}),
		certReloads: prometheus.NewCounter(prometheus.CounterOpts{Name: "courier_hostd_certificate_reloads_total",
			Help: "Times a certificate replaced on disk was taken into use (each reconnects the southbound sessions)."}),
		snatDemand: prometheus.NewCounter(prometheus.CounterOpts{Name: "courier_hostd_snat_demand_changes_total",
			Help: "Times this host asked southd for another number of SNAT port blocks for one of its ports (Port_Binding.snat_demand)."}),
		snatHandoffs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "courier_hostd_snat_handoffs_total",
			Help: "SNAT_Handoff rows (a live-migrated port's SNAT connections) by outcome: sent (written by the port's old host), installed, failed (some connections could not be written into its maps) and refused (by its new host), expired (deleted unused after two minutes); unsaved (a departed port's connections not saved for a restart of hostd)."}, []string{"outcome"}),
		linkResyncs: prometheus.NewCounter(prometheus.CounterOpts{Name: "courier_hostd_interface_watch_resyncs_total",
			Help: "Times the kernel ended the interface watch (its buffer overflowed) and every interface was read again."}),
		forwardingResets: prometheus.NewCounter(prometheus.CounterOpts{Name: "courier_hostd_vxlan_forwarding_resets_total",
			Help: "Times the VXLAN device's IPv4 forwarding, which the programs' encapsulation needs, was found off and turned on again (a write of net.ipv4.conf.all.forwarding resets it)."}),
		underlayChanges: prometheus.NewCounter(prometheus.CounterOpts{Name: "courier_hostd_underlay_changes_total",
			Help: "Times the interface holding the VTEP address, which the programs encapsulate out of, was found changed (replaced, or the address moved) and the programs told so."}),
		routeChanges: prometheus.NewCounter(prometheus.CounterOpts{Name: "courier_hostd_route_changes_total",
			Help: "Times the programs were told the host's routing changed (a burst of route, rule, next-hop or interface messages), so that they look up again the route to each VTEP they keep."}),
		vmMTU: prometheus.NewGauge(prometheus.GaugeOpts{Name: "courier_hostd_vm_mtu",
			Help: "The MTU VMs are offered by DHCP and their ports allow: the underlay interface's MTU less VXLAN's 50 bytes (576 to 9000), followed each second (0: no underlay found yet)."}),
	}
	if reg != nil {
		reg.MustRegister(m.reconcileSeconds, m.applyErrors, m.lflowErrors, m.written, m.sessionRestarts,
			m.learned, m.learnedRefused, m.activations, m.learnedRetries, m.probes, m.hubsDown, m.monitoredRows, m.vpcSessions,
			m.refused, m.certReloads, m.linkResyncs, m.forwardingResets, m.underlayChanges, m.routeChanges, m.vmMTU, m.snatDemand, m.snatHandoffs, (*dpCollector)(m))
	}
	return m
}

func (m *Metrics) attach(dp *dataplane.Datapath) {
	m.mu.Lock()
	m.dp = dp
	m.mu.Unlock()
}

func (m *Metrics) reconcile(took time.Duration, as dataplane.ApplyStats, err error, lflowErrs int) {
	m.reconcileSeconds.Observe(took.Seconds())
	m.written.Add(float64(as.Written + as.Removed))
	if err != nil {
		m.applyErrors.Inc()
	}
	m.lflowErrors.Set(float64(lflowErrs))
}

func (m *Metrics) monitored(base *ops.Session, vpcs map[int]*vpcSession) {
	counts := map[string]int{}
	add := func(s *ops.Session) {
		counts["Port_Binding"] += ops.Count[sbdb.PortBinding](s)
		counts["Datapath"] += ops.Count[sbdb.Datapath](s)
		counts["Logical_Flow"] += ops.Count[sbdb.LogicalFlow](s)
		counts["Learned_Binding"] += ops.Count[sbdb.LearnedBinding](s)
		counts["Chassis"] += ops.Count[sbdb.Chassis](s)
	}
	add(base)
	for _, vs := range vpcs {
		add(vs.s)
	}
	for t, n := range counts {
		m.monitoredRows.WithLabelValues(t).Set(float64(n))
	}
	m.vpcSessions.Set(float64(len(vpcs)))
}

// dpCollector exports the data plane's kernel counters.
type dpCollector Metrics

var (
	descPackets = prometheus.NewDesc("courier_dataplane_packets_total", "Data plane counters, by event.", []string{"event"}, nil)
	descDrops   = prometheus.NewDesc("courier_dataplane_drops_total", "Packets dropped, by reason.", []string{"reason"}, nil)
	descCache   = prometheus.NewDesc("courier_dataplane_cache_entries", "Learned direct paths held.", nil, nil)
	descLatency = prometheus.NewDesc("courier_dataplane_learn_latency_seconds", "First packet to an unknown destination to the learned entry installed, measured in the kernel.", nil, nil)
)

func (c *dpCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descPackets
	ch <- descDrops
	ch <- descCache
	ch <- descLatency
}

func (c *dpCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	dp := c.dp
	c.mu.Unlock()
	if dp == nil {
		return
	}
	if cs, err := dp.Counters(); err == nil {
		for k, v := range cs {
			ch <- prometheus.MustNewConstMetric(descPackets, prometheus.CounterValue, float64(v), k)
		}
	}
	if ds, err := dp.Drops(); err == nil {
		for k, v := range ds {
			ch <- prometheus.MustNewConstMetric(descDrops, prometheus.CounterValue, float64(v), k)
		}
	}
	if es, err := dp.Cache(); err == nil {
		ch <- prometheus.MustNewConstMetric(descCache, prometheus.GaugeValue, float64(len(es)))
	}
	if hist, err := dp.LearnLatency(); err == nil {
		buckets := map[float64]uint64{}
		var total uint64
		for i, n := range hist {
			total += n
			buckets[float64(uint64(2)<<i)/1e6] = total // bucket i ends at 2^(i+1) µs
		}
		ch <- prometheus.MustNewConstHistogram(descLatency, total, 0, buckets)
	}
}
