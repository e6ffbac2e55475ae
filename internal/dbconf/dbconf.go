// Package dbconf is the databases' configuration of themselves, kept in
// their own tables as OVN keeps it: the listeners ovsdb-server opens
// (Connection rows referenced from NB_Global or SB_Global.connections),
// its TLS files (the SSL row referenced from .ssl), and in the
// southbound the roles it enforces (RBAC_Role, RBAC_Permission).
// courier-ctl starts ovsdb-server with db: references to them, so a
// change takes effect without a restart.
//
// Its functions return operations for one transaction; courier-nbctl,
// courier-sbctl and courier-ctl commit them. Writing these tables is an
// operator's act: listeners with a role cannot.
package dbconf

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/internal/pki"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema"
)

// Listener is one Connection row: a passive remote (pssl:PORT[:IP],
// ptcp:PORT[:IP], punix:PATH), with the role its clients get (southbound
// only) and whether it is read-only.
type Listener struct {
	Target   string
	Role     string
	ReadOnly bool
}

func (l Listener) String() string {
	var b strings.Builder
	if l.ReadOnly {
		b.WriteString("read-only ")
	}
	if l.Role != "" {
		fmt.Fprintf(&b, "role=%s ", l.Role)
	}
	b.WriteString(l.Target)
	return b.String()
}

// ParseListeners reads set-connection's arguments: targets, each
// optionally preceded by "read-only" and (where roles are allowed)
// "role=ROLE", as ovn-sbctl's set-connection takes them.
func ParseListeners(args []string, roles bool) ([]Listener, error) {
	var out []Listener
	var cur Listener
	for _, a := range args {
		switch {
		case a == "read-only":
			cur.ReadOnly = true
		case strings.HasPrefix(a, "role="):
			if !roles {
				return nil, fmt.Errorf("%q: this database has no roles", a)
			}
			cur.Role = strings.TrimPrefix(a, "role=")
		default:
			if err := checkPassive(a); err != nil {
				return nil, err
			}
			cur.Target = a
			out = append(out, cur)
			cur = Listener{}
		}
	}
	if cur != (Listener{}) {
		return nil, fmt.Errorf("read-only or role= must precede a target")
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no target given")
	}
	return out, nil
}

// checkPassive checks a passive remote: pssl:PORT[:IP], ptcp:PORT[:IP]
// or punix:PATH.
func checkPassive(t string) error {
	scheme, rest, _ := strings.Cut(t, ":")
	switch scheme {
	case "punix":
		if rest == "" {
			return fmt.Errorf("%q: empty socket path", t)
		}
		return nil
	case "pssl", "ptcp":
		port, ip, _ := strings.Cut(rest, ":")
		if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
			return fmt.Errorf("%q: bad port %q", t, port)
		}
		if ip != "" && net.ParseIP(ip) == nil {
			return fmt.Errorf("%q: %q is not an IP address", t, ip)
		}
		return nil
	}
	return fmt.Errorf("%q: want pssl:PORT[:IP], ptcp:PORT[:IP] or punix:PATH", t)
}

// Active is the remote a client on this machine uses to reach a pssl: or
// ptcp: listener (an unspecified address means loopback).
func Active(target string) string {
	scheme, rest, _ := strings.Cut(target, ":")
	port, ip, _ := strings.Cut(rest, ":")
	if ip == "" || ip == "0.0.0.0" || ip == "::" {
		ip = "127.0.0.1"
	}
	return strings.TrimPrefix(scheme, "p") + ":" + net.JoinHostPort(ip, port)
}

// all matches every row (ops.All: libovsdb drops an empty where list).
func all() []ovsdb.Condition { return ops.All() }

func set(v ...any) ovsdb.OvsSet { return ovsdb.OvsSet{GoSet: v} }

// SetConnections replaces the listeners of the database whose global
// table is global (NB_Global or SB_Global). An empty list removes them.
func SetConnections(global string, ls []Listener, roles bool) []ovsdb.Operation {
	txn := []ovsdb.Operation{{Op: ovsdb.OperationDelete, Table: "Connection", Where: all()}}
	var refs []any
	for i, l := range ls {
		name := fmt.Sprintf("conn%d", i)
		row := ovsdb.Row{"target": l.Target}
		if roles {
			row["role"], row["read_only"] = l.Role, l.ReadOnly
		}
		txn = append(txn, ovsdb.Operation{Op: ovsdb.OperationInsert, Table: "Connection", UUIDName: name, Row: row})
		refs = append(refs, ovsdb.UUID{GoUUID: name})
	}
	return append(txn, ovsdb.Operation{Op: ovsdb.OperationUpdate, Table: global, Where: all(),
		Row: ovsdb.Row{"connections": set(refs...)}})
}

// SetSSL sets the files ovsdb-server serves TLS with; protocols and
// ciphers may be empty (ovsdb-server's defaults).
func SetSSL(global string, f pki.Files, protocols, ciphers string) []ovsdb.Operation {
	return []ovsdb.Operation{
		{Op: ovsdb.OperationDelete, Table: "SSL", Where: all()},
		{Op: ovsdb.OperationInsert, Table: "SSL", UUIDName: "ssl", Row: ovsdb.Row{"private_key": f.PrivateKey,
			"certificate": f.Certificate, "ca_cert": f.CACert, "ssl_protocols": protocols, "ssl_ciphers": ciphers}},
		{Op: ovsdb.OperationUpdate, Table: global, Where: all(), Row: ovsdb.Row{"ssl": set(ovsdb.UUID{GoUUID: "ssl"})}},
	}
}

