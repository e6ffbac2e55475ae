// Package dbcmd is the generic database commands of courier-nbctl and
// courier-sbctl: list, find, get, set, add, remove, clear, create,
// destroy and wait-until, with ovn-nbctl's syntax and output, written
// once over a schema (any table, any column type) rather than per table.
//
// A DB is one invocation's view: tables are read with one "select" when
// a command first needs them, and every command's changes are applied
// to that view as well as appended as operations to the invocation's
// transaction, so that a later command of the same "--" chain sees
// them (a row made by create with --id=@name can be set, added to or
// referred to by @name). Nothing is sent before every command has
// succeeded; the caller commits and hands the results back (Committed)
// for create to print the new row's UUID.
//
// It knows no table's meaning; which column names a row comes from the
// schema's one-column indexes, or from the caller (Names).
package dbcmd

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/ops"
)

// Schema is a database schema with what the commands need beyond
// libovsdb's parse of it.
type Schema struct {
	*ovsdb.DatabaseSchema
	maxRows map[string]int
	names   map[string]string
}

// ParseSchema reads an .ovsschema. names maps a table to the column a
// record may be named by where the schema's indexes do not say (or to
// override them).
func ParseSchema(raw []byte, names map[string]string) (*Schema, error) {
	var s ovsdb.DatabaseSchema
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, err
	}
	var extra struct {
		Tables map[string]struct {
			MaxRows int `json:"maxRows"`
		} `json:"tables"`
	}
	if err := json.Unmarshal(raw, &extra); err != nil {
		return nil, err
	}
	out := &Schema{DatabaseSchema: &s, maxRows: map[string]int{}, names: map[string]string{}}
	for name, t := range extra.Tables {
		out.maxRows[name] = t.MaxRows
	}
	for name, t := range s.Tables {
		for _, idx := range t.Indexes {
			if len(idx) == 1 && t.Columns[idx[0]] != nil && t.Columns[idx[0]].Type == ovsdb.TypeString {
				out.names[name] = idx[0]
				break
			}
		}
	}
	for t, c := range names {
		out.names[t] = c
	}
	return out, nil
}

// Table resolves a table name as ovn-nbctl does: exactly, or else a
// case-insensitive match.
func (s *Schema) table(name string) (string, error) {
	if _, ok := s.Tables[name]; ok {
		return name, nil
	}
	for t := range s.Tables {
		if strings.EqualFold(t, name) {
			return t, nil
		}
	}
	return "", fmt.Errorf("unknown table %q (the %s tables are %s)", name, s.Name, strings.Join(s.tableNames(), ", "))
}

