package dbcmd

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"github.com/courier-sdn/courier/tools/cmdline"
)

// records is list's and find's output: what ovn-nbctl prints for the
// same command in each format.
type records struct {
	headings []string
	cells    [][]cell
}

type cell struct {
	str, bare string
	json      any
}

// printRecords adds rows of table to out, with the columns asked for
// (all by default: _uuid, then the others by name).
func (db *DB) printRecords(table string, rows []*row, cols string, out *cmdline.Output) error {
	ts := db.schema.Tables[table]
	var names []string
	if cols == "" {
		for c := range ts.Columns {
			names = append(names, c)
		}
		sort.Strings(names)
		names = append([]string{"_uuid"}, names...)
	} else {
		for _, c := range strings.Split(cols, ",") {
			c = strings.TrimSpace(c)
			if ts.Column(c) == nil {
				return fmt.Errorf("%s does not contain a column whose name matches %q", table, c)
			}
			names = append(names, c)
		}
	}
	rec := records{headings: names}
	for _, r := range rows {
		var cs []cell
		for _, c := range names {
			t := typeOf(ts.Column(c))
			d := db.value(table, r, c)
			cs = append(cs, cell{str: d.String(t), bare: d.Bare(t), json: d.JSON(t)})
		}
		rec.cells = append(rec.cells, cs)
	}
	out.Add(rec)
	return nil
}

func (p records) Write(w io.Writer, o *cmdline.Output) error {
	format := cmdline.FormatList
	if o.FormatSet {
		format = o.Format
	}
	if o.Bare {
		format = cmdline.FormatList
	}
	text := func(c cell) string {
		if o.Bare {
			return c.bare
		}
		return c.str
	}
	switch format {
	case cmdline.FormatJSON:
		data := make([][]any, len(p.cells))
		for i, r := range p.cells {
			for _, c := range r {
				data[i] = append(data[i], c.json)
			}
		}
		out := map[string]any{"data": data}
		if !o.NoHeadings {
			out["headings"] = p.headings
		}
		b, err := json.Marshal(out)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(w, string(b))
		return err
	case cmdline.FormatCSV:
		cw := csv.NewWriter(w)
		if !o.NoHeadings {
			cw.Write(p.headings)
		}
		for _, r := range p.cells {
			var line []string
			for _, c := range r {
				line = append(line, text(c))
			}
			cw.Write(line)
		}
		cw.Flush()
		return cw.Error()
	case cmdline.FormatTable:
		return p.table(w, o, text)
	}
	headings := !o.NoHeadings && !o.Bare
	for i, r := range p.cells {
		if i > 0 {
			fmt.Fprintln(w)
		}
		for j, c := range r {
			if headings {
				fmt.Fprintf(w, "%-20s: %s\n", p.headings[j], text(c))
			} else {
				fmt.Fprintln(w, text(c))
			}
		}
	}
	return nil
}

// table is ovn-nbctl's table format: columns as wide as their widest
// cell, a rule under the headings, the last column not padded.
func (p records) table(w io.Writer, o *cmdline.Output, text func(cell) string) error {
	widths := make([]int, len(p.headings))
	if !o.NoHeadings {
		for i, h := range p.headings {
			widths[i] = len(h)
		}
	}
	for _, r := range p.cells {
		for i, c := range r {
			widths[i] = max(widths[i], len(text(c)))
		}
	}
	line := func(cells []string) {
		var b strings.Builder
		for i, c := range cells {
			if i > 0 {
				b.WriteByte(' ')
			}
			if i < len(cells)-1 {
				fmt.Fprintf(&b, "%-*s", widths[i], c)
			} else {
				b.WriteString(c)
			}
		}
		fmt.Fprintln(w, b.String())
	}
	if !o.NoHeadings {
		line(p.headings)
		rule := make([]string, len(widths))
		for i, n := range widths {
			rule[i] = strings.Repeat("-", n)
		}
		line(rule)
	}
	for _, r := range p.cells {
		line(slices.Collect(func(yield func(string) bool) {
			for _, c := range r {
				if !yield(text(c)) {
					return
				}
			}
		}))
	}
	return nil
}