// DelSSL removes the TLS files: pssl: listeners stop working.
func DelSSL(global string) []ovsdb.Operation {
	return []ovsdb.Operation{
		{Op: ovsdb.OperationUpdate, Table: global, Where: all(), Row: ovsdb.Row{"ssl": set()}},
		{Op: ovsdb.OperationDelete, Table: "SSL", Where: all()},
	}
}

// SetRoles replaces the southbound's roles with these (schema.Roles).
func SetRoles(roles map[string][]schema.Permission) []ovsdb.Operation {
	txn := []ovsdb.Operation{{Op: ovsdb.OperationDelete, Table: "RBAC_Role", Where: all()}}
	names := make([]string, 0, len(roles))
	for r := range roles {
		names = append(names, r)
	}
	sort.Strings(names)
	n := 0
	for _, r := range names {
		perms := map[any]any{}
		for _, p := range roles[r] {
			n++
			name := fmt.Sprintf("perm%d", n)
			auth, upd := make([]any, len(p.Authorization)), make([]any, len(p.Update))
			for i, a := range p.Authorization {
				auth[i] = a
			}
			for i, u := range p.Update {
				upd[i] = u
			}
			txn = append(txn, ovsdb.Operation{Op: ovsdb.OperationInsert, Table: "RBAC_Permission", UUIDName: name,
				Row: ovsdb.Row{"table": p.Table, "authorization": set(auth...), "insert_delete": p.InsertDelete, "update": set(upd...)}})
			perms[p.Table] = ovsdb.UUID{GoUUID: name}
		}
		txn = append(txn, ovsdb.Operation{Op: ovsdb.OperationInsert, Table: "RBAC_Role",
			Row: ovsdb.Row{"name": r, "permissions": ovsdb.OvsMap{GoMap: perms}}})
	}
	return txn
}

// Connections reads the listeners of a database, with ovsdb-server's
// status of each (bound_port, is_connected...).
func Connections(ctx context.Context, t ops.Transactor) ([]Listener, []map[string]string, error) {
	res, err := ops.Transact(ctx, t, ovsdb.Operation{Op: ovsdb.OperationSelect, Table: "Connection", Where: all()})
	if err != nil {
		return nil, nil, err
	}
	var ls []Listener
	var status []map[string]string
	for _, r := range res[0].Rows {
		l := Listener{}
		l.Target, _ = r["target"].(string)
		l.Role, _ = r["role"].(string)
		l.ReadOnly, _ = r["read_only"].(bool)
		ls = append(ls, l)
		st := map[string]string{}
		if m, ok := r["status"].(ovsdb.OvsMap); ok {
			for k, v := range m.GoMap {
				st[fmt.Sprint(k)] = fmt.Sprint(v)
			}
		}
		status = append(status, st)
	}
	return ls, status, nil
}

// SSL reads the database's TLS files, or nil when it has none.
func SSL(ctx context.Context, t ops.Transactor) (*pki.Files, error) {
	res, err := ops.Transact(ctx, t, ovsdb.Operation{Op: ovsdb.OperationSelect, Table: "SSL", Where: all()})
	if err != nil {
		return nil, err
	}
	for _, r := range res[0].Rows {
		f := &pki.Files{}
		f.PrivateKey, _ = r["private_key"].(string)
		f.Certificate, _ = r["certificate"].(string)
		f.CACert, _ = r["ca_cert"].(string)
		return f, nil
	}
	return nil, nil
}

// Show renders listeners as get-connection prints them, one a line, with
// the port a listener on port 0 was bound to.
func Show(ls []Listener, status []map[string]string) string {
	var lines []string
	for i, l := range ls {
		s := l.String()
		if p := status[i]["bound_port"]; p != "" {
			s += " (bound to port " + p + ")"
		}
		lines = append(lines, s)
	}
	sort.Strings(lines)
	if len(lines) == 0 {
		return ""
	}
	return strings.Join(lines, "\n") + "\n"
}

// ParseSSL reads set-ssl's arguments: PRIVATE-KEY CERTIFICATE CA-CERT
// [SSL-PROTOCOLS [SSL-CIPHERS]], as ovn-nbctl's set-ssl takes them.
func ParseSSL(args []string) (pki.Files, string, string, error) {
	if len(args) < 3 || len(args) > 5 {
		return pki.Files{}, "", "", fmt.Errorf("set-ssl takes PRIVATE-KEY CERTIFICATE CA-CERT [SSL-PROTOCOLS [SSL-CIPHERS]]")
	}
	f := pki.Files{PrivateKey: args[0], Certificate: args[1], CACert: args[2]}
	var protos, ciphers string
	if len(args) > 3 {
		protos = args[3]
	}
	if len(args) > 4 {
		ciphers = args[4]
	}
	return f, protos, ciphers, nil
}
