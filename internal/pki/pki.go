// Package pki is Courier's small certificate authority and the TLS
// identity every daemon and tool presents to ovsdb-server.
//
// A PKI directory is laid out as ovs-pki lays out its files, so that an
// operator who knows Open vSwitch finds them: cacert.pem (the CA's
// certificate, given to every party as --ca-cert), private/cakey.pem (the
// CA's key, which never leaves the directory) and, for each signed name,
// NAME-privkey.pem and NAME-cert.pem. The certificate's common name is
// the name: ovsdb-server takes a client's identity for role-based access
// control from it, so a chassis's certificate must be signed for the
// chassis's name.
//
// Keys are ECDSA P-256. A certificate serves as a client's only, unless
// signed for a server (an ovsdb-server, which is also a client of its
// cluster's other members): clients check that the server's certificate
// is a server's, so a hypervisor's stolen certificate cannot pose as the
// database. Every file is written to a temporary name and renamed, so a
// reader never sees half of one.
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"time"
)

// DefaultDir is where "courier-ctl pki" keeps its files unless --dir or
// $COURIER_PKI_DIR says otherwise (ovs-pki uses /var/lib/openvswitch/pki).
const DefaultDir = "/var/lib/courier/pki"

// Paths of a PKI directory's files.
func CACert(dir string) string           { return filepath.Join(dir, "cacert.pem") }
func caKey(dir string) string            { return filepath.Join(dir, "private", "cakey.pem") }
func PrivateKey(dir, name string) string { return filepath.Join(dir, name+"-privkey.pem") }
func Certificate(dir, name string) string {
	return filepath.Join(dir, name+"-cert.pem")
}

// For is the identity name was signed for in dir.
func For(dir, name string) Files {
	return Files{PrivateKey: PrivateKey(dir, name), Certificate: Certificate(dir, name), CACert: CACert(dir)}
}

var nameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$`) })

// CheckName refuses a name that cannot be a chassis name (the schema
// allows 1 to 64 characters) or a file name.
func CheckName(name string) error {
	if !nameRE().MatchString(name) {
		return fmt.Errorf("name %q: use 1 to 64 letters, digits, '_', '.', ':' or '-', starting with a letter or digit", name)
	}
	return nil
}

// Init creates the CA in dir unless it exists. It reports whether it
// created one.
func Init(dir string) (bool, error) {
	if _, err := os.Stat(CACert(dir)); err == nil {
		if _, err := os.Stat(caKey(dir)); err != nil {
			return false, fmt.Errorf("%s exists but its key %s does not: %w", CACert(dir), caKey(dir), err)
		}
		return false, nil
	}
	if err := os.MkdirAll(filepath.Join(dir, "private"), 0o700); err != nil {
		return false, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return false, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "Courier CA", Organization: []string{"Courier"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := create(tmpl, tmpl, key, key)
	if err != nil {
		return false, err
	}
	if err := writeKey(caKey(dir), key); err != nil {
		return false, err
	}
	return true, writePEM(CACert(dir), "CERTIFICATE", der, 0o644)
}

// Signed reports whether dir holds a certificate for name.
func Signed(dir, name string) bool {
	_, err := os.Stat(Certificate(dir, name))
	return err == nil
}

// SignOptions say how Sign signs.
type SignOptions struct {
	// Days the certificate is valid (365 when zero).
	Days int
	// Force replaces an existing key and certificate: how a certificate
	// is rotated. Without it an existing pair is an error.
	Force bool
	// Server signs a certificate that may also serve (ovsdb-server's).
	Server bool
}

// Sign creates a key for name and a certificate for it signed by dir's
// CA, as "ovs-pki req+sign" does.
func Sign(dir, name string, o SignOptions) error {
	if err := CheckName(name); err != nil {
		return err
	}
	if Signed(dir, name) && !o.Force {
		return fmt.Errorf("%s exists (sign with --force to replace it)", Certificate(dir, name))
	}
	caCert, caKey, err := loadCA(dir)
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	days := o.Days
	if days <= 0 {
		days = 365
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: name, Organization: []string{"Courier"}},
		DNSNames:    []string{name},
		NotBefore:   now.Add(-time.Hour),
		NotAfter:    now.AddDate(0, 0, days),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if o.Server {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	der, err := create(tmpl, caCert, key, caKey)
	if err != nil {
		return err
	}
	// The key first: a reader that sees the new certificate with the old
	// key finds them mismatched and keeps its old pair until both are new.
	if err := writeKey(PrivateKey(dir, name), key); err != nil {
		return err
	}
	return writePEM(Certificate(dir, name), "CERTIFICATE", der, 0o644)
}

func create(tmpl, parent *x509.Certificate, key *ecdsa.PrivateKey, signer *ecdsa.PrivateKey) ([]byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	return x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
}

func loadCA(dir string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	certPEM, err := os.ReadFile(CACert(dir))
	if err != nil {
		return nil, nil, fmt.Errorf("no CA in %s (run courier-ctl pki init first): %w", dir, err)
	}
	cert, err := parseCert(certPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", CACert(dir), err)
	}
	keyPEM, err := os.ReadFile(caKey(dir))
	if err != nil {
		return nil, nil, fmt.Errorf("the CA's key: %w", err)
	}
	b, _ := pem.Decode(keyPEM)
	if b == nil {
		return nil, nil, fmt.Errorf("%s: no PEM block", caKey(dir))
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", caKey(dir), err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, nil, fmt.Errorf("%s: not an ECDSA key", caKey(dir))
	}
	return cert, key, nil
}

func parseCert(b []byte) (*x509.Certificate, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(blk.Bytes)
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	return writePEM(path, "PRIVATE KEY", der, 0o600)
}

// writePEM writes a file whole: to a temporary name, then renamed.
func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if err := pem.Encode(f, &pem.Block{Type: typ, Bytes: der}); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
