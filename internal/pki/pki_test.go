package pki

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// server is a TLS server that, as ovsdb-server does, wants a client
// certificate signed by its CA; each accepted connection reports the
// client's common name.
func server(t *testing.T, dir, name string) (addr string, cns chan string) {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(Certificate(dir, name), PrivateKey(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := os.ReadFile(CACert(dir))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	cns = make(chan string, 10)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			tc := c.(*tls.Conn)
			if tc.Handshake() == nil {
				cns <- tc.ConnectionState().PeerCertificates[0].Subject.CommonName
			}
			c.Close()
		}
	}()
	return l.Addr().String(), cns
}

func dial(c *Credentials, addr string) error {
	conn, err := tls.Dial("tcp", addr, c.TLSConfig())
	if err != nil {
		return err
	}
	defer conn.Close()
	// TLS 1.3 reports a refused client certificate on the first read.
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err = conn.Read(make([]byte, 1))
	if err != nil && !strings.Contains(err.Error(), "EOF") {
		return err
	}
	return nil
}

func mustSign(t *testing.T, dir string, names ...string) {
	t.Helper()
	if _, err := Init(dir); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if err := Sign(dir, n, SignOptions{Force: true, Server: n == "ovsdb-server"}); err != nil {
			t.Fatal(err)
		}
	}
}

// A client's certificate cannot serve: a hypervisor's certificate,
// stolen, must not let its thief pose as the database to the others.
func TestClientCertificateCannotServe(t *testing.T) {
	dir := t.TempDir()
	mustSign(t, dir, "hv1", "hv2")
	addr, _ := server(t, dir, "hv2")
	c, _ := Load(For(dir, "hv1"))
	if err := dial(c, addr); err == nil || !strings.Contains(err.Error(), "not trusted") {
		t.Fatalf("a server presenting a chassis's certificate: %v", err)
	}
}

func TestSignedIdentityIsAcceptedWithItsName(t *testing.T) {
	dir := t.TempDir()
	mustSign(t, dir, "ovsdb-server", "hv1")
	if st, err := os.Stat(PrivateKey(dir, "hv1")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("private key %v mode %v", err, st)
	}
	if created, err := Init(dir); err != nil || created {
		t.Fatalf("a second init: created %v, %v; want the CA kept", created, err)
	}
	if err := Sign(dir, "hv1", SignOptions{}); err == nil {
		t.Fatal("signing an existing name without --force replaced it")
	}
	addr, cns := server(t, dir, "ovsdb-server")
	c, err := Load(For(dir, "hv1"))
	if err != nil {
		t.Fatal(err)
	}
	if c.CommonName() != "hv1" {
		t.Fatalf("CN %q", c.CommonName())
	}
	if err := dial(c, addr); err != nil {
		t.Fatal(err)
	}
	if cn := <-cns; cn != "hv1" {
		t.Fatalf("server saw CN %q", cn)
	}
}

func TestAnotherCAIsRefusedBothWays(t *testing.T) {
	ours, theirs := t.TempDir(), t.TempDir()
	mustSign(t, ours, "ovsdb-server", "hv1")
	mustSign(t, theirs, "ovsdb-server", "hv1")
	addr, _ := server(t, ours, "ovsdb-server")
	// A client whose certificate another CA signed, trusting ours.
	stranger, err := Load(Files{PrivateKey(theirs, "hv1"), Certificate(theirs, "hv1"), CACert(ours)})
	if err != nil {
		t.Fatal(err)
	}
	if err := dial(stranger, addr); err == nil {
		t.Fatal("the server accepted a client certificate from another CA")
	}
	// A client that trusts only the other CA refuses our server.
	wary, _ := Load(Files{PrivateKey(ours, "hv1"), Certificate(ours, "hv1"), CACert(theirs)})
	err = dial(wary, addr)
	if err == nil || !strings.Contains(err.Error(), "not trusted by --ca-cert") {
		t.Fatalf("a server signed by another CA: %v", err)
	}
}

func TestPartialFlagsAreRefused(t *testing.T) {
	_, err := Load(Files{PrivateKey: "k"})
	if err == nil || !strings.Contains(err.Error(), "--certificate, --ca-cert") {
		t.Fatalf("got %v", err)
	}
	if err := Require(nil, []string{"unix:/x"}, []string{"ssl:127.0.0.1:6642"}); err == nil || !strings.Contains(err.Error(), "ssl:127.0.0.1:6642") {
		t.Fatalf("an ssl: remote without credentials: %v", err)
	}
}

// A certificate replaced on disk is presented by the next connection,
// and Watch says so; a half-written rotation keeps the old pair.
func TestRotatedCertificateIsPresented(t *testing.T) {
	dir := t.TempDir()
	mustSign(t, dir, "ovsdb-server", "hv1")
	addr, _ := server(t, dir, "ovsdb-server")
	c, _ := Load(For(dir, "hv1"))
	old := c.Serial()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changed := c.Watch(ctx, 10*time.Millisecond)

	// Only the key replaced: mismatched, so the old pair stays.
	keep, _ := os.ReadFile(Certificate(dir, "hv1"))
	if err := Sign(dir, "hv1", SignOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	newCert, _ := os.ReadFile(Certificate(dir, "hv1"))
	os.WriteFile(Certificate(dir, "hv1"), keep, 0o644)
	if err := dial(c, addr); err != nil {
		t.Fatalf("during a half-done rotation: %v", err)
	}
	if c.Serial() != old {
		t.Fatal("a mismatched pair was taken")
	}
	os.WriteFile(filepath.Join(dir, "hv1-cert.pem"), newCert, 0o644)
	select {
	case <-changed:
	case <-time.After(2 * time.Second):
		t.Fatal("Watch did not report the new certificate")
	}
	if c.Serial() == old {
		t.Fatal("the new certificate is not in use")
	}
	if err := dial(c, addr); err != nil {
		t.Fatal(err)
	}
}
