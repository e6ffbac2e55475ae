package ops

import (
	"errors"
	"fmt"
	"testing"
)

// TestTLSRefusal: each way a client sees a server end the TLS session
// after the handshake is explained as a refused certificate, on ssl:
// remotes only.
func TestTLSRefusal(t *testing.T) {
	ssl, unix := []string{"ssl:127.0.0.1:6642"}, []string{"unix:/run/sb.sock"}
	for _, msg := range []string{"write: broken pipe", "EOF", "read: connection reset by peer", "remote error: tls: bad certificate",
		"failed to connect to ssl:127.0.0.1:6642: not connected"} {
		err := fmt.Errorf("connect: %s", msg)
		if got := tlsRefusal(err, ssl); !errors.Is(got, ErrTLSRefused) {
			t.Errorf("%q over ssl: %v, want it explained as a refused certificate", msg, got)
		}
		if got := tlsRefusal(err, unix); errors.Is(got, ErrTLSRefused) {
			t.Errorf("%q over unix: %v, want it as it was", msg, got)
		}
	}
	if got := tlsRefusal(errors.New("connection refused"), ssl); errors.Is(got, ErrTLSRefused) {
		t.Errorf("a refused connection (no server) was explained as a refused certificate")
	}
}
