package pki

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// Files name one party's TLS identity: its key, its certificate, and the
// CA certificate its peers' certificates must be signed by.
type Files struct {
	PrivateKey, Certificate, CACert string
}

// Credentials are a TLS identity read from Files, read again when the
// files change: every new connection presents the key and certificate on
// disk at the time it is made (a rotated certificate needs no restart),
// and checks the server against the CA file on disk. A half-done
// rotation (a new key beside the old certificate) is not taken: the
// previous pair stays in use until the two files match again.
type Credentials struct {
	files Files

	mu    sync.Mutex
	stamp string // the files' sizes and times when last read
	cert  *tls.Certificate
	leaf  *x509.Certificate
	roots *x509.CertPool
	err   error // why the files on disk were not taken, if they were not
}

// Load reads the files; all three must be given and valid.
func Load(f Files) (*Credentials, error) {
	var missing []string
	for _, x := range []struct{ flag, v string }{{"--private-key", f.PrivateKey}, {"--certificate", f.Certificate}, {"--ca-cert", f.CACert}} {
		if x.v == "" {
			missing = append(missing, x.flag)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("TLS needs --private-key, --certificate and --ca-cert together; missing %s", strings.Join(missing, ", "))
	}
	c := &Credentials{files: f}
	if err := c.read(); err != nil {
		return nil, err
	}
	return c, nil
}

// Files are the files the credentials come from.
func (c *Credentials) Files() Files { return c.files }

func (f Files) stamp() string {
	var b strings.Builder
	for _, p := range []string{f.PrivateKey, f.Certificate, f.CACert} {
		if st, err := os.Stat(p); err == nil {
			fmt.Fprintf(&b, "%d.%d/", st.Size(), st.ModTime().UnixNano())
		} else {
			b.WriteString("-/")
		}
	}
	return b.String()
}

// read loads the files if they changed since the last read. It returns
// why the files on disk are not in use, if they are not.
func (c *Credentials) read() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	stamp := c.files.stamp()
	if stamp == c.stamp {
		return c.err
	}
	c.stamp = stamp
	cert, err := tls.LoadX509KeyPair(c.files.Certificate, c.files.PrivateKey)
	if err != nil {
		c.err = fmt.Errorf("load %s and %s: %w", c.files.Certificate, c.files.PrivateKey, err)
		return c.err
	}
	ca, err := os.ReadFile(c.files.CACert)
	if err != nil {
		c.err = fmt.Errorf("load CA certificate: %w", err)
		return c.err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(ca) {
		c.err = fmt.Errorf("%s holds no PEM certificate", c.files.CACert)
		return c.err
	}
	c.cert, c.leaf, c.roots, c.err = &cert, cert.Leaf, roots, nil
	return nil
}

// current returns the pair to present, reading the files again if they
// changed. Before the first successful read there is none.
func (c *Credentials) current() (*tls.Certificate, *x509.CertPool, error) {
	err := c.read()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cert == nil {
		return nil, nil, err
	}
	return c.cert, c.roots, nil
}

// CommonName is the name in the certificate in use: the client's
// identity for ovsdb-server's role-based access control.
func (c *Credentials) CommonName() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.leaf.Subject.CommonName
}

// Serial identifies the certificate in use (hexadecimal), for logs.
func (c *Credentials) Serial() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.leaf.SerialNumber.Text(16)
}

// NotAfter is when the certificate in use expires.
func (c *Credentials) NotAfter() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.leaf.NotAfter
}

// TLSConfig is the client configuration for ssl: remotes, or nil for nil
// credentials. The server's certificate must be signed by the CA and be
// a server's (extended key usage serverAuth, or none as ovs-pki signs);
// its host name is not checked, as Open vSwitch does not: a database is
// reached by whatever address the operator gave, and the CA is the trust.
func (c *Credentials) TLSConfig() *tls.Config {
	if c == nil {
		return nil
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		// Verified in VerifyConnection, against the CA file as it is now.
		InsecureSkipVerify: true,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			cert, _, err := c.current()
			return cert, err
		},
		VerifyConnection: c.verifyServer,
	}
}

func (c *Credentials) verifyServer(cs tls.ConnectionState) error {
	_, roots, err := c.current()
	if err != nil {
		return err
	}
	if len(cs.PeerCertificates) == 0 {
		return errors.New("the server presented no certificate")
	}
	peer := cs.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, ic := range cs.PeerCertificates[1:] {
		inter.AddCert(ic)
	}
	_, err = peer.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	if err != nil {
		return fmt.Errorf("the server's certificate (CN %q) is not trusted by --ca-cert %s: %w", peer.Subject.CommonName, c.files.CACert, err)
	}
	return nil
}

// Watch checks the files every interval until ctx ends, and sends on the
// returned channel when a changed key and certificate have been taken
// into use: the owner reconnects so that the new certificate is
// presented at once, not at the next reconnection.
// Nil credentials never change.
func (c *Credentials) Watch(ctx context.Context, every time.Duration) <-chan struct{} {
	if c == nil {
		return nil
	}
	ch := make(chan struct{}, 1)
	serial := c.Serial()
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if c.read() != nil {
				continue
			}
			if s := c.Serial(); s != serial {
				serial = s
				select {
				case ch <- struct{}{}:
				default:
				}
			}
		}
	}()
	return ch
}
