package jsonrpc

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"

	"github.com/ovn-kubernetes/libovsdb/model"
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
	var opErr, details string
	n := 0
	err := s.array(func() error {
		if n++; n > 1 {
			_, err := s.skip()
			return err
		}
		return s.object(func(key []byte) error {
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
				var err error
				opErr, err = s.str()
				return err
			case "details":
				var err error
				details, err = s.str()
				return err
			}
			_, err := s.skip()
			return err
		})
	})
	switch {
	case err != nil:
		return nil, fmt.Errorf("select reply: %w", err)
	case opErr != "":
		return nil, fmt.Errorf("select: %s: %s", opErr, details)
	case n == 0:
		return nil, fmt.Errorf("select: empty reply")
	}
	return rows, nil
}
