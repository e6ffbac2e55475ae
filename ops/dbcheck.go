package ops

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
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
	c, derr := dialRPC(remote, tlsc, nil)
	if derr != nil {
		return err
	}
	defer c.Close()
	var dbs []string
	if c.call(ctx, "list_dbs", []any{}, &dbs) != nil {
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
