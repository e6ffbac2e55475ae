package sandbox

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/courier-sdn/courier/internal/central"
	"github.com/courier-sdn/courier/internal/dbconf"
	"github.com/courier-sdn/courier/internal/lab"
	"github.com/courier-sdn/courier/internal/pki"
	"github.com/courier-sdn/courier/internal/proc"
	"github.com/courier-sdn/courier/schema"
	"github.com/courier-sdn/courier/tools/nbctl"
)

// A sandbox started with TLS runs as a deployment across machines would:
// the databases serve pssl: listeners on free loopback ports (the
// northbound's; the southbound's for hypervisors, role courier-chassis;
// the southbound's for northd and southd, role courier-central) with
// role-based access control, and every daemon presents a certificate of
// the sandbox's PKI (RUNDIR/pki): northd and southd their own, each hostd
// its chassis's, the tools "operator". The unix sockets stay, for the
// sandbox's own bookkeeping.
//
// A hostd runs in its host's network namespace, which cannot reach the
// machine's loopback; a relay (courier-sandbox relay) listens on
// 127.0.0.1:HostSBPort inside each host's namespace and joins each
// connection to the southbound's hypervisor listener. It carries the TLS
// session unopened: ovsdb-server sees the hostd's own certificate.

// HostSBPort is where a hostd reaches the southbound inside its host's
// namespace, through the relay.
const HostSBPort = 6642

// TLSState records a TLS sandbox's listeners (pssl: targets).
type TLSState struct {
	NB        string `json:"nb"`
	SBChassis string `json:"sb_chassis"`
	SBCentral string `json:"sb_central"`
}

// OperatorIdentity is the name the tools' certificate is signed for.
const OperatorIdentity = "operator"

func freeTarget() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return fmt.Sprintf("pssl:%d:127.0.0.1", l.Addr().(*net.TCPAddr).Port), nil
}

func newTLSState() (*TLSState, error) {
	var t [3]string
	for i := range t {
		var err error
		if t[i], err = freeTarget(); err != nil {
			return nil, err
		}
	}
	return &TLSState{NB: t[0], SBChassis: t[1], SBCentral: t[2]}, nil
}

// setTLS makes the central services' configuration serve TLS.
func setTLS(c *central.Config, runDir string, t *TLSState) {
	if t == nil {
		return
	}
	c.PKIDir = filepath.Join(runDir, "pki")
	c.Connections = map[string][]dbconf.Listener{"nb": {{Target: t.NB}},
		"sb": {{Target: t.SBChassis, Role: schema.RoleChassis}, {Target: t.SBCentral, Role: schema.RoleCentral}}}
}

// TLS reports whether the sandbox runs over TLS.
func (s *Sandbox) TLS() bool { return s.State.TLS != nil }

// PKIDir is the sandbox's PKI directory ("" without TLS).
func (s *Sandbox) PKIDir() string { return s.ctl.PKIDir }

// NBTLS and SBTLS are the ssl: remotes of the northbound and of the
// southbound's hypervisor listener ("" without TLS).
func (s *Sandbox) NBTLS() string {
	if !s.TLS() {
		return ""
	}
	return dbconf.Active(s.State.TLS.NB)
}

func (s *Sandbox) SBTLS() string {
	if !s.TLS() {
		return ""
	}
	return dbconf.Active(s.State.TLS.SBChassis)
}

// Operator is the tools' TLS identity.
func (s *Sandbox) Operator() pki.Files { return pki.For(s.PKIDir(), OperatorIdentity) }

// nameHubs makes the first n hosts the only chassis that may serve as
// hubs (schema.HubChassisOption): a hypervisor that declared the hub role
// by itself must not get other hosts' traffic.
func (s *Sandbox) nameHubs(ctx context.Context, n int) error {
	if !s.TLS() {
		return nil
	}
	args := []string{"set-hub-chassis"}
	for i := 1; i <= n; i++ {
		args = append(args, "hv"+strconv.Itoa(i))
	}
	var out bytes.Buffer
	if err := nbctl.Run(ctx, nbctl.Options{DB: s.NB(), Wait: "none", Format: "table", LeaderOnly: true}, args, &out); err != nil {
		return fmt.Errorf("name the hubs: %w", err)
	}
	return nil
}

