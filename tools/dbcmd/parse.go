package dbcmd

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"
)

// Values on the command line are written as ovn-nbctl writes them
// (ovs-vsctl(8), "Database Values"): an atom bare or "quoted" (JSON
// string syntax), a set as [a, b] (brackets optional), a map as {k=v,
// k2=v2} (braces optional), a reference as a UUID or @name (--id). Open
// vSwitch also ends a bare atom at ':', which makes MAC addresses need
// quotes; Courier's bare atoms may hold ':' and '/', so anything
// ovn-nbctl accepts is accepted, and more.

type lexer struct {
	s   string
	pos int
}

func (l *lexer) skipSpace() {
	for l.pos < len(l.s) && (unicode.IsSpace(rune(l.s[l.pos])) || l.s[l.pos] == ',') {
		l.pos++
	}
}

func (l *lexer) peek() byte {
	if l.pos < len(l.s) {
		return l.s[l.pos]
	}
	return 0
}

// token reads a quoted string or a bare word ending at one of delims
// or a space.
func (l *lexer) token(delims string) (string, error) {
	if l.peek() == '"' {
		end := l.pos + 1
		for end < len(l.s) && l.s[end] != '"' {
			if l.s[end] == '\\' {
				end++
			}
			end++
		}
		if end >= len(l.s) {
			return "", fmt.Errorf("%s: missing closing quote", l.s)
		}
		var out string
		if err := json.Unmarshal([]byte(l.s[l.pos:end+1]), &out); err != nil {
			return "", fmt.Errorf("%s: %v", l.s[l.pos:end+1], err)
		}
		l.pos = end + 1
		return out, nil
	}
	start := l.pos
	for l.pos < len(l.s) && !unicode.IsSpace(rune(l.s[l.pos])) && !strings.ContainsRune(delims, rune(l.s[l.pos])) {
		l.pos++
	}
	if l.pos == start {
		return "", fmt.Errorf("%q: expected a value at %q", l.s, l.s[start:])
	}
	return l.s[start:l.pos], nil
}

const valueDelims = ",=[]{}"

// parseDatum reads a whole column value.
func (db *DB) parseDatum(t colType, s string) (datum, error) {
	if t.scalar() && t.key.Type == ovsdb.TypeString && s == "" {
		return datum{keys: []any{""}}, nil
	}
	l := &lexer{s: s}
	l.skipSpace()
	closing := byte(0)
	if t.isMap() && l.peek() == '{' {
		closing = '}'
	} else if !t.isMap() && l.peek() == '[' {
		closing = ']'
	}
	if closing != 0 {
		l.pos++
	}
	var d datum
	if t.isMap() {
		d.vals = []any{}
	}
	for {
		l.skipSpace()
		if l.pos >= len(l.s) || (closing != 0 && l.peek() == closing) {
			break
		}
		k, err := db.parseAtom(t.key, l)
		if err != nil {
			return d, err
		}
		d.keys = append(d.keys, k)
		if t.isMap() {
			if l.peek() != '=' {
				return d, fmt.Errorf("%q: expected KEY=VALUE in a map", s)
			}
			l.pos++
			v, err := db.parseAtom(t.val, l)
			if err != nil {
				return d, err
			}
			d.vals = append(d.vals, v)
		}
	}
	if closing != 0 {
		if l.peek() != closing {
			return d, fmt.Errorf("%q: missing %q", s, closing)
		}
		l.pos++
		l.skipSpace()
	}
	if l.pos < len(l.s) {
		return d, fmt.Errorf("%q: unexpected %q", s, l.s[l.pos:])
	}
	d = d.normalize()
	if n := len(d.keys); n < t.min || (t.max >= 0 && n > t.max) {
		return d, fmt.Errorf("%q: %d values given, the column takes %s", s, n, countText(t))
	}
	return d, nil
}

func countText(t colType) string {
	switch {
	case t.max < 0:
		return fmt.Sprintf("at least %d", t.min)
	case t.min == t.max:
		return fmt.Sprintf("exactly %d", t.min)
	}
	return fmt.Sprintf("%d to %d", t.min, t.max)
}

// parseAtomString reads one atom that is the whole of s.
func (db *DB) parseAtomString(b *ovsdb.BaseType, s string) (any, error) {
	if b.Type == ovsdb.TypeString && s == "" {
		return "", nil
	}
	l := &lexer{s: s}
	a, err := db.parseAtom(b, l)
	if err == nil && l.pos < len(s) {
		err = fmt.Errorf("%q: unexpected %q", s, s[l.pos:])
	}
	return a, err
}

