package pki

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
)

// Environment variables that stand for the TLS flags.
const (
	EnvPrivateKey  = "COURIER_PRIVATE_KEY"
	EnvCertificate = "COURIER_CERTIFICATE"
	EnvCACert      = "COURIER_CA_CERT"
)

// Flags are the TLS flags every daemon and tool takes, named as Open
// vSwitch's. Each call returns new flags (urfave/cli flags keep state).
func Flags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "private-key", Aliases: []string{"p"}, EnvVars: []string{EnvPrivateKey}, Category: "TLS",
			Usage: "this party's private key `FILE` for ssl: remotes"},
		&cli.StringFlag{Name: "certificate", Aliases: []string{"c"}, EnvVars: []string{EnvCertificate}, Category: "TLS",
			Usage: "this party's certificate `FILE`; its common name is who the database thinks it is"},
		&cli.StringFlag{Name: "ca-cert", Aliases: []string{"C"}, EnvVars: []string{EnvCACert}, Category: "TLS",
			Usage: "the CA certificate `FILE` the database's certificate must be signed by"},
	}
}

// FromFlags loads the credentials the flags name: nil when none is
// given, an error when only some are, or when an ssl: remote among
// remotes has none to present.
func FromFlags(cx *cli.Context, remotes ...[]string) (*Credentials, error) {
	f := Files{PrivateKey: cx.String("private-key"), Certificate: cx.String("certificate"), CACert: cx.String("ca-cert")}
	if f == (Files{}) {
		return nil, Require(nil, remotes...)
	}
	return Load(f)
}

// Require fails if an ssl: remote is to be reached without credentials:
// ovsdb-server asks every TLS client for a certificate, and a connection
// without one would fail with a less helpful message later.
func Require(c *Credentials, remotes ...[]string) error {
	if c != nil {
		return nil
	}
	for _, rs := range remotes {
		for _, r := range rs {
			if strings.HasPrefix(r, "ssl:") {
				return fmt.Errorf("remote %s needs a client certificate: give --private-key, --certificate and --ca-cert "+
					"(or $%s, $%s, $%s)", r, EnvPrivateKey, EnvCertificate, EnvCACert)
			}
		}
	}
	return nil
}
