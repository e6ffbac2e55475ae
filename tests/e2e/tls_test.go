package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/courier-sdn/courier/internal/pki"
	"github.com/courier-sdn/courier/internal/testenv"
)

// hostdSays waits until a host's hostd log says all of parts on a line
// that came after the first skip bytes.
func (e *env) hostdSays(host string, skip int, timeout time.Duration, parts ...string) {
	e.t.Helper()
	testenv.Eventually(e.t, timeout, host+"'s hostd says "+strings.Join(parts, ", "), func() error {
		b, _ := os.ReadFile(filepath.Join(e.s.RunDir, "hostd-"+host+".log"))
		if len(b) < skip {
			return os.ErrNotExist
		}
	lines:
		for _, l := range strings.Split(string(b[skip:]), "\n") {
			for _, p := range parts {
				if !strings.Contains(l, p) {
					continue lines
				}
			}
			return nil
		}
		return os.ErrNotExist
	})
}

func (e *env) hostdLogSize(host string) int {
	st, err := os.Stat(filepath.Join(e.s.RunDir, "hostd-"+host+".log"))
	if err != nil {
		e.t.Fatal(err)
	}
	return int(st.Size())
}

// A chassis's certificate replaced on disk (courier-ctl pki sign
// --force) is presented at once: hostd reconnects with it while its
// data plane forwards on, so a ping through the host loses nothing. A
// certificate from another CA put in its place is refused by the
// southbound, hostd says why, and the data plane still forwards.
func TestCertificateRotationLosesNoPing(t *testing.T) {
	e := startTLS(t, 2, 1)
	e.nb("vpc-add", "v", "--", "vxnet-add", "v", "x", "10.1.0.0/24",
		"--", "port-add", "x", "a", "02:00:00:05:00:0a", "10.1.0.10", "--chassis", "hv1",
		"--", "port-add", "x", "b", "02:00:00:05:00:0b", "10.1.0.11")
	e.vm("hv1", "a")
	e.vm("hv2", "b") // not requested: southd grants it on hv2's claim
	e.nb("sync")
	e.mustPing("a", "10.1.0.11")

	p := e.startPing("a", "10.1.0.11", 600, "0.01") // 6 s
	time.Sleep(500 * time.Millisecond)
	skip := e.hostdLogSize("hv1")
	if err := pki.Sign(e.s.PKIDir(), "hv1", pki.SignOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	c, err := pki.Load(pki.For(e.s.PKIDir(), "hv1"))
	if err != nil {
		t.Fatal(err)
	}
	e.hostdSays("hv1", skip, 10*time.Second, "certificate replaced on disk")
	e.hostdSays("hv1", skip, 10*time.Second, "presenting certificate", "serial="+c.Serial())
	// The southbound takes the new certificate's writes: hv1 acknowledges
	// a change.
	e.nb("port-add", "x", "c", "02:00:00:05:00:0c", "10.1.0.12", "--chassis", "hv1")
	sent, recv := p.wait()
	if sent == 0 || recv != sent {
		t.Errorf("during the rotation %d of %d pings were lost", sent-recv, sent)
	}

	// A certificate another CA signed, in hv2's files.
	other := testenv.RunDir(t)
	if _, err := pki.Init(other); err != nil {
		t.Fatal(err)
	}
	if err := pki.Sign(other, "hv2", pki.SignOptions{}); err != nil {
		t.Fatal(err)
	}
	skip = e.hostdLogSize("hv2")
	for _, f := range []struct{ from, to string }{
		{pki.PrivateKey(other, "hv2"), pki.PrivateKey(e.s.PKIDir(), "hv2")},
		{pki.Certificate(other, "hv2"), pki.Certificate(e.s.PKIDir(), "hv2")},
	} {
		b, _ := os.ReadFile(f.from)
		if err := os.WriteFile(f.to, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	e.hostdSays("hv2", skip, 10*time.Second, "does not accept this certificate")
	e.mustPing("a", "10.1.0.11")
}
