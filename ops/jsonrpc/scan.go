package jsonrpc

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// scanner reads the JSON that ovsdb-server sends (RFC 7047 §5.1) in one
// pass over a buffer, without building map[string]any on the way: at
// 64,000 rows, libovsdb's decoding of a monitor update through generic
// maps and reflection cost northd more CPU than compiling the rows.
// Strings without escapes are sliced, not copied twice; anything unusual
// (escapes) goes through encoding/json.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) errorf(format string, a ...any) error {
	return fmt.Errorf("offset %d: "+format, append([]any{s.i}, a...)...)
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next significant byte, or 0 at the end.
func (s *scanner) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *scanner) expect(c byte) error {
	if s.peek() != c {
		return s.errorf("want %q", c)
	}
	s.i++
	return nil
}

// more is for the inside of an object or array that ends with end: it
// consumes a separating comma and reports whether an element follows.
func (s *scanner) more(end byte, first bool) (bool, error) {
	c := s.peek()
	if c == end {
		s.i++
		return false, nil
	}
	if !first {
		if c != ',' {
			return false, s.errorf("want ',' or %q", end)
		}
		s.i++
	}
	return true, nil
}

// rawString returns a string's bytes between the quotes and whether it
// holds escapes.
func (s *scanner) rawString() ([]byte, bool, error) {
	if err := s.expect('"'); err != nil {
		return nil, false, err
	}
	start, esc := s.i, false
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case '"':
			s.i++
			return s.b[start : s.i-1], esc, nil
		case '\\':
			esc = true
			s.i += 2
			continue
		}
		s.i++
	}
	return nil, false, s.errorf("unterminated string")
}

func (s *scanner) str() (string, error) {
	raw, esc, err := s.rawString()
	if err != nil || !esc {
		return string(raw), err
	}
	var out string
	quoted := s.b[s.i-len(raw)-2 : s.i]
	if err := json.Unmarshal(quoted, &out); err != nil {
		return "", s.errorf("bad string: %v", err)
	}
	return out, nil
}

// skip passes over one value of any kind and returns its bytes.
func (s *scanner) skip() ([]byte, error) {
	c := s.peek()
	start := s.i
	var err error
	switch c {
	case '"':
		_, _, err = s.rawString()
	case '{':
		err = s.object(func([]byte) error { _, err := s.skip(); return err })
	case '[':
		err = s.array(func() error { _, err := s.skip(); return err })
	case 't', 'f':
		_, err = s.boolean()
	case 'n':
		if len(s.b)-s.i >= 4 && string(s.b[s.i:s.i+4]) == "null" {
			s.i += 4
		} else {
			err = s.errorf("want a value")
		}
	default:
		_, err = s.number()
	}
	return s.b[start:s.i], err
}

// object calls field for each member of an object, with the scanner at
// the member's value; field must consume it.
func (s *scanner) object(field func(key []byte) error) error {
	if err := s.expect('{'); err != nil {
		return err
	}
	for first := true; ; first = false {
		ok, err := s.more('}', first)
		if err != nil || !ok {
			return err
		}
		key, esc, err := s.rawString()
		if err != nil {
			return err
		}
		if esc {
			return s.errorf("escaped object key")
		}
		if err := s.expect(':'); err != nil {
			return err
		}
		if err := field(key); err != nil {
			return err
		}
	}
}

// array calls elem for each element of an array.
func (s *scanner) array(elem func() error) error {
	if err := s.expect('['); err != nil {
		return err
	}
	for first := true; ; first = false {
		ok, err := s.more(']', first)
		if err != nil || !ok {
			return err
		}
		if err := elem(); err != nil {
			return err
		}
	}
}

func (s *scanner) number() ([]byte, error) {
	s.ws()
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		if (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
			s.i++
			continue
		}
		break
	}
	if s.i == start {
		return nil, s.errorf("want a number")
	}
	return s.b[start:s.i], nil
}

func (s *scanner) integer() (int64, error) {
	n, err := s.number()
	if err != nil {
		return 0, err
	}
	if v, err := strconv.ParseInt(string(n), 10, 64); err == nil {
		return v, nil
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || f != float64(int64(f)) {
		return 0, s.errorf("not an integer: %s", n)
	}
	return int64(f), nil
}

func (s *scanner) real() (float64, error) {
	n, err := s.number()
	if err != nil {
		return 0, err
	}
	return strconv.ParseFloat(string(n), 64)
}

func (s *scanner) boolean() (bool, error) {
	s.ws()
	switch {
	case len(s.b)-s.i >= 4 && string(s.b[s.i:s.i+4]) == "true":
		s.i += 4
		return true, nil
	case len(s.b)-s.i >= 5 && string(s.b[s.i:s.i+5]) == "false":
		s.i += 5
		return false, nil
	}
	return false, s.errorf("want a boolean")
}

// tagged reads the `["tag",` that opens an OVSDB set, map or UUID, and
// returns the tag; the caller reads the rest and the closing bracket.
func (s *scanner) tagged() (string, error) {
	if err := s.expect('['); err != nil {
		return "", err
	}
	raw, _, err := s.rawString()
	if err != nil {
		return "", err
	}
	return string(raw), s.expect(',')
}
