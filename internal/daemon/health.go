package daemon

import (
	"context"
	"net/http"
	"runtime"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/courier-sdn/courier/internal/version"
)

// Health is what /healthz and /readyz report: a daemon that answers is
// healthy (its process runs its loop); it is ready while its database
// session is established (Reconnect says so), so that a load balancer
// or an orchestrator's probe does not count on a daemon that is
// waiting to reconnect. A standby northd or southd is ready: it is
// connected and takes over when the active one goes.
type Health struct{ ready atomic.Bool }

// SetReady records whether the daemon is in business.
func (h *Health) SetReady(ok bool) { h.ready.Store(ok) }

// Ready says whether it is.
func (h *Health) Ready() bool { return h.ready.Load() }

type healthKey struct{}

// WithHealth returns ctx carrying h, for Reconnect to keep up to date.
func WithHealth(ctx context.Context, h *Health) context.Context {
	return context.WithValue(ctx, healthKey{}, h)
}

func healthFrom(ctx context.Context) *Health {
	h, _ := ctx.Value(healthKey{}).(*Health)
	return h
}

func (h *Health) handle(mux *http.ServeMux) {
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !h.Ready() {
			http.Error(w, "not connected to its databases", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	})
}

// RegisterBuildInfo adds courier_build_info{component,version,goversion}
// = 1, so that dashboards can tell which build each daemon runs.
func RegisterBuildInfo(reg prometheus.Registerer, component string) {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "courier_build_info",
		Help: "Always 1; the labels say which build of which daemon this is."}, []string{"component", "version", "goversion"})
	g.WithLabelValues(component, version.String(), runtime.Version()).Set(1)
	reg.MustRegister(g)
}
