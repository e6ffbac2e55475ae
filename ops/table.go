package ops

import (
	"fmt"
	"reflect"
	"slices"
	"unsafe"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"
)

// Table is one table of a schema together with its generated model,
// planned once: which field holds each column, how a value of that field
// is written in an operation (a UUID reference, an optional value, a set,
// a map, as the schema says) and how two values are compared (sets and
// maps without regard to order, an absent optional as an empty set).
//
// Operations built through a Table need neither a libovsdb client nor
// its mapper, which converts every value through reflection and
// re-validates it: at 64,000 rows that was a third of a bulk write's CPU.
// A test holds Insert to the mapper's rows for every table of both
// schemas.
//
// Naming a column the table does not have is a programming error, and
// the methods that take column names panic on it, as regexp.MustCompile
// does on a bad pattern: every column list is a constant of the caller.
type Table[T any, PT Row[T]] struct {
	name   string
	uuid   uintptr // offset of the _uuid field
	cols   []column
	byName map[string]int
}

type column struct {
	codec
	name    string
	field   int
	offset  uintptr
	mutable bool
}

// NewTable plans table of schema s for the model T, whose fields are
// tagged `ovsdb:"column"` as modelgen writes them.
func NewTable[T any, PT Row[T]](s ovsdb.DatabaseSchema, table string) (*Table[T, PT], error) {
	ts := s.Table(table)
	if ts == nil {
		return nil, fmt.Errorf("schema %s has no table %s", s.Name, table)
	}
	rt := reflect.TypeFor[T]()
	if rt.Kind() != reflect.Struct {
		return nil, fmt.Errorf("model %s of table %s is not a struct", rt, table)
	}
	t := &Table[T, PT]{name: table, byName: map[string]int{}}
	hasUUID := false
	for i := 0; i < rt.NumField(); i++ {
		f := rt.Field(i)
		name := f.Tag.Get("ovsdb")
		switch {
		case name == "":
			continue
		case name == "_uuid" && f.Type.Kind() == reflect.String:
			t.uuid, hasUUID = f.Offset, true
			continue
		}
		cs := ts.Column(name)
		if cs == nil {
			return nil, fmt.Errorf("table %s has no column %s (field %s.%s)", table, name, rt.Name(), f.Name)
		}
		cd, err := columnCodec(cs, f.Type)
		if err != nil {
			return nil, fmt.Errorf("%s.%s: %w", table, name, err)
		}
		t.byName[name] = len(t.cols)
		t.cols = append(t.cols, column{codec: cd, name: name, field: i, offset: f.Offset, mutable: cs.Mutable()})
	}
	if !hasUUID {
		return nil, fmt.Errorf("model %s has no _uuid field", rt.Name())
	}
	return t, nil
}

// MustTable is NewTable for a schema and models generated together,
// which cannot disagree at run time: it panics if they do.
func MustTable[T any, PT Row[T]](s ovsdb.DatabaseSchema, table string) *Table[T, PT] {
	t, err := NewTable[T, PT](s, table)
	if err != nil {
		panic("ops: " + err.Error())
	}
	return t
}

// Name is the table's name.
func (t *Table[T, PT]) Name() string { return t.name }

func (t *Table[T, PT]) col(name string) *column {
	i, ok := t.byName[name]
	if !ok {
		panic(fmt.Sprintf("ops: table %s has no column %s", t.name, name))
	}
	return &t.cols[i]
}

// indexes resolves column names to indexes in t.cols.
func (t *Table[T, PT]) indexes(names []string) []int {
	out := make([]int, len(names))
	for i, n := range names {
		t.col(n)
		out[i] = t.byName[n]
	}
	return out
}

func fields[T any, PT Row[T]](row PT) reflect.Value { return reflect.ValueOf(row).Elem() }

// at points at column c of the row at base.
func (c *column) at(base unsafe.Pointer) unsafe.Pointer { return unsafe.Add(base, c.offset) }

// Insert inserts row. Columns at their default (empty sets and maps,
// empty strings, zeros; libovsdb's mapper decides alike) are left out:
// ovsdb-server fills them in, and at 64,000 rows a lean insert costs it
// a fifth less. A row whose UUID is set is inserted under that name (a
// named UUID other operations of the transaction may refer to) or with
// that UUID; a row without one gets no name, which would cost the server
// a symbol-table entry per row.
func (t *Table[T, PT]) Insert(row PT) ovsdb.Operation {
	base := unsafe.Pointer(row)
	r := make(ovsdb.Row, min(len(t.cols), 8))
	for i := range t.cols {
		c := &t.cols[i]
		if f := c.at(base); !c.isDefault(f) {
			r[c.name] = c.encode(f)
		}
	}
	op := ovsdb.Operation{Op: ovsdb.OperationInsert, Table: t.name, Row: r}
	switch u := t.uuidOf(row); {
	case u == "":
	case ovsdb.IsValidUUID(u):
		op.UUID = u
	default:
		op.UUIDName = u
	}
	return op
}

