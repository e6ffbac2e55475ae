package dbcmd

import (
	"cmp"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"
)

// colType is a column's type, normalized: every column is a set of
// key atoms (a map when val is not nil) with between min and max
// members (max -1: unlimited).
type colType struct {
	key, val *ovsdb.BaseType
	min, max int
}

func typeOf(c *ovsdb.ColumnSchema) colType {
	if c.TypeObj != nil {
		return colType{key: c.TypeObj.Key, val: c.TypeObj.Value, min: c.TypeObj.Min(), max: c.TypeObj.Max()}
	}
	return colType{key: &ovsdb.BaseType{Type: c.Type}, min: 1, max: 1}
}

func (t colType) isMap() bool    { return t.val != nil }
func (t colType) scalar() bool   { return t.min == 1 && t.max == 1 }
func (t colType) multiple() bool { return t.max != 1 }

// datum is a column's value: sorted, unique keys, with their values
// for a map. Atoms are string, int, float64, bool or ovsdb.UUID.
type datum struct {
	keys, vals []any
}

func compareAtoms(a, b any) int {
	switch x := a.(type) {
	case string:
		return cmp.Compare(x, b.(string))
	case int:
		return cmp.Compare(x, b.(int))
	case float64:
		return cmp.Compare(x, b.(float64))
	case bool:
		y := b.(bool)
		switch {
		case x == y:
			return 0
		case !x:
			return -1
		}
		return 1
	case ovsdb.UUID:
		return cmp.Compare(x.GoUUID, b.(ovsdb.UUID).GoUUID)
	}
	return 0
}

// normalize sorts and deduplicates (by key: for a map the last value
// given for a key wins).
func (d datum) normalize() datum {
	idx := make([]int, len(d.keys))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(i, j int) int { return compareAtoms(d.keys[i], d.keys[j]) })
	var out datum
	for _, i := range idx {
		if n := len(out.keys); n > 0 && compareAtoms(out.keys[n-1], d.keys[i]) == 0 {
			if d.vals != nil {
				out.vals[n-1] = d.vals[i]
			}
			continue
		}
		out.keys = append(out.keys, d.keys[i])
		if d.vals != nil {
			out.vals = append(out.vals, d.vals[i])
		}
	}
	if d.vals != nil && out.vals == nil {
		out.vals = []any{}
	}
	return out
}

func (d datum) find(k any) int {
	for i, x := range d.keys {
		if compareAtoms(x, k) == 0 {
			return i
		}
	}
	return -1
}

func (d datum) equal(e datum) bool {
	if len(d.keys) != len(e.keys) {
		return false
	}
	for i := range d.keys {
		if compareAtoms(d.keys[i], e.keys[i]) != 0 {
			return false
		}
		if d.vals != nil && compareAtoms(d.vals[i], e.vals[i]) != 0 {
			return false
		}
	}
	return true
}

// includes: every member (pair, for a map) of e is in d.
func (d datum) includes(e datum) bool {
	for i, k := range e.keys {
		j := d.find(k)
		if j < 0 || (d.vals != nil && compareAtoms(d.vals[j], e.vals[i]) != 0) {
			return false
		}
	}
	return true
}

// fromOVS reads a value as libovsdb decodes it from the wire.
func fromOVS(t colType, v any) (datum, error) {
	var d datum
	conv := func(b *ovsdb.BaseType, x any) (any, error) { return atomFromOVS(b, x) }
	switch x := v.(type) {
	case ovsdb.OvsMap:
		d.vals = []any{}
		for k, val := range x.GoMap {
			ka, err := conv(t.key, k)
			if err != nil {
				return d, err
			}
			va, err := conv(t.val, val)
			if err != nil {
				return d, err
			}
			d.keys, d.vals = append(d.keys, ka), append(d.vals, va)
		}
	case ovsdb.OvsSet:
		for _, e := range x.GoSet {
			a, err := conv(t.key, e)
			if err != nil {
				return d, err
			}
			d.keys = append(d.keys, a)
		}
	default:
		a, err := conv(t.key, x)
		if err != nil {
			return d, err
		}
		d.keys = []any{a}
	}
	if t.isMap() && d.vals == nil {
		d.vals = []any{}
	}
	return d.normalize(), nil
}