func (s *Schema) tableNames() []string {
	var out []string
	for t := range s.Tables {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// row is one record as the invocation sees it.
type row struct {
	uuid string
	cols map[string]datum
	// insert is the index of the operation that inserts it (created by
	// this invocation), else -1.
	insert int
	// pending: created by another command of this invocation (Pending);
	// it can be written, not read.
	pending bool
}

// DB is one invocation's view of a database (see the package comment).
type DB struct {
	schema *Schema
	ctx    context.Context
	t      ops.Transactor
	ops    *[]ovsdb.Operation
	tables map[string]map[string]*row
	ids    map[string]string // "@name" -> named UUID
	named  int
	res    []ovsdb.OperationResult
	// Pending, when set, finds a row that another command of the same
	// invocation creates (courier-nbctl's vpc-add before "set VPC x"):
	// its named UUID, by table and name.
	Pending func(table, name string) (string, bool)
	// Writes says whether a command wrote: a transaction carrying
	// generic writes cannot be matched against a fresh read, so the
	// caller must not run it again when its answer was lost.
	Writes bool
}

// New returns a view reading through t and appending operations to txn.
func New(ctx context.Context, s *Schema, t ops.Transactor, txn *[]ovsdb.Operation) *DB {
	return &DB{schema: s, ctx: ctx, t: t, ops: txn, tables: map[string]map[string]*row{}, ids: map[string]string{}}
}

// Committed hands over the transaction's results (create prints them).
func (db *DB) Committed(res []ovsdb.OperationResult) { db.res = res }

// rows reads a table once per invocation.
func (db *DB) rows(table string) (map[string]*row, error) {
	if rs, ok := db.tables[table]; ok {
		return rs, nil
	}
	rs, err := db.read(table)
	if err == nil {
		db.tables[table] = rs
	}
	return rs, err
}

func (db *DB) read(table string) (map[string]*row, error) {
	res, err := ops.Transact(db.ctx, db.t, ops.SelectAll(table)...)
	if err != nil {
		return nil, err
	}
	ts := db.schema.Tables[table]
	rs := map[string]*row{}
	for _, r := range res[0].Rows {
		u, _ := r["_uuid"].(ovsdb.UUID)
		rec := &row{uuid: u.GoUUID, cols: map[string]datum{}, insert: -1}
		for col, cs := range ts.Columns {
			v, ok := r[col]
			if !ok {
				continue
			}
			d, err := fromOVS(typeOf(cs), v)
			if err != nil {
				return nil, fmt.Errorf("%s column %s: %w", table, col, err)
			}
			rec.cols[col] = d
		}
		rs[rec.uuid] = rec
	}
	return rs, nil
}

// readable refuses to read a row another command of this invocation
// creates: what it will hold is not known here.
func (r *row) readable(table string) error {
	if r.pending {
		return fmt.Errorf("%s %s is created by this same invocation: read it in the next one", table, r.uuid)
	}
	return nil
}

// value is a column of r, the column's default when it was not read.
func (db *DB) value(table string, r *row, col string) datum {
	if col == "_uuid" {
		return datum{keys: []any{ovsdb.UUID{GoUUID: r.uuid}}}
	}
	if d, ok := r.cols[col]; ok {
		return d
	}
	return defaultDatum(typeOf(db.schema.Tables[table].Columns[col]))
}

// defaultDatum is what OVSDB gives a column not set at insert.
func defaultDatum(t colType) datum {
	d := datum{}
	if t.isMap() {
		d.vals = []any{}
	}
	if t.min == 0 {
		return d
	}
	var zero any
	switch t.key.Type {
	case ovsdb.TypeInteger:
		zero = 0
	case ovsdb.TypeReal:
		zero = 0.0
	case ovsdb.TypeBoolean:
		zero = false
	case ovsdb.TypeUUID:
		zero = ovsdb.UUID{GoUUID: "00000000-0000-0000-0000-000000000000"}
	default:
		zero = ""
		if len(t.key.Enum) > 0 {
			zero = fmt.Sprint(t.key.Enum[0])
		}
	}
	d.keys = []any{zero}
	return d
}

// lookup finds a record: @name, a UUID (or a unique prefix of one, at
// least 4 digits), "." in a table of one row, or its name.
func (db *DB) lookup(table, key string) (*row, error) {
	rs, err := db.rows(table)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(key, "@") {
		if u, ok := db.ids[key]; ok && rs[u] != nil {
			return rs[u], nil
		}
		return nil, fmt.Errorf("%s: no row of %s was given this name with --id earlier in the command line", key, table)
	}
	if r := rs[strings.ToLower(key)]; r != nil {
		return r, nil
	}
	if key == "." && db.schema.maxRows[table] == 1 {
		for _, r := range rs {
			return r, nil
		}
	}
	var found []*row
	if col := db.schema.names[table]; col != "" {
		for _, r := range rs {
			if d := r.cols[col]; len(d.keys) == 1 && d.keys[0] == key {
				found = append(found, r)
			}
		}
	}
	if len(found) == 0 && len(key) >= 4 && strings.Trim(strings.ToLower(key), "0123456789abcdef-") == "" {
		for u, r := range rs {
			if strings.HasPrefix(u, strings.ToLower(key)) {
				found = append(found, r)
			}
		}
	}
	if len(found) == 0 && db.Pending != nil {
		if u, ok := db.Pending(table, key); ok {
			r := &row{uuid: u, cols: map[string]datum{}, insert: -1, pending: true}
			rs[u] = r
			return r, nil
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("no row %q in table %s", key, table)
	case 1:
		return found[0], nil
	}
	return nil, fmt.Errorf("multiple rows in %s match %q", table, key)
}

// sortedRows lists a table's rows by name (when it has one), then UUID.
func (db *DB) sortedRows(table string) ([]*row, error) {
	rs, err := db.rows(table)
	if err != nil {
		return nil, err
	}
	out := make([]*row, 0, len(rs))
	for _, r := range rs {
		out = append(out, r)
	}
	col := db.schema.names[table]
	slices.SortFunc(out, func(a, b *row) int {
		if col != "" {
			if c := strings.Compare(a.cols[col].String(colType{key: &ovsdb.BaseType{Type: "string"}, min: 1, max: 1}),
				b.cols[col].String(colType{key: &ovsdb.BaseType{Type: "string"}, min: 1, max: 1})); c != 0 {
				return c
			}
		}
		return strings.Compare(a.uuid, b.uuid)
	})
	return out, nil
}

// newID returns a fresh named UUID for a row this invocation inserts.
func (db *DB) newID() string {
	db.named++
	return fmt.Sprintf("dbcmd_row%d", db.named)
}

func (db *DB) append(op ovsdb.Operation) int {
	db.Writes = true
	*db.ops = append(*db.ops, op)
	return len(*db.ops) - 1
}

func whereUUID(u string) []ovsdb.Condition {
	return []ovsdb.Condition{{Column: "_uuid", Function: ovsdb.ConditionEqual, Value: ovsdb.UUID{GoUUID: u}}}
}

// write sets a whole column of r, in the view and in the transaction.
func (db *DB) write(table string, r *row, col string, d datum) {
	t := typeOf(db.schema.Tables[table].Columns[col])
	r.cols[col] = d
	if r.insert >= 0 {
		(*db.ops)[r.insert].Row[col] = d.toOVS(t)
		return
	}
	db.append(ovsdb.Operation{Op: ovsdb.OperationUpdate, Table: table, Where: whereUUID(r.uuid),
		Row: ovsdb.Row{col: d.toOVS(t)}})
}

// mutate inserts into or deletes from a set or map column, in the view
// and (as a mutation, which composes with other writers') in the
// transaction.
func (db *DB) mutate(table string, r *row, col string, insert bool, d datum) {
	t := typeOf(db.schema.Tables[table].Columns[col])
	cur := db.value(table, r, col)
	next := datum{keys: slices.Clone(cur.keys), vals: slices.Clone(cur.vals)}
	for i, k := range d.keys {
		j := next.find(k)
		switch {
		case insert && j < 0:
			next.keys = append(next.keys, k)
			if t.isMap() {
				next.vals = append(next.vals, d.vals[i])
			}
		case !insert && j >= 0 && (d.vals == nil || !t.isMap() || compareAtoms(next.vals[j], d.vals[i]) == 0):
			next.keys = slices.Delete(next.keys, j, j+1)
			if t.isMap() {
				next.vals = slices.Delete(next.vals, j, j+1)
			}
		}
	}
	next = next.normalize()
	if r.insert >= 0 {
		r.cols[col] = next
		(*db.ops)[r.insert].Row[col] = next.toOVS(t)
		return
	}
	r.cols[col] = next
	mut := ovsdb.MutateOperationInsert
	if !insert {
		mut = ovsdb.MutateOperationDelete
	}
	var value any
	switch {
	case t.isMap() && d.vals == nil: // delete by key
		value = ovsdb.OvsSet{GoSet: append([]any{}, d.keys...)}
	default:
		mt := t
		mt.min, mt.max = 0, -1
		value = d.toOVS(mt)
	}
	db.append(ovsdb.Operation{Op: ovsdb.OperationMutate, Table: table, Where: whereUUID(r.uuid),
		Mutations: []ovsdb.Mutation{{Column: col, Mutator: mut, Value: value}}})
}
