package doc

// The schema reference. Every table and column of schema/nb.ovsschema
// and schema/sb.ovsschema is described in a Markdown file beside it
// (schema/nb.md, schema/sb.md), as OVN keeps ovn-nb.xml beside
// ovn-nb.ovsschema. The file is plain Markdown a reader can open as it
// is, in a fixed shape this package parses:
//
//	# Database title
//	paragraphs about the whole database
//	## Table
//	paragraphs about the table
//	### column
//	paragraphs about the column
//
// Paragraphs are separated by blank lines; a line starting with "* " is
// a list item. Inline, only `code` is rendered specially. The generator
// adds what the schema itself says (each column's type, constraints,
// indexes) and renders the result as a man page (courier-nb(5),
// courier-sb(5)) and as Markdown under docs/. Check holds the file and
// the schema to each other: a column without a description, or a
// description of a column that no longer exists, is an error.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// SchemaDoc is one schema's description file, parsed.
type SchemaDoc struct {
	Title  string
	Text   []Block
	Tables []TableDoc
}

// TableDoc describes a table and, in the file's order, its columns.
type TableDoc struct {
	Name    string
	Text    []Block
	Columns []ColumnDoc
}

// ColumnDoc describes one column.
type ColumnDoc struct {
	Name string
	Text []Block
}

// Block is a paragraph, or a list item when Item is set.
type Block struct {
	Text string
	Item bool
}

// ParseSchemaDoc parses a description file.
func ParseSchemaDoc(src []byte) (*SchemaDoc, error) {
	d := &SchemaDoc{}
	var text *[]Block // where paragraphs go now
	var cur strings.Builder
	var item bool
	flush := func() {
		if cur.Len() > 0 && text != nil {
			*text = append(*text, Block{Text: cur.String(), Item: item})
		}
		cur.Reset()
		item = false
	}
	sc := bufio.NewScanner(bytes.NewReader(src))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), " \t")
		switch {
		case strings.HasPrefix(line, "# "):
			flush()
			d.Title, text = strings.TrimSpace(line[2:]), &d.Text
		case strings.HasPrefix(line, "## "):
			flush()
			d.Tables = append(d.Tables, TableDoc{Name: strings.TrimSpace(line[3:])})
			text = &d.Tables[len(d.Tables)-1].Text
		case strings.HasPrefix(line, "### "):
			flush()
			if len(d.Tables) == 0 {
				return nil, fmt.Errorf("line %d: column %q before any table", n, line[4:])
			}
			t := &d.Tables[len(d.Tables)-1]
			t.Columns = append(t.Columns, ColumnDoc{Name: strings.TrimSpace(line[4:])})
			text = &t.Columns[len(t.Columns)-1].Text
		case line == "":
			flush()
		case strings.HasPrefix(line, "* "):
			flush()
			cur.WriteString(line[2:])
			item = true
		case strings.HasPrefix(line, "#"):
			return nil, fmt.Errorf("line %d: only #, ## and ### headings are known: %q", n, line)
		default:
			if text == nil {
				return nil, fmt.Errorf("line %d: text before the title", n)
			}
			if cur.Len() > 0 {
				cur.WriteByte(' ')
			}
			cur.WriteString(strings.TrimSpace(line))
		}
	}
	flush()
	return d, sc.Err()
}

// DBSchema is what the reference needs of an .ovsschema file.
type DBSchema struct {
	Name    string                 `json:"name"`
	Version string                 `json:"version"`
	Tables  map[string]TableSchema `json:"tables"`
}

// TableSchema is one table of a DBSchema.
type TableSchema struct {
	Columns map[string]ColumnSchema `json:"columns"`
	Indexes [][]string              `json:"indexes"`
	MaxRows int                     `json:"maxRows"`
	IsRoot  bool                    `json:"isRoot"`
}

// ColumnSchema is one column of a TableSchema.
type ColumnSchema struct {
	Type      ColumnType `json:"type"`
	Ephemeral bool       `json:"ephemeral"`
	Mutable   *bool      `json:"mutable"`
}

