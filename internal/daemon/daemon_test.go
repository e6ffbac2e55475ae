package daemon

import "testing"

// Metrics listeners bind to loopback unless told otherwise: ":9650"
// used to listen on every address of the machine.
func TestMetricsAddrDefaultsToLoopback(t *testing.T) {
	for in, want := range map[string]string{
		":9650":          "127.0.0.1:9650",
		"9650":           "127.0.0.1:9650",
		"127.0.0.1:9650": "127.0.0.1:9650",
		"0.0.0.0:9650":   "0.0.0.0:9650",
		"[::]:9650":      "[::]:9650",
		"10.0.0.1:9650":  "10.0.0.1:9650",
	} {
		if got := MetricsAddr(in); got != want {
			t.Errorf("MetricsAddr(%q) = %q, want %q", in, got, want)
		}
	}
}
