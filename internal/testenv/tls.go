package testenv

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/courier-sdn/courier/internal/central"
	"github.com/courier-sdn/courier/internal/dbconf"
	"github.com/courier-sdn/courier/internal/pki"
	"github.com/courier-sdn/courier/schema"
)

// TLSDBs are both databases served over mutual TLS with role-based
// access control, as "courier-ctl start --tls" serves them, on free
// loopback ports.
type TLSDBs struct {
	*DBs
	PKI string // the PKI directory
	// ssl: remotes: the northbound's; the southbound's hypervisor
	// listener (role courier-chassis) and central one (courier-central).
	NBTLS, SBChassis, SBCentral string
}

// StartTLSDBs starts both databases with TLS, plus the given central
// daemons (which connect over TLS), and stops everything when the test
// ends.
func StartTLSDBs(t testing.TB, daemons ...central.Daemon) *TLSDBs {
	t.Helper()
	Integration(t)
	dir := RunDir(t)
	p := func() string { return fmt.Sprintf("pssl:%d:127.0.0.1", FreePort(t)) }
	nb, chassis, centralSB := p(), p(), p()
	c := &central.Config{RunDir: dir, Daemons: daemons, BinDir: BinDir(t), PKIDir: dir + "/pki",
		Connections: map[string][]dbconf.Listener{"nb": {{Target: nb}},
			"sb": {{Target: chassis, Role: schema.RoleChassis}, {Target: centralSB, Role: schema.RoleCentral}}}}
	t.Cleanup(func() {
		if t.Failed() {
			DumpLogs(t, c.RunDir)
		}
		if err := c.Stop(); err != nil {
			t.Errorf("stop services: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatalf("start databases: %v", err)
	}
	return &TLSDBs{DBs: &DBs{Config: c, NB: c.Remote(central.Databases[0]), SB: c.Remote(central.Databases[1])},
		PKI: c.PKIDir, NBTLS: dbconf.Active(nb), SBChassis: dbconf.Active(chassis), SBCentral: dbconf.Active(centralSB)}
}

// Creds returns the credentials of name, signing a certificate for it
// first if there is none.
func (d *TLSDBs) Creds(t testing.TB, name string) *pki.Credentials {
	t.Helper()
	if !pki.Signed(d.PKI, name) {
		if err := pki.Sign(d.PKI, name, pki.SignOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	c, err := pki.Load(pki.For(d.PKI, name))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TLSArgs are the flags that make a binary present name's certificate.
func (d *TLSDBs) TLSArgs(t testing.TB, name string) []string {
	f := d.Creds(t, name).Files()
	return []string{"--private-key", f.PrivateKey, "--certificate", f.Certificate, "--ca-cert", f.CACert}
}