func (db *DB) parseAtom(b *ovsdb.BaseType, l *lexer) (any, error) {
	tok, err := l.token(valueDelims)
	if err != nil {
		return nil, err
	}
	var a any
	switch b.Type {
	case ovsdb.TypeInteger:
		n, err := strconv.Atoi(tok)
		if err != nil {
			return nil, fmt.Errorf("%q is not a valid integer or range", tok)
		}
		a = n
	case ovsdb.TypeReal:
		f, err := strconv.ParseFloat(tok, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a valid real number", tok)
		}
		a = f
	case ovsdb.TypeBoolean:
		switch tok {
		case "true":
			a = true
		case "false":
			a = false
		default:
			return nil, fmt.Errorf("%q is not a valid boolean (use true or false)", tok)
		}
	case ovsdb.TypeUUID:
		u, err := db.parseRef(b, tok)
		if err != nil {
			return nil, err
		}
		a = u
	default:
		a = tok
	}
	if len(b.Enum) > 0 && !slices.ContainsFunc(b.Enum, func(e any) bool { return fmt.Sprint(e) == fmt.Sprint(a) }) {
		return nil, fmt.Errorf("%q is not one of the allowed values %v", tok, b.Enum)
	}
	return a, nil
}

// parseRef reads a reference: a UUID, an @name given by --id earlier in
// this invocation, or (Courier's addition) a record of the referenced
// table by name.
func (db *DB) parseRef(b *ovsdb.BaseType, tok string) (ovsdb.UUID, error) {
	if strings.HasPrefix(tok, "@") {
		if u, ok := db.ids[tok]; ok {
			return ovsdb.UUID{GoUUID: u}, nil
		}
		return ovsdb.UUID{}, fmt.Errorf("%s: no row was given this name with --id earlier in the command line", tok)
	}
	if uuidRE().MatchString(tok) {
		return ovsdb.UUID{GoUUID: strings.ToLower(tok)}, nil
	}
	if ref, err := b.RefTable(); err == nil && ref != "" {
		r, err := db.lookup(ref, tok)
		if err != nil {
			return ovsdb.UUID{}, err
		}
		return ovsdb.UUID{GoUUID: r.uuid}, nil
	}
	return ovsdb.UUID{}, fmt.Errorf("%q is not a valid UUID", tok)
}

// The operators of find and wait-until conditions, longest first.
var operators = []string{"{!=}", "{<=}", "{>=}", "{=}", "{<}", "{>}", "!=", "<=", ">=", "=", "<", ">"}

// columnArg is COLUMN[:KEY][OP VALUE] as set, find and get take it.
type columnArg struct {
	col    string
	schema *ovsdb.ColumnSchema
	t      colType
	key    any // nil: the whole column
	op     string
	value  string
}

// parseColumnArg reads arg for table; ops are the operators allowed
// (none: no value).
func (db *DB) parseColumnArg(table, arg string, ops []string) (*columnArg, error) {
	i := 0
	for i < len(arg) && (arg[i] == '_' || unicode.IsLetter(rune(arg[i])) || unicode.IsDigit(rune(arg[i]))) {
		i++
	}
	ca := &columnArg{col: arg[:i]}
	ts := db.schema.Table(table)
	ca.schema = ts.Column(ca.col)
	if ca.col == "" || ca.schema == nil {
		return nil, fmt.Errorf("%s does not contain a column whose name matches %q", table, arg[:max(i, min(len(arg), 1))])
	}
	ca.t = typeOf(ca.schema)
	rest := arg[i:]
	if strings.HasPrefix(rest, ":") {
		if !ca.t.isMap() {
			return nil, fmt.Errorf("cannot specify a key for column %s of %s, which is not a map", ca.col, table)
		}
		l := &lexer{s: rest, pos: 1}
		tok, err := l.token("=!<>{}")
		if err != nil {
			return nil, err
		}
		if ca.key, err = db.parseAtomString(ca.t.key, quoteIfNeeded(tok)); err != nil {
			return nil, err
		}
		rest = rest[l.pos:]
	}
	if len(ops) == 0 {
		if rest != "" {
			return nil, fmt.Errorf("%q: unexpected %q after the column", arg, rest)
		}
		return ca, nil
	}
	for _, op := range ops {
		if strings.HasPrefix(rest, op) {
			ca.op, ca.value = op, rest[len(op):]
			return ca, nil
		}
	}
	return nil, fmt.Errorf("%q: expected %s after the column", arg, strings.Join(ops, " or "))
}

// quoteIfNeeded lets a key read as one token carry the delimiters a
// value would stop at.
func quoteIfNeeded(s string) string {
	if strings.ContainsAny(s, valueDelims+" ") {
		b, _ := json.Marshal(s)
		return string(b)
	}
	return s
}