func atomFromOVS(b *ovsdb.BaseType, v any) (any, error) {
	switch b.Type {
	case ovsdb.TypeInteger:
		if f, ok := v.(float64); ok {
			return int(f), nil
		}
		if i, ok := v.(int); ok {
			return i, nil
		}
	case ovsdb.TypeReal:
		if f, ok := v.(float64); ok {
			return f, nil
		}
	case ovsdb.TypeBoolean:
		if x, ok := v.(bool); ok {
			return x, nil
		}
	case ovsdb.TypeString:
		if x, ok := v.(string); ok {
			return x, nil
		}
	case ovsdb.TypeUUID:
		if x, ok := v.(ovsdb.UUID); ok {
			return x, nil
		}
	}
	return nil, fmt.Errorf("unexpected %T %v for a %s", v, v, b.Type)
}

// toOVS is the value as an operation carries it.
func (d datum) toOVS(t colType) any {
	if t.isMap() {
		m := make(map[any]any, len(d.keys))
		for i, k := range d.keys {
			m[k] = d.vals[i]
		}
		return ovsdb.OvsMap{GoMap: m}
	}
	if t.scalar() && len(d.keys) == 1 {
		return d.keys[0]
	}
	return ovsdb.OvsSet{GoSet: append([]any{}, d.keys...)}
}

// The three ways ovn-nbctl prints a value (--data): string, bare, json.

var uuidRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
})

// needsQuotes is Open vSwitch's rule (ovsdb-data.c, string_needs_quotes).
func needsQuotes(s string) bool {
	if s == "" || s == "true" || s == "false" || uuidRE().MatchString(s) {
		return true
	}
	for i, r := range s {
		if r > unicode.MaxASCII {
			return true
		}
		ok := unicode.IsLetter(r) || r == '_'
		if i > 0 {
			ok = ok || unicode.IsDigit(r) || r == '-' || r == '.'
		}
		if !ok {
			return true
		}
	}
	return false
}

func atomString(a any, bare bool) string {
	switch x := a.(type) {
	case string:
		if bare || !needsQuotes(x) {
			return x
		}
		b, _ := json.Marshal(x)
		return string(b)
	case int:
		return strconv.Itoa(x)
	case float64:
		return strconv.FormatFloat(x, 'g', 15, 64)
	case bool:
		return strconv.FormatBool(x)
	case ovsdb.UUID:
		return x.GoUUID
	}
	return fmt.Sprint(a)
}

// String is ovn-nbctl's default rendering: [a, b], {k=v}, a scalar or
// an optional value's one member bare, [] for none.
func (d datum) String(t colType) string {
	var b strings.Builder
	brackets := t.multiple() || len(d.keys) == 0
	if brackets {
		b.WriteString(map[bool]string{true: "{", false: "["}[t.isMap()])
	}
	for i, k := range d.keys {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(atomString(k, false))
		if t.isMap() {
			b.WriteString("=" + atomString(d.vals[i], false))
		}
	}
	if brackets {
		b.WriteString(map[bool]string{true: "}", false: "]"}[t.isMap()])
	}
	return b.String()
}

// Bare is --bare's rendering: members separated by spaces, no quotes.
func (d datum) Bare(t colType) string {
	parts := make([]string, len(d.keys))
	for i, k := range d.keys {
		parts[i] = atomString(k, true)
		if t.isMap() {
			parts[i] += "=" + atomString(d.vals[i], true)
		}
	}
	return strings.Join(parts, " ")
}

// JSON is RFC 7047's notation, as ovn-nbctl -f json prints it.
func (d datum) JSON(t colType) any {
	atom := func(a any) any {
		if u, ok := a.(ovsdb.UUID); ok {
			if ovsdb.IsNamedUUID(u.GoUUID) {
				return []any{"named-uuid", u.GoUUID}
			}
			return []any{"uuid", u.GoUUID}
		}
		return a
	}
	if t.isMap() {
		pairs := make([]any, len(d.keys))
		for i, k := range d.keys {
			pairs[i] = []any{atom(k), atom(d.vals[i])}
		}
		return []any{"map", pairs}
	}
	if len(d.keys) == 1 {
		return atom(d.keys[0])
	}
	set := make([]any, len(d.keys))
	for i, k := range d.keys {
		set[i] = atom(k)
	}
	return []any{"set", set}
}