// Update sets the named columns of the rows where selects to row's values.
func (t *Table[T, PT]) Update(row PT, where []ovsdb.Condition, columns ...string) ovsdb.Operation {
	if len(columns) == 0 {
		panic(fmt.Sprintf("ops: an update of %s with no columns", t.name))
	}
	base := unsafe.Pointer(row)
	r := make(ovsdb.Row, len(columns))
	for _, name := range columns {
		c := t.col(name)
		if !c.mutable {
			panic(fmt.Sprintf("ops: column %s of %s is immutable", name, t.name))
		}
		r[name] = c.encode(c.at(base))
	}
	return ovsdb.Operation{Op: ovsdb.OperationUpdate, Table: t.name, Row: r, Where: where}
}

// UpdateByUUID sets the named columns of the row whose UUID is row's.
func (t *Table[T, PT]) UpdateByUUID(row PT, columns ...string) ovsdb.Operation {
	return t.Update(row, WhereUUID(t.uuidOf(row)), columns...)
}

func (t *Table[T, PT]) uuidOf(row PT) string {
	return *(*string)(unsafe.Add(unsafe.Pointer(row), t.uuid))
}

// Delete deletes the rows where selects.
func (t *Table[T, PT]) Delete(where []ovsdb.Condition) ovsdb.Operation {
	return ovsdb.Operation{Op: ovsdb.OperationDelete, Table: t.name, Where: where}
}

// DeleteByUUID deletes one row.
func (t *Table[T, PT]) DeleteByUUID(uuid string) ovsdb.Operation { return t.Delete(WhereUUID(uuid)) }

// Mutate changes a column of the rows where selects in place: for a
// counter, or a set or map another writer also changes.
func (t *Table[T, PT]) Mutate(where []ovsdb.Condition, col string, m ovsdb.Mutator, value any) ovsdb.Operation {
	t.col(col)
	return ovsdb.Operation{Op: ovsdb.OperationMutate, Table: t.name, Where: where,
		Mutations: []ovsdb.Mutation{{Column: col, Mutator: m, Value: value}}}
}

// Select reads the named columns (every column when none is named) of
// the rows where selects.
func (t *Table[T, PT]) Select(where []ovsdb.Condition, columns ...string) ovsdb.Operation {
	for _, c := range columns {
		if c != "_uuid" {
			t.col(c)
		}
	}
	return ovsdb.Operation{Op: ovsdb.OperationSelect, Table: t.name, Where: where, Columns: columns}
}

// Cond is the condition "column fn value", with value of the column's
// field type (a *string for an optional string, say) written as the
// column is.
func (t *Table[T, PT]) Cond(col string, fn ovsdb.ConditionFunction, value any) ovsdb.Condition {
	c := t.col(col)
	v := reflect.New(reflect.TypeFor[T]().Field(c.field).Type)
	if value != nil {
		v.Elem().Set(reflect.ValueOf(value))
	}
	return ovsdb.Condition{Column: col, Function: fn, Value: c.encode(v.UnsafePointer())}
}

// Equal reports whether a and b agree in the named columns.
func (t *Table[T, PT]) Equal(a, b PT, columns ...string) bool {
	pa, pb := unsafe.Pointer(a), unsafe.Pointer(b)
	for _, name := range columns {
		c := t.col(name)
		if !c.kind.equal(c.at(pa), c.at(pb)) {
			return false
		}
	}
	return true
}

// differing appends to out the columns, of those at idx, in which have
// and want disagree.
func (t *Table[T, PT]) differing(out []string, have, want PT, idx []int) []string {
	ph, pw := unsafe.Pointer(have), unsafe.Pointer(want)
	for _, i := range idx {
		c := &t.cols[i]
		if !c.kind.equal(c.at(ph), c.at(pw)) {
			out = append(out, c.name)
		}
	}
	return out
}

// With returns a copy of row with the named columns taken from from: what
// a row becomes once an update of those columns commits.
func (t *Table[T, PT]) With(row, from PT, columns ...string) PT {
	out := PT(new(T))
	*out = *row
	vo, vf := fields(out), fields(from)
	for _, name := range columns {
		c := t.col(name)
		vo.Field(c.field).Set(vf.Field(c.field))
	}
	return out
}

// WhereUUID selects the row with the given UUID (a real one, or a name
// given to a row inserted in the same transaction).
func WhereUUID(uuid string) []ovsdb.Condition {
	return []ovsdb.Condition{{Column: "_uuid", Function: ovsdb.ConditionEqual, Value: ovsdb.UUID{GoUUID: uuid}}}
}

// EqualSets reports whether a and b hold the same members, in any order,
// as OVSDB compares sets.
func EqualSets[E comparable](a, b []E) bool {
	if len(a) != len(b) {
		return false
	}
	if slices.Equal(a, b) {
		return true
	}
	count := make(map[E]int, len(a))
	for _, x := range a {
		count[x]++
	}
	for _, x := range b {
		if count[x]--; count[x] < 0 {
			return false
		}
	}
	return true
}
