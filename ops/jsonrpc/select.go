package jsonrpc

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
)

// ReadTable reads every row of a table from remote in one transaction,
// decoded by dec: for a reader that needs a table once, in full, without
// keeping a monitor and a libovsdb cache of it. At 64,000 rows a libovsdb
// select took seconds, decoding through generic maps and the mapper.
func ReadTable(ctx context.Context, remote string, tlsc *tls.Config, db, table string, dec *RowDecoder) ([]model.Model, error) {
	conn, err := Dial(remote, tlsc)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	params := fmt.Appendf(nil, `[%s,{"op":"select","table":%s,"where":[]}]`, quote(db), quote(table))
	var raw json.RawMessage
	if err := conn.CallRaw(ctx, "transact", params, &raw); err != nil {
		return nil, err
	}
	return decodeSelect(raw, dec)
}

func quote(s string) []byte { return appendString(nil, s) }

// decodeSelect reads the reply of a transaction whose one operation is a
// select: [{"rows": [...]}], or [{"error": ..., "details": ...}].
func decodeSelect(raw []byte, dec *RowDecoder) ([]model.Model, error) {
	s := &scanner{b: raw}
	var rows []model.Model
	n := 0
	err := s.array(func() error {
		if n++; n > 1 {
			_, err := s.skip()
			return err
		}
		var err error
		rows, err = decodeResult(s, dec)
		return err
	})
	var refused *SelectError
	switch {
	case errors.As(err, &refused):
		return nil, err
	case err != nil:
		return nil, fmt.Errorf("select reply: %w", err)
	case n == 0:
		return nil, fmt.Errorf("select: empty reply")
	}
	return rows, nil
}

// Selects runs selects (each a select operation) as one transaction on
// conn and decodes the rows of each with decs[i]: for a reader that
// needs a few rows by condition without a monitor, at the cost of the
// rows it asks for.
func Selects(ctx context.Context, conn *Conn, db string, selects []ovsdb.Operation, decs []*RowDecoder) ([][]model.Model, error) {
	if len(selects) == 0 {
		return nil, nil
	}
	params := append(quote(db), ',')
	for i := range selects {
		if i > 0 {
			params = append(params, ',')
		}
		var err error
		if params, err = AppendOperation(params, &selects[i]); err != nil {
			return nil, err
		}
	}
	params = append(append([]byte{'['}, params...), ']')
	var raw json.RawMessage
	if err := conn.CallRaw(ctx, "transact", params, &raw); err != nil {
		return nil, err
	}
	out := make([][]model.Model, 0, len(selects))
	s := &scanner{b: raw}
	err := s.array(func() error {
		i := len(out)
		if i >= len(selects) {
			_, err := s.skip() // a commit error after the results
			return err
		}
		rows, err := decodeResult(s, decs[i])
		out = append(out, rows)
		return err
	})
	if err == nil && len(out) < len(selects) {
		err = fmt.Errorf("transaction answered %d of %d selects", len(out), len(selects))
	}
	return out, err
}

// decodeResult reads one operation's result: {"rows": [...]}, or
// {"error": ..., "details": ...}.
func decodeResult(s *scanner, dec *RowDecoder) ([]model.Model, error) {
	var rows []model.Model
	var opErr, details string
	err := s.object(func(key []byte) error {
		var err error
		switch string(key) {
		case "rows":
			return s.array(func() error {
				row, err := s.skip()
				if err != nil {
					return err
				}
				m, err := dec.Decode("", row)
				rows = append(rows, m)
				return err
			})
		case "error":
			opErr, err = s.str()
		case "details":
			details, err = s.str()
		default:
			_, err = s.skip()
		}
		return err
	})
	if err == nil && opErr != "" {
		err = &SelectError{Err: opErr, Details: details}
	}
	return rows, err
}

// SelectError is a select the server answered with an error (a column
// its schema lacks, say): the connection is fine, and trying again will
// not help.
type SelectError struct{ Err, Details string }

func (e *SelectError) Error() string { return "select: " + e.Err + ": " + e.Details }