// ColumnType is a column's type in RFC 7047's full form.
type ColumnType struct {
	Key   BaseType  `json:"key"`
	Value *BaseType `json:"value"`
	Min   int       `json:"min"`
	Max   int       `json:"max"` // -1 for "unlimited"
}

// UnmarshalJSON takes both forms: an atomic type's name, or the object.
func (c *ColumnType) UnmarshalJSON(b []byte) error {
	var name string
	if json.Unmarshal(b, &name) == nil {
		*c = ColumnType{Key: BaseType{Type: name}, Min: 1, Max: 1}
		return nil
	}
	var raw struct {
		Key   BaseType        `json:"key"`
		Value *BaseType       `json:"value"`
		Min   *int            `json:"min"`
		Max   json.RawMessage `json:"max"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*c = ColumnType{Key: raw.Key, Value: raw.Value, Min: 1, Max: 1}
	if raw.Min != nil {
		c.Min = *raw.Min
	}
	switch m := strings.TrimSpace(string(raw.Max)); {
	case m == "":
	case m == `"unlimited"`:
		c.Max = -1
	default:
		if err := json.Unmarshal(raw.Max, &c.Max); err != nil {
			return fmt.Errorf("max: %w", err)
		}
	}
	return nil
}

// BaseType is a key's or value's type with its constraints.
type BaseType struct {
	Type       string
	Enum       []string
	MinInteger *int
	MaxInteger *int
	MinLength  *int
	MaxLength  *int
	RefTable   string
	RefType    string
}

// UnmarshalJSON takes both forms: an atomic type's name, or the object.
func (b *BaseType) UnmarshalJSON(data []byte) error {
	var name string
	if json.Unmarshal(data, &name) == nil {
		*b = BaseType{Type: name}
		return nil
	}
	var raw struct {
		Type       string          `json:"type"`
		Enum       json.RawMessage `json:"enum"`
		MinInteger *int            `json:"minInteger"`
		MaxInteger *int            `json:"maxInteger"`
		MinLength  *int            `json:"minLength"`
		MaxLength  *int            `json:"maxLength"`
		RefTable   string          `json:"refTable"`
		RefType    string          `json:"refType"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	*b = BaseType{Type: raw.Type, MinInteger: raw.MinInteger, MaxInteger: raw.MaxInteger,
		MinLength: raw.MinLength, MaxLength: raw.MaxLength, RefTable: raw.RefTable, RefType: raw.RefType}
	if len(raw.Enum) > 0 {
		// ["set", [values...]] or a single value
		var set []json.RawMessage
		if err := json.Unmarshal(raw.Enum, &set); err == nil && len(set) == 2 {
			var vals []any
			if err := json.Unmarshal(set[1], &vals); err != nil {
				return fmt.Errorf("enum: %w", err)
			}
			for _, v := range vals {
				b.Enum = append(b.Enum, fmt.Sprint(v))
			}
		} else {
			var v any
			if err := json.Unmarshal(raw.Enum, &v); err != nil {
				return fmt.Errorf("enum: %w", err)
			}
			b.Enum = []string{fmt.Sprint(v)}
		}
	}
	if b.RefTable != "" && b.RefType == "" {
		b.RefType = "strong"
	}
	return nil
}

// ParseSchema parses an .ovsschema file.
func ParseSchema(src []byte) (*DBSchema, error) {
	var s DBSchema
	if err := json.Unmarshal(src, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// Check returns every disagreement between a description file and its
// schema: a table or column without a description, one described that
// the schema does not have, one described twice, and an empty
// description.
func Check(d *SchemaDoc, s *DBSchema) []error {
	var errs []error
	if d.Title == "" || len(d.Text) == 0 {
		errs = append(errs, fmt.Errorf("%s: the file needs a title and a paragraph about the database", s.Name))
	}
	seenT := map[string]bool{}
	for _, t := range d.Tables {
		ts, ok := s.Tables[t.Name]
		switch {
		case seenT[t.Name]:
			errs = append(errs, fmt.Errorf("table %s is described twice", t.Name))
			continue
		case !ok:
			errs = append(errs, fmt.Errorf("table %s is described but the schema has no such table", t.Name))
			continue
		}
		seenT[t.Name] = true
		if len(t.Text) == 0 {
			errs = append(errs, fmt.Errorf("table %s has no description", t.Name))
		}
		seenC := map[string]bool{}
		for _, c := range t.Columns {
			switch _, ok := ts.Columns[c.Name]; {
			case seenC[c.Name]:
				errs = append(errs, fmt.Errorf("column %s.%s is described twice", t.Name, c.Name))
			case !ok:
				errs = append(errs, fmt.Errorf("column %s.%s is described but no longer exists", t.Name, c.Name))
			case len(c.Text) == 0:
				errs = append(errs, fmt.Errorf("column %s.%s has an empty description", t.Name, c.Name))
			}
			seenC[c.Name] = true
		}
		for _, name := range sortedKeys(ts.Columns) {
			if !seenC[name] {
				errs = append(errs, fmt.Errorf("column %s.%s has no documentation", t.Name, name))
			}
		}
	}
	for _, name := range sortedKeys(s.Tables) {
		if !seenT[name] {
			errs = append(errs, fmt.Errorf("table %s has no documentation", name))
		}
	}
	return errs
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// TypeString says in words what a column holds, as ovsdb-doc does in
// OVN's manuals: "optional integer, 1 to 16777215", "set of up to 16
// strings", "map of string-string pairs", "reference to Vxnet".
func TypeString(c ColumnType) string {
	key := baseString(c.Key, c.Max != 1)
	switch {
	case c.Value != nil:
		s := "map of " + baseString(c.Key, false) + " to " + baseString(*c.Value, false)
		if c.Min == 0 && c.Max == -1 {
			return s
		}
		return s + fmt.Sprintf(" (%s pairs)", bounds(c.Min, c.Max))
	case c.Min == 1 && c.Max == 1:
		return key
	case c.Min == 0 && c.Max == 1:
		return "optional " + key
	case c.Min == 0 && c.Max == -1:
		return "set of " + key
	case c.Min == 0:
		return fmt.Sprintf("set of up to %d %s", c.Max, key)
	default:
		return fmt.Sprintf("set of %s %s", bounds(c.Min, c.Max), key)
	}
}

func bounds(min, max int) string {
	if max == -1 {
		return fmt.Sprintf("%d or more", min)
	}
	return fmt.Sprintf("%d to %d", min, max)
}

// baseString is one atom's type and constraints; plural for sets.
func baseString(b BaseType, plural bool) string {
	name := b.Type
	if b.RefTable != "" {
		name = "reference to " + b.RefTable
		if plural {
			name = "references to " + b.RefTable
		}
		if b.RefType == "weak" {
			name = "weak " + name
		}
		return name
	}
	if plural {
		name += "s"
	}
	var cons []string
	switch {
	case len(b.Enum) > 0:
		cons = append(cons, "one of "+strings.Join(b.Enum, ", "))
	case b.MinInteger != nil && b.MaxInteger != nil:
		cons = append(cons, fmt.Sprintf("%d to %d", *b.MinInteger, *b.MaxInteger))
	case b.MinInteger != nil:
		cons = append(cons, fmt.Sprintf("at least %d", *b.MinInteger))
	case b.MaxInteger != nil:
		cons = append(cons, fmt.Sprintf("at most %d", *b.MaxInteger))
	}
	switch {
	case b.MinLength != nil && b.MaxLength != nil && *b.MinLength == *b.MaxLength:
		cons = append(cons, fmt.Sprintf("%d characters", *b.MinLength))
	case b.MinLength != nil && b.MaxLength != nil:
		cons = append(cons, fmt.Sprintf("%d to %d characters", *b.MinLength, *b.MaxLength))
	case b.MaxLength != nil:
		cons = append(cons, fmt.Sprintf("at most %d characters", *b.MaxLength))
	}
	if len(cons) > 0 {
		name += " (" + strings.Join(cons, "; ") + ")"
	}
	return name
}
