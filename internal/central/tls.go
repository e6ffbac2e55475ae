package central

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/internal/dbconf"
	"github.com/courier-sdn/courier/internal/pki"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema"
	"github.com/courier-sdn/courier/schema/nbdb"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// TLS with role-based access control, as courier-ctl sets it up when
// given a PKI directory:
//
//   - the servers serve the identity "ovsdb-server" of the directory;
//   - the northbound listens on its pssl: listeners, without roles (its
//     clients are the orchestrator, operators and the central daemons);
//   - the southbound listens for hypervisors with the role
//     schema.RoleChassis, and for northd and southd on a listener of
//     its own with schema.RoleCentral, and enforces schema.Roles();
//   - northd and southd connect over ssl: with their own certificates.
//
// ovsdb-server gives a client the role of the listener it came in by, not
// of its certificate, so the central listener must not be reachable by
// hypervisors: it listens on loopback unless told otherwise. The unix
// sockets stay, without a role, for the operator on the machine.

// ServerIdentity is the name the databases' certificate is signed for.
const ServerIdentity = "ovsdb-server"

// DefaultConnections are the TLS listeners when none is given: all on
// loopback, the safe default; hypervisors on other machines need the
// southbound's chassis listener on an address they reach.
func DefaultConnections() map[string][]dbconf.Listener {
	return map[string][]dbconf.Listener{
		"nb": {{Target: "pssl:6641:127.0.0.1"}},
		"sb": {{Target: "pssl:6642:127.0.0.1", Role: schema.RoleChassis},
			{Target: "pssl:6645:127.0.0.1", Role: schema.RoleCentral}},
	}
}

// TLS reports whether the run directory's services use TLS.
func (c *Config) TLS() bool { return c.PKIDir != "" }

func (c *Config) connections(d Database) []dbconf.Listener {
	if len(c.Connections[d.Short]) > 0 {
		return c.Connections[d.Short]
	}
	return DefaultConnections()[d.Short]
}

// tlsRemote is where the central daemons reach a database over TLS: the
// southbound's central listener, the northbound's first; "" without TLS.
func (c *Config) tlsRemote(d Database) string {
	if !c.TLS() {
		return ""
	}
	for _, l := range c.connections(d) {
		if strings.HasPrefix(l.Target, "pssl:") && (d.Short == "nb" || l.Role == schema.RoleCentral) {
			return dbconf.Active(l.Target)
		}
	}
	return ""
}

// DaemonTLSArgs are a central daemon's TLS flags: its own certificate.
func (c *Config) DaemonTLSArgs(name string) []string {
	if !c.TLS() {
		return nil
	}
	f := pki.For(c.PKIDir, name)
	return []string{"--private-key", f.PrivateKey, "--certificate", f.Certificate, "--ca-cert", f.CACert}
}

// dbRefArgs point ovsdb-server at the database's own listeners and TLS
// files, as ovn-ctl does.
func dbRefArgs(d Database) []string {
	global := globalTable(d)
	ref := func(table, col string) string { return "db:" + d.Name + "," + table + "," + col }
	return []string{"--remote=" + ref(global, "connections"),
		"--private-key=" + ref("SSL", "private_key"), "--certificate=" + ref("SSL", "certificate"),
		"--ca-cert=" + ref("SSL", "ca_cert"), "--ssl-protocols=" + ref("SSL", "ssl_protocols"),
		"--ssl-ciphers=" + ref("SSL", "ssl_ciphers")}
}

func globalTable(d Database) string {
	if d.Short == "sb" {
		return sbdb.SBGlobalTable
	}
	return nbdb.NBGlobalTable
}

// configureTLS creates what is missing of the PKI (the CA, the servers'
// and the central daemons' certificates), writes the databases' TLS
// files, listeners and roles, and waits until the listeners accept.
func (c *Config) configureTLS(ctx context.Context) error {
	if !c.TLS() {
		return nil
	}
	if created, err := pki.Init(c.PKIDir); err != nil {
		return err
	} else if created {
		c.log().Info("created a CA", "dir", c.PKIDir)
	}
	names := []string{ServerIdentity}
	for _, dm := range c.Daemons {
		names = append(names, dm.Name)
	}
	for _, n := range names {
		if pki.Signed(c.PKIDir, n) {
			continue
		}
		if err := pki.Sign(c.PKIDir, n, pki.SignOptions{Server: n == ServerIdentity}); err != nil {
			return err
		}
	}
	for _, d := range Databases {
		txn := dbconf.SetSSL(globalTable(d), pki.For(c.PKIDir, ServerIdentity), "", "")
		txn = append(txn, dbconf.SetConnections(globalTable(d), c.connections(d), d.Short == "sb")...)
		if d.Short == "sb" {
			txn = append(txn, dbconf.SetRoles(schema.Roles())...)
		}
		if err := c.transact(ctx, d, txn); err != nil {
			return fmt.Errorf("configure TLS of the %s database: %w", d.Short, err)
		}
	}
	for _, d := range Databases {
		for _, l := range c.connections(d) {
			if err := waitListening(ctx, l.Target); err != nil {
				return fmt.Errorf("ovsdb-server (%s): %w", d.Short, err)
			}
		}
	}
	return nil
}

// transact commits operations on a database through its unix socket.
// On a cluster member that is not the leader, ovsdb-server forwards the
// transaction to the leader: a member restarted with --tls (courier-ctl
// start) is seldom the leader, and used to fail here.
func (c *Config) transact(ctx context.Context, d Database, txn []ovsdb.Operation) error {
	var m model.ClientDBModel
	var err error
	if d.Short == "sb" {
		m, err = sbdb.FullDatabaseModel()
	} else {
		m, err = nbdb.FullDatabaseModel()
	}
	if err != nil {
		return err
	}
	s, err := ops.Open(ctx, m, ops.SessionOptions{Remotes: []string{c.Remote(d)}})
	if err != nil {
		return err
	}
	defer s.Close()
	_, err = ops.Transact(ctx, s, txn...)
	return err
}

// waitListening waits until a pssl: or ptcp: listener accepts.
func waitListening(ctx context.Context, target string) error {
	if strings.HasPrefix(target, "punix:") {
		return nil
	}
	addr := strings.SplitN(dbconf.Active(target), ":", 2)[1]
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.Dial("tcp", addr)
		if err == nil {
			conn.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s is not listening after 10s (is the port taken? see the server's log): %v", target, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
