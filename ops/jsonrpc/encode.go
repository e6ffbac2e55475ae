package jsonrpc

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"
)

// Encoding operations for the wire without reflection. libovsdb's
// MarshalJSON methods call json.Marshal once per operation, condition,
// mutation, set, map and UUID, and each call re-validates its output; a
// bulk write of 64,000 rows spent more time there than ovsdb-server spent
// parsing the result. AppendOperation writes the same JSON (RFC 7047 §5.2,
// as libovsdb spells it) straight into a buffer; a value of a type it does
// not know is handed to encoding/json, so nothing is ever encoded wrongly,
// only more slowly.

// AppendOperation appends the JSON encoding of op to b.
func AppendOperation(b []byte, op *ovsdb.Operation) ([]byte, error) {
	var err error
	b = append(b, `{"op":`...)
	b = appendString(b, op.Op)
	if op.Table != "" {
		b = append(b, `,"table":`...)
		b = appendString(b, op.Table)
	}
	if op.UUIDName != "" {
		b = append(b, `,"uuid-name":`...)
		b = appendString(b, op.UUIDName)
	}
	if op.UUID != "" {
		b = append(b, `,"uuid":`...)
		b = appendString(b, op.UUID)
	}
	if len(op.Row) > 0 || op.Op == ovsdb.OperationInsert { // an insert of defaults still sends its row
		b = append(b, `,"row":`...)
		if b, err = appendRow(b, op.Row); err != nil {
			return nil, err
		}
	}
	if len(op.Rows) > 0 || op.Op == ovsdb.OperationWait { // a wait for no rows still sends them
		b = append(b, `,"rows":[`...)
		for i, r := range op.Rows {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendRow(b, r); err != nil {
				return nil, err
			}
		}
		b = append(b, ']')
	}
	if len(op.Columns) > 0 {
		b = append(b, `,"columns":[`...)
		for i, c := range op.Columns {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, c)
		}
		b = append(b, ']')
	}
	if len(op.Mutations) > 0 {
		b = append(b, `,"mutations":[`...)
		for i, m := range op.Mutations {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendTriple(b, m.Column, string(m.Mutator), m.Value); err != nil {
				return nil, err
			}
		}
		b = append(b, ']')
	}
	// A select always carries where (RFC 7047 requires it); other
	// operations omit an empty one, as libovsdb does.
	if len(op.Where) > 0 || op.Op == ovsdb.OperationSelect || op.Op == ovsdb.OperationWait {
		b = append(b, `,"where":[`...)
		for i, c := range op.Where {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendTriple(b, c.Column, string(c.Function), c.Value); err != nil {
				return nil, err
			}
		}
		b = append(b, ']')
	}
	if op.Timeout != nil {
		b = append(b, `,"timeout":`...)
		b = strconv.AppendInt(b, int64(*op.Timeout), 10)
	}
	if op.Until != "" {
		b = append(b, `,"until":`...)
		b = appendString(b, op.Until)
	}
	if op.Durable != nil {
		b = append(b, `,"durable":`...)
		b = strconv.AppendBool(b, *op.Durable)
	}
	if op.Comment != nil {
		b = append(b, `,"comment":`...)
		b = appendString(b, *op.Comment)
	}
	if op.Lock != nil {
		b = append(b, `,"lock":`...)
		b = appendString(b, *op.Lock)
	}
	return append(b, '}'), nil
}

func appendRow(b []byte, row ovsdb.Row) ([]byte, error) {
	b = append(b, '{')
	first := true
	var err error
	for col, v := range row {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendString(b, col)
		b = append(b, ':')
		if b, err = appendValue(b, v); err != nil {
			return nil, fmt.Errorf("column %s: %w", col, err)
		}
	}
	return append(b, '}'), nil
}

// appendTriple writes a condition or mutation: [column, function, value].
func appendTriple(b []byte, col, fn string, v any) ([]byte, error) {
	b = append(b, '[')
	b = appendString(b, col)
	b = append(b, ',')
	b = appendString(b, fn)
	b = append(b, ',')
	b, err := appendValue(b, v)
	if err != nil {
		return nil, fmt.Errorf("column %s: %w", col, err)
	}
	return append(b, ']'), nil
}