// signIdentities signs the operator's certificate and each host's.
func (s *Sandbox) signIdentities() error {
	if !s.TLS() {
		return nil
	}
	names := []string{OperatorIdentity}
	for _, h := range s.State.Hosts {
		names = append(names, h.Name)
	}
	for _, n := range names {
		if pki.Signed(s.PKIDir(), n) {
			continue
		}
		if err := pki.Sign(s.PKIDir(), n, pki.SignOptions{}); err != nil {
			return err
		}
	}
	return nil
}

// hostdSB is what a host's hostd is given to reach the southbound.
func (s *Sandbox) hostdSB(host string) []string {
	if !s.TLS() {
		return []string{"--sb", s.SB()}
	}
	f := pki.For(s.PKIDir(), host)
	return []string{"--sb", "ssl:127.0.0.1:" + strconv.Itoa(HostSBPort),
		"--private-key", f.PrivateKey, "--certificate", f.Certificate, "--ca-cert", f.CACert}
}

func (s *Sandbox) relayPid(host string) string { return filepath.Join(s.RunDir, "relay-"+host+".pid") }

// startRelay starts the relay into a host's namespace.
func (s *Sandbox) startRelay(host string) error {
	if !s.TLS() {
		return nil
	}
	bin, err := proc.Find(s.State.BinDir, "courier-sandbox")
	if err != nil {
		return err
	}
	to := dbconf.Active(s.State.TLS.SBChassis)[len("ssl:"):]
	_, err = proc.Start(proc.Spec{Bin: bin, Args: []string{"relay", "--netns", s.HostNS(host),
		"--listen", "127.0.0.1:" + strconv.Itoa(HostSBPort), "--to", to},
		LogFile: filepath.Join(s.RunDir, "relay-"+host+".log"), PidFile: s.relayPid(host), Ready: 10 * time.Second})
	return err
}

func (s *Sandbox) stopRelay(host string) error {
	return proc.Stop(s.relayPid(host), "courier-sandbox", 5*time.Second)
}

// printTLS tells an operator how to reach the databases over TLS.
func (s *Sandbox) printTLS(out io.Writer) {
	if !s.TLS() {
		return
	}
	op := s.Operator()
	fmt.Fprintf(out, `Over mutual TLS with role-based access control (PKI in %s):
  northbound  %s
  southbound  %s  (hypervisors, role %s; reached from each host's namespace at 127.0.0.1:%d)
              %s  (northd and southd, role %s)
  export COURIER_PRIVATE_KEY=%s COURIER_CERTIFICATE=%s COURIER_CA_CERT=%s
  courier-nbctl --db %s show
  courier-sbctl --db %s show
`, s.PKIDir(), s.NBTLS(), s.SBTLS(), schema.RoleChassis, HostSBPort, dbconf.Active(s.State.TLS.SBCentral), schema.RoleCentral,
		op.PrivateKey, op.Certificate, op.CACert, s.NBTLS(), s.SBTLS())
}

// Relay accepts connections on listen inside network namespace ns and
// joins each to a new connection to `to`, made from the namespace the
// process runs in. It returns only if it cannot listen; ready is called
// once it listens.
func Relay(ns, listen, to string, ready func()) error {
	var l net.Listener
	err := lab.Do(ns, func() (err error) {
		l, err = net.Listen("tcp", listen)
		return err
	})
	if err != nil {
		return fmt.Errorf("listen on %s in %s: %w", listen, ns, err)
	}
	ready()
	for {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			up, err := net.Dial("tcp", to)
			if err != nil {
				return
			}
			defer up.Close()
			go func() {
				io.Copy(up, c)
				up.(*net.TCPConn).CloseWrite()
			}()
			io.Copy(c, up)
		}()
	}
}
