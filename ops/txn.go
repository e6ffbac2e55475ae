package ops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
)

// Transactor commits operations as one transaction. A libovsdb client is
// one; so is a jsonrpc.LockSession, whose transactions are fenced by its lock.
type Transactor interface {
	Transact(ctx context.Context, ops ...ovsdb.Operation) ([]ovsdb.OperationResult, error)
}

// TxnError is a transaction the server refused. Nothing in it was applied:
// OVSDB transactions are atomic.
type TxnError struct {
	// Index of the failing operation, or -1 when the commit itself failed
	// (a referential integrity or index violation found at commit).
	Index   int
	Op      string
	Table   string
	Err     string // the OVSDB error name, e.g. "constraint violation"
	Details string
}

func (e *TxnError) Error() string {
	var b strings.Builder
	if e.Index >= 0 {
		fmt.Fprintf(&b, "%s on table %s refused: %s", e.Op, e.Table, e.Err)
	} else {
		fmt.Fprintf(&b, "transaction refused at commit: %s", e.Err)
	}
	if e.Details != "" {
		b.WriteString(": ")
		b.WriteString(e.Details)
	}
	return b.String()
}

// ErrNoConnection means the transaction may not have reached the server,
// or reached it and its reply was lost: the caller must re-read before
// deciding to try again.
var ErrNoConnection = errors.New("lost connection to the database")

// Transact commits ops as one transaction and checks every result. An
// empty list is a no-op.
func Transact(ctx context.Context, t Transactor, ops ...ovsdb.Operation) ([]ovsdb.OperationResult, error) {
	if len(ops) == 0 {
		return nil, nil
	}
	res, err := t.Transact(ctx, ops...)
	if err != nil {
		if ConnectionLost(err) {
			return nil, fmt.Errorf("%w: %v", ErrNoConnection, err)
		}
		return nil, err
	}
	if err := CheckResults(res, ops); err != nil {
		return nil, err
	}
	return res, nil
}

// ConnectionLost says whether err means that the connection was gone
// before a call was sent or went away while it was under way: a server
// killed mid-transaction shows as an unexpected EOF or a reset, not as
// libovsdb's ErrNotConnected.
func ConnectionLost(err error) bool {
	return errors.Is(err, client.ErrNotConnected) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed)
}

// CheckResults turns the first failed result of a transaction into a
// TxnError. Later failures are consequences of the first: OVSDB stops at the
// first failing operation and reports the rest as not executed.
func CheckResults(res []ovsdb.OperationResult, ops []ovsdb.Operation) error {
	if len(res) < len(ops) {
		return fmt.Errorf("transaction answered %d of %d operations", len(res), len(ops))
	}
	for i, r := range res {
		if r.Error == "" {
			continue
		}
		if i >= len(ops) {
			return &TxnError{Index: -1, Err: r.Error, Details: r.Details}
		}
		return &TxnError{Index: i, Op: ops[i].Op, Table: ops[i].Table, Err: r.Error, Details: r.Details}
	}
	return nil
}

// InsertedUUID returns the UUID the server gave the row inserted by ops[i].
func InsertedUUID(res []ovsdb.OperationResult, i int) string {
	if i < 0 || i >= len(res) {
		return ""
	}
	return res[i].UUID.GoUUID
}

// PermissionDenied reports whether err is a transaction that the
// server's role-based access control refused (OVSDB's "permission
// error"), and on which table.
func PermissionDenied(err error) (table string, ok bool) {
	var te *TxnError
	if errors.As(err, &te) && te.Err == "permission error" {
		return te.Table, true
	}
	return "", false
}