// appendValue writes an OVSDB value in the notation of RFC 7047 §5.1.
func appendValue(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case string:
		return appendString(b, x), nil
	case int:
		return strconv.AppendInt(b, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(b, x, 10), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return nil, fmt.Errorf("unsupported number %v", x)
		}
		return strconv.AppendFloat(b, x, 'g', -1, 64), nil
	case ovsdb.UUID:
		return appendUUID(b, x.GoUUID), nil
	case ovsdb.OvsSet:
		return appendSet(b, x.GoSet)
	case ovsdb.OvsMap:
		return appendMap(b, x.GoMap)
	case *ovsdb.OvsSet:
		return appendSet(b, x.GoSet)
	case *ovsdb.OvsMap:
		return appendMap(b, x.GoMap)
	}
	j, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, j...), nil
}

// appendSet writes a set as libovsdb does: a single member stands alone.
func appendSet(b []byte, s []any) ([]byte, error) {
	if len(s) == 1 {
		return appendValue(b, s[0])
	}
	b = append(b, `["set",[`...)
	var err error
	for i, e := range s {
		if i > 0 {
			b = append(b, ',')
		}
		if b, err = appendValue(b, e); err != nil {
			return nil, err
		}
	}
	return append(b, "]]"...), nil
}

func appendMap(b []byte, m map[any]any) ([]byte, error) {
	b = append(b, `["map",[`...)
	first := true
	var err error
	for k, v := range m {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, '[')
		if b, err = appendValue(b, k); err != nil {
			return nil, err
		}
		b = append(b, ',')
		if b, err = appendValue(b, v); err != nil {
			return nil, err
		}
		b = append(b, ']')
	}
	return append(b, "]]"...), nil
}

// appendUUID writes ["uuid", u] for a real UUID and ["named-uuid", u] for
// a name given in the same transaction, as libovsdb decides.
func appendUUID(b []byte, u string) []byte {
	if isUUID(u) {
		b = append(b, `["uuid",`...)
	} else {
		b = append(b, `["named-uuid",`...)
	}
	b = appendString(b, u)
	return append(b, ']')
}

// isUUID matches the lower-case 8-4-4-4-12 hex form, as libovsdb does.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return false
			}
		}
	}
	return true
}

// appendString writes s as a JSON string. Printable ASCII without quotes
// or backslashes (nearly every OVSDB string) is copied as is; anything
// else goes through encoding/json.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			j, _ := json.Marshal(s)
			return append(b, j...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// decodeResults reads a transact reply. An insert's result is a UUID in
// ["uuid", "..."] form, which libovsdb's decoder reads through a second
// json.Unmarshal each; this reads the common form directly.
func decodeResults(raw []byte) ([]ovsdb.OperationResult, error) {
	s := &scanner{b: raw}
	var out []ovsdb.OperationResult
	err := s.array(func() error {
		var r ovsdb.OperationResult
		if s.peek() == 'n' { // an operation after a failed one
			_, err := s.skip()
			out = append(out, r)
			return err
		}
		err := s.object(func(key []byte) error {
			var err error
			switch string(key) {
			case "count":
				var n int64
				n, err = s.integer()
				r.Count = int(n)
			case "error":
				r.Error, err = s.str()
			case "details":
				r.Details, err = s.str()
			case "uuid":
				start := s.i
				if r.UUID.GoUUID, err = s.atomString(); err == nil && !isUUID(r.UUID.GoUUID) {
					err = fmt.Errorf("bad uuid %s", s.b[start:s.i])
				}
			case "rows":
				var v []byte
				if v, err = s.skip(); err == nil {
					err = json.Unmarshal(v, &r.Rows)
				}
			default:
				_, err = s.skip()
			}
			return err
		})
		out = append(out, r)
		if err != nil {
			return fmt.Errorf("result %d: %w", len(out)-1, err)
		}
		return nil
	})
	return out, err
}
