package ops

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// DefaultRunDir is where courier-ctl keeps sockets, pid files and logs
// unless --run-dir or COURIER_RUNDIR says otherwise.
const DefaultRunDir = "/var/run/courier"

// RunDir returns the run directory: flag value, else $COURIER_RUNDIR, else
// DefaultRunDir.
func RunDir(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	if v := os.Getenv("COURIER_RUNDIR"); v != "" {
		return v
	}
	return DefaultRunDir
}

// NBSocket and SBSocket are the unix sockets of the standalone servers
// that courier-ctl runs in a run directory.
func NBSocket(runDir string) string { return filepath.Join(runDir, "nb.sock") }
func SBSocket(runDir string) string { return filepath.Join(runDir, "sb.sock") }

// DefaultNBRemote returns the northbound remote a tool should use when
// --db is not given: $COURIER_NB_DB, else the run directory's socket.
func DefaultNBRemote(runDir string) string {
	if v := os.Getenv("COURIER_NB_DB"); v != "" {
		return v
	}
	return "unix:" + NBSocket(runDir)
}

// DefaultSBRemote is DefaultNBRemote for the southbound ($COURIER_SB_DB).
func DefaultSBRemote(runDir string) string {
	if v := os.Getenv("COURIER_SB_DB"); v != "" {
		return v
	}
	return "unix:" + SBSocket(runDir)
}

// ParseRemotes splits a comma-separated list of active OVSDB remotes
// ("unix:PATH", "tcp:IP:PORT", "ssl:IP:PORT") and checks each one, so that
// a typo is reported before any connection is tried.
func ParseRemotes(s string) ([]string, error) {
	var out []string
	for _, r := range strings.Split(s, ",") {
		r = strings.TrimSpace(r)
		if r == "" {
			continue
		}
		if err := checkRemote(r); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no database remote given")
	}
	return out, nil
}

func checkRemote(r string) error {
	scheme, rest, ok := strings.Cut(r, ":")
	if !ok {
		return fmt.Errorf("remote %q: want unix:PATH, tcp:IP:PORT or ssl:IP:PORT", r)
	}
	switch scheme {
	case "unix":
		if rest == "" {
			return fmt.Errorf("remote %q: empty socket path", r)
		}
		return nil
	case "tcp", "ssl":
		host, port, err := net.SplitHostPort(rest)
		if err != nil {
			return fmt.Errorf("remote %q: %v", r, err)
		}
		if net.ParseIP(host) == nil {
			return fmt.Errorf("remote %q: %q is not an IP address", r, host)
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			return fmt.Errorf("remote %q: bad port %q", r, port)
		}
		return nil
	default:
		return fmt.Errorf("remote %q: unknown scheme %q (want unix, tcp or ssl)", r, scheme)
	}
}

// ErrTLSRefused: a server ended a TLS session right after the handshake,
// which is how it refuses a client's certificate (and also how a dying
// server may look, so the connection is still retried).
var ErrTLSRefused = errors.New("the server ended the TLS session before answering: it does not accept this certificate; " +
	"is it signed by the server's CA and still valid?")

// tlsRefusal explains a connection that failed after a TLS handshake the
// server ended: with TLS 1.3 a server that refuses the client's
// certificate says so only by closing the connection, which the client
// sees at its first read or write, or, when the close comes first, as
// libovsdb's "not connected" for its first request (a CI run saw that
// one).
func tlsRefusal(err error, remotes []string) error {
	if err == nil || !slices.ContainsFunc(remotes, func(r string) bool { return strings.HasPrefix(r, "ssl:") }) {
		return err
	}
	msg := err.Error()
	for _, s := range []string{"broken pipe", "EOF", "connection reset", "remote error: tls", "not connected"} {
		if strings.Contains(msg, s) {
			return fmt.Errorf("%w (%w)", err, ErrTLSRefused)
		}
	}
	return err
}

// untrusted: this client does not trust the server's certificate, which
// no retry changes.
func untrusted(err error) bool {
	var ua x509.UnknownAuthorityError
	var ci x509.CertificateInvalidError
	var he x509.HostnameError
	return errors.As(err, &ua) || errors.As(err, &ci) || errors.As(err, &he)
}
