package dbcmd

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/tools/cmdline"
)

var (
	ifExists = cmdline.Flag{Name: "if-exists", Usage: "do nothing (print nothing) for a record that does not exist"}
	columns  = cmdline.Flag{Name: "columns", Arg: "COLUMN[,COLUMN...]", Usage: "print only these columns, in this order"}
	idFlag   = cmdline.Flag{Name: "id", Arg: "@NAME", Usage: "name the row @NAME for later commands of the same invocation"}
)

// Commands are the generic commands for a tool whose state S holds a
// DB (get returns it).
func Commands[S any](get func(S) (*DB, error)) []*cmdline.Command[S] {
	run := func(fn func(db *DB, inv *cmdline.Invocation, out *cmdline.Output) error) func(S, *cmdline.Invocation, *cmdline.Output) error {
		return func(st S, inv *cmdline.Invocation, out *cmdline.Output) error {
			db, err := get(st)
			if err != nil {
				return err
			}
			table, err := db.schema.table(inv.Args[0])
			if err != nil {
				return err
			}
			inv.Args[0] = table
			return fn(db, inv, out)
		}
	}
	return []*cmdline.Command[S]{
		{Name: "list", Args: "TABLE [RECORD...]", Summary: "print every record of TABLE, or the ones named",
			Min: 1, Max: -1, Flags: []cmdline.Flag{columns}, Run: run(cmdList)},
		{Name: "find", Args: "TABLE [COLUMN[:KEY]{=,!=,<,>,<=,>=,{=},{!=},{<},{>},{<=},{>=}}VALUE...]",
			Summary: "print the records of TABLE for which every condition holds",
			Min:     1, Max: -1, Flags: []cmdline.Flag{columns}, Run: run(cmdFind)},
		{Name: "get", Args: "TABLE RECORD [COLUMN[:KEY]...]", Summary: "print values of a record, one a line",
			Min: 2, Max: -1, Flags: []cmdline.Flag{ifExists, idFlag}, Run: run(cmdGet)},
		{Name: "set", Args: "TABLE RECORD COLUMN[:KEY]=VALUE...", Summary: "set columns (or keys of map columns) of a record",
			Min: 3, Max: -1, Flags: []cmdline.Flag{ifExists}, Run: run(cmdSet)},
		{Name: "add", Args: "TABLE RECORD COLUMN [KEY=]VALUE...", Summary: "add members to a set or pairs to a map column (a key already there keeps its value)",
			Min: 4, Max: -1, Flags: []cmdline.Flag{ifExists}, Run: run(cmdAdd)},
		{Name: "remove", Args: "TABLE RECORD COLUMN KEY|VALUE|KEY=VALUE...", Summary: "remove members from a set, or keys (or pairs) from a map column",
			Min: 4, Max: -1, Flags: []cmdline.Flag{ifExists}, Run: run(cmdRemove)},
		{Name: "clear", Args: "TABLE RECORD COLUMN...", Summary: "empty set or map columns",
			Min: 3, Max: -1, Flags: []cmdline.Flag{ifExists}, Run: run(cmdClear)},
		{Name: "create", Args: "TABLE COLUMN[:KEY]=VALUE...", Summary: "create a record and print its UUID (a row of a non-root table needs --id and a reference)",
			Min: 1, Max: -1, Flags: []cmdline.Flag{idFlag}, Run: run(cmdCreate)},
		{Name: "destroy", Args: "TABLE RECORD...", Summary: "delete records (--all: every record of TABLE)",
			Min: 1, Max: -1, Flags: []cmdline.Flag{ifExists, {Name: "all", Usage: "every record of the table"}}, Run: run(cmdDestroy)},
		{Name: "wait-until", Args: "TABLE RECORD [COLUMN[:KEY]=VALUE...]", Summary: "wait until the record exists and every condition holds",
			Min: 2, Max: -1, Run: run(cmdWaitUntil)},
	}
}

