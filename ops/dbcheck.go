package ops

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// WrongDatabaseError is a server that answers but does not serve the
// database asked for: a client pointed at the southbound's socket, or
// at OVN's. No retry helps, and "cannot reach" would send the operator
// looking for a server that is up.
type WrongDatabaseError struct {
	Want  string   // the database asked for
	Found []string // what the server serves
}

// Description of Courier's databases, for the message.
var dbKinds = map[string]string{"Courier_Northbound": "Courier northbound", "Courier_Southbound": "Courier southbound"}

func (e *WrongDatabaseError) Error() string {
	kind := dbKinds[e.Want]
	if kind == "" {
		kind = e.Want
	}
	found := "no database"
	if len(e.Found) > 0 {
		found = strings.Join(e.Found, ", ")
	}
	return fmt.Sprintf("this is not a %s database (found %s)", kind, found)
}

// wrongDatabase turns libovsdb's "target database X not found" into a
// WrongDatabaseError naming what the server does serve.
func wrongDatabase(err error, remote, want string, tlsc *tls.Config) error {
	if err == nil || !strings.Contains(err.Error(), "target database") || !strings.Contains(err.Error(), "not found") {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	dbs, lerr := listDBs(ctx, remote, tlsc)
	if lerr != nil {
		return err
	}
	var found []string
	for _, d := range dbs {
		if d != "_Server" {
			found = append(found, d)
		}
	}
	return &WrongDatabaseError{Want: want, Found: found}
}

// IsWrongDatabase says whether err is a WrongDatabaseError.
func IsWrongDatabase(err error) bool {
	var w *WrongDatabaseError
	return errors.As(err, &w)
}

// DialRemote opens a connection to one active remote (unix:, tcp: or
// ssl:, which needs tlsc: internal/pki's client configuration).
func DialRemote(remote string, tlsc *tls.Config) (net.Conn, error) {
	scheme, rest, _ := strings.Cut(remote, ":")
	switch scheme {
	case "unix":
		return net.Dial("unix", rest)
	case "tcp":
		return net.Dial("tcp", rest)
	case "ssl":
		if tlsc == nil {
			return nil, fmt.Errorf("remote %q: no TLS credentials to present (--private-key, --certificate, --ca-cert)", remote)
		}
		c, err := tls.Dial("tcp", rest, tlsc)
		if err != nil {
			return nil, fmt.Errorf("TLS handshake with %s: %w", remote, err)
		}
		return c, nil
	default:
		return nil, fmt.Errorf("remote %q: scheme %q not supported for this session", remote, scheme)
	}
}

// listDBs asks a server which databases it serves: one JSON-RPC call,
// on a connection of its own (the full client is ops/jsonrpc, which
// builds on this package).
func listDBs(ctx context.Context, remote string, tlsc *tls.Config) ([]string, error) {
	c, err := DialRemote(remote, tlsc)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if err := json.NewEncoder(c).Encode(map[string]any{"method": "list_dbs", "params": []any{}, "id": 0}); err != nil {
		return nil, err
	}
	var resp struct {
		Result []string        `json:"result"`
		Error  json.RawMessage `json:"error"`
	}
	if err := json.NewDecoder(c).Decode(&resp); err != nil {
		return nil, err
	}
	if len(resp.Error) > 0 && string(resp.Error) != "null" {
		return nil, fmt.Errorf("list_dbs: %s", resp.Error)
	}
	return resp.Result, nil
}