func cmdList(db *DB, inv *cmdline.Invocation, out *cmdline.Output) error {
	table := inv.Args[0]
	var rows []*row
	if len(inv.Args) > 1 {
		for _, k := range inv.Args[1:] {
			r, err := db.lookup(table, k)
			if err == nil {
				err = r.readable(table)
			}
			if err != nil {
				return err
			}
			rows = append(rows, r)
		}
	} else {
		var err error
		if rows, err = db.sortedRows(table); err != nil {
			return err
		}
	}
	return db.printRecords(table, rows, inv.Value("columns"), out)
}

func cmdFind(db *DB, inv *cmdline.Invocation, out *cmdline.Output) error {
	table := inv.Args[0]
	var conds []*columnArg
	for _, a := range inv.Args[1:] {
		c, err := db.parseColumnArg(table, a, operators)
		if err != nil {
			return err
		}
		conds = append(conds, c)
	}
	rows, err := db.sortedRows(table)
	if err != nil {
		return err
	}
	var match []*row
	for _, r := range rows {
		ok, err := db.holds(table, r, conds)
		if err != nil {
			return err
		}
		if ok {
			match = append(match, r)
		}
	}
	return db.printRecords(table, match, inv.Value("columns"), out)
}

// holds says whether every condition holds for r.
func (db *DB) holds(table string, r *row, conds []*columnArg) (bool, error) {
	for _, c := range conds {
		ok, err := db.holdsOne(table, r, c)
		if err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

func (db *DB) holdsOne(table string, r *row, c *columnArg) (bool, error) {
	have := db.value(table, r, c.col)
	t := c.t
	var want datum
	if c.key != nil {
		vt := colType{key: t.val, min: 1, max: 1}
		a, err := db.parseAtomString(t.val, c.value)
		if err != nil {
			return false, err
		}
		want = datum{keys: []any{a}}
		i := have.find(c.key)
		if i < 0 {
			return c.op == "!=" || c.op == "{!=}", nil
		}
		have, t = datum{keys: []any{have.vals[i]}}, vt
	} else {
		var err error
		st := t
		st.min, st.max = 0, -1
		if want, err = db.parseDatum(st, c.value); err != nil {
			return false, err
		}
	}
	switch c.op {
	case "=", "{=}":
		return have.equal(want), nil
	case "!=", "{!=}":
		return !have.equal(want), nil
	case "{<=}":
		return want.includes(have), nil
	case "{<}":
		return want.includes(have) && !have.equal(want), nil
	case "{>=}":
		return have.includes(want), nil
	case "{>}":
		return have.includes(want) && !have.equal(want), nil
	}
	// <, <=, >, >=: one value against one value.
	if len(have.keys) != 1 || len(want.keys) != 1 {
		return false, nil
	}
	n := compareAtoms(have.keys[0], want.keys[0])
	switch c.op {
	case "<":
		return n < 0, nil
	case "<=":
		return n <= 0, nil
	case ">":
		return n > 0, nil
	}
	return n >= 0, nil
}

func cmdGet(db *DB, inv *cmdline.Invocation, out *cmdline.Output) error {
	table := inv.Args[0]
	r, err := db.lookup(table, inv.Args[1])
	if err != nil {
		if inv.Has("if-exists") {
			return nil
		}
		return err
	}
	if err := r.readable(table); err != nil {
		return err
	}
	if id := inv.Value("id"); id != "" {
		if err := db.nameRow(id, r.uuid); err != nil {
			return err
		}
	}
	var lines []string
	for _, a := range inv.Args[2:] {
		c, err := db.parseColumnArg(table, a, nil)
		if err != nil {
			return err
		}
		d := db.value(table, r, c.col)
		t := c.t
		if c.key != nil {
			i := d.find(c.key)
			if i < 0 {
				if inv.Has("if-exists") {
					continue
				}
				return fmt.Errorf("no key %s in %s record %q column %s", atomString(c.key, false), table, inv.Args[1], c.col)
			}
			d, t = datum{keys: []any{d.vals[i]}}, colType{key: t.val, min: 1, max: 1}
		}
		lines = append(lines, d.String(t))
	}
	// ovn-nbctl's get prints values in full even with --bare.
	out.Add(cmdline.PartFunc(func(w io.Writer, o *cmdline.Output) error {
		for _, l := range lines {
			fmt.Fprintln(w, l)
		}
		return nil
	}))
	return nil
}

func (db *DB) nameRow(id, uuid string) error {
	if !strings.HasPrefix(id, "@") || len(id) < 2 {
		return fmt.Errorf("--id=%s: the name must start with @", id)
	}
	if _, ok := db.ids[id]; ok {
		return fmt.Errorf("--id=%s: the name is already given to a row", id)
	}
	db.ids[id] = uuid
	return nil
}

func cmdSet(db *DB, inv *cmdline.Invocation, _ *cmdline.Output) error {
	table := inv.Args[0]
	r, err := db.lookup(table, inv.Args[1])
	if err != nil {
		if inv.Has("if-exists") {
			return nil
		}
		return err
	}
	return db.setColumns(table, r, inv.Args[2:])
}

// setColumns applies COLUMN[:KEY]=VALUE arguments to r.
func (db *DB) setColumns(table string, r *row, args []string) error {
	for _, a := range args {
		c, err := db.parseColumnArg(table, a, []string{"="})
		if err != nil {
			return err
		}
		if c.col == "_uuid" || !c.schema.Mutable() && r.insert < 0 {
			return fmt.Errorf("column %s of %s cannot be changed", c.col, table)
		}
		if c.key != nil {
			v, err := db.parseAtomString(c.t.val, c.value)
			if err != nil {
				return err
			}
			db.mutate(table, r, c.col, false, datum{keys: []any{c.key}})
			db.mutate(table, r, c.col, true, datum{keys: []any{c.key}, vals: []any{v}})
			continue
		}
		d, err := db.parseDatum(c.t, c.value)
		if err != nil {
			return err
		}
		db.write(table, r, c.col, d)
	}
	return nil
}

// members reads add's and remove's VALUE arguments (KEY=VALUE or, for
// remove from a map, KEY alone).
func (db *DB) members(table, col string, args []string, byKey bool) (colType, datum, error) {
	cs := db.schema.Tables[table].Column(col)
	if cs == nil {
		return colType{}, datum{}, fmt.Errorf("%s does not contain a column whose name matches %q", table, col)
	}
	t := typeOf(cs)
	st := t
	st.min, st.max = 0, -1
	var all datum
	if t.isMap() {
		all.vals = []any{}
	}
	keyOnly := byKey && t.isMap()
	for _, a := range args {
		if keyOnly && !strings.Contains(a, "=") {
			k, err := db.parseAtomString(t.key, a)
			if err != nil {
				return t, all, err
			}
			all.keys = append(all.keys, k)
			all.vals = nil
			continue
		}
		if keyOnly && all.vals == nil && len(all.keys) > 0 {
			return t, all, fmt.Errorf("remove: give either keys or KEY=VALUE pairs, not both")
		}
		d, err := db.parseDatum(st, a)
		if err != nil {
			return t, all, err
		}
		all.keys = append(all.keys, d.keys...)
		if t.isMap() {
			all.vals = append(all.vals, d.vals...)
		}
	}
	return t, all, nil
}

func cmdAdd(db *DB, inv *cmdline.Invocation, _ *cmdline.Output) error {
	return addRemove(db, inv, true)
}

func cmdRemove(db *DB, inv *cmdline.Invocation, _ *cmdline.Output) error {
	return addRemove(db, inv, false)
}

func addRemove(db *DB, inv *cmdline.Invocation, insert bool) error {
	table, col := inv.Args[0], inv.Args[2]
	r, err := db.lookup(table, inv.Args[1])
	if err != nil {
		if inv.Has("if-exists") {
			return nil
		}
		return err
	}
	t, d, err := db.members(table, col, inv.Args[3:], !insert)
	if err != nil {
		return err
	}
	if !t.multiple() && !(t.min == 0 && t.max == 1) {
		return fmt.Errorf("column %s of %s holds exactly one value: use set", col, table)
	}
	db.mutate(table, r, col, insert, d)
	n := len(db.value(table, r, col).keys)
	if n < t.min || (t.max >= 0 && n > t.max) {
		return fmt.Errorf("%s column %s would hold %d values; it takes %s", table, col, n, countText(t))
	}
	return nil
}

func cmdClear(db *DB, inv *cmdline.Invocation, _ *cmdline.Output) error {
	table := inv.Args[0]
	r, err := db.lookup(table, inv.Args[1])
	if err != nil {
		if inv.Has("if-exists") {
			return nil
		}
		return err
	}
	for _, col := range inv.Args[2:] {
		cs := db.schema.Tables[table].Column(col)
		if cs == nil {
			return fmt.Errorf("%s does not contain a column whose name matches %q", table, col)
		}
		t := typeOf(cs)
		if t.min > 0 {
			return fmt.Errorf("column %s of %s cannot be empty (it takes %s values)", col, table, countText(t))
		}
		empty := datum{}
		if t.isMap() {
			empty.vals = []any{}
		}
		db.write(table, r, col, empty)
	}
	return nil
}

func cmdCreate(db *DB, inv *cmdline.Invocation, out *cmdline.Output) error {
	table := inv.Args[0]
	id := inv.Value("id")
	root := db.schema.Tables[table].IsRoot
	if !root && id == "" {
		return fmt.Errorf("%s is not a root table: a row created without --id=@NAME and a reference to it from another row would be deleted at once", table)
	}
	rs, err := db.rows(table)
	if err != nil {
		return err
	}
	u := db.newID()
	if id != "" {
		if err := db.nameRow(id, u); err != nil {
			return err
		}
	}
	r := &row{uuid: u, cols: map[string]datum{}}
	r.insert = db.append(ovsdb.Operation{Op: ovsdb.OperationInsert, Table: table, UUIDName: u, Row: ovsdb.Row{}})
	rs[u] = r
	if err := db.setColumns(table, r, inv.Args[1:]); err != nil {
		return err
	}
	out.Add(cmdline.PartFunc(func(w io.Writer, _ *cmdline.Output) error {
		if r.insert < len(db.res) {
			fmt.Fprintln(w, db.res[r.insert].UUID.GoUUID)
		}
		return nil
	}))
	return nil
}

func cmdDestroy(db *DB, inv *cmdline.Invocation, _ *cmdline.Output) error {
	table := inv.Args[0]
	var rows []*row
	if inv.Has("all") {
		if len(inv.Args) > 1 {
			return fmt.Errorf("destroy --all takes no records")
		}
		var err error
		if rows, err = db.sortedRows(table); err != nil {
			return err
		}
	}
	for _, k := range inv.Args[1:] {
		r, err := db.lookup(table, k)
		if err != nil {
			if inv.Has("if-exists") {
				continue
			}
			return err
		}
		rows = append(rows, r)
	}
	for _, r := range rows {
		if r.insert >= 0 || r.pending {
			return fmt.Errorf("destroy: %s was created by this same invocation", r.uuid)
		}
		delete(db.tables[table], r.uuid)
		db.append(ovsdb.Operation{Op: ovsdb.OperationDelete, Table: table, Where: whereUUID(r.uuid)})
	}
	return nil
}

// cmdWaitUntil reads the table again until the record exists and every
// condition holds; the invocation's timeout bounds the wait.
func cmdWaitUntil(db *DB, inv *cmdline.Invocation, _ *cmdline.Output) error {
	table := inv.Args[0]
	var conds []*columnArg
	for _, a := range inv.Args[2:] {
		c, err := db.parseColumnArg(table, a, []string{"="})
		if err != nil {
			return err
		}
		conds = append(conds, c)
	}
	for {
		if r, err := db.lookup(table, inv.Args[1]); err == nil {
			ok, err := db.holds(table, r, conds)
			if err != nil || ok {
				return err
			}
		} else if db.ctx.Err() != nil {
			return err
		}
		select {
		case <-db.ctx.Done():
			return fmt.Errorf("wait-until %s %s: %w", table, inv.Args[1], context.Cause(db.ctx))
		case <-time.After(100 * time.Millisecond):
		}
		delete(db.tables, table)
	}
}
