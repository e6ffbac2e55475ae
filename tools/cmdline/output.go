package cmdline

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"
)

// The output formats of -f/--format, as ovn-nbctl names them.
const (
	FormatTable = "table"
	FormatList  = "list"
	FormatCSV   = "csv"
	FormatJSON  = "json"
)

// CheckFormat refuses a format the tools do not know.
func CheckFormat(f string) error {
	switch f {
	case FormatTable, FormatList, FormatCSV, FormatJSON:
		return nil
	}
	return fmt.Errorf("--format=%s: want table, list, csv or json", f)
}

// Style is how output is printed: the global -f, --no-headings, --bare.
type Style struct {
	Format string // FormatTable (the default), FormatList, FormatCSV or FormatJSON
	// FormatSet: -f was given, so it also governs the generic commands
	// (list, find), which otherwise print as ovn-nbctl does, a list.
	FormatSet  bool
	NoHeadings bool
	// Bare prints values only, without quotes or headings (--bare).
	Bare bool
}

// OutputFlags are the global options that set a Style.
func OutputFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: FormatTable,
			Usage: "output `FORMAT`: table, list, csv or json (list and find print a list unless told)"},
		&cli.BoolFlag{Name: "no-headings", Usage: "print no column headings"},
		&cli.BoolFlag{Name: "bare", Usage: "print values only: the format list, with no headings or quotes"},
	}
}

// StyleFrom reads OutputFlags.
func StyleFrom(cx *cli.Context) (Style, error) {
	s := Style{Format: cx.String("format"), FormatSet: cx.IsSet("format"), NoHeadings: cx.Bool("no-headings"), Bare: cx.Bool("bare")}
	return s, CheckFormat(s.Format)
}

// Output collects what commands print; it is written after the
// transaction commits, so a failed invocation prints only its error.
type Output struct {
	Style
	parts []Part
}

// Part is one command's output; it is rendered only when the whole
// invocation has committed, so it may read what the commit returned.
type Part interface {
	Write(w io.Writer, o *Output) error
}

// PartFunc is a Part written by a function.
type PartFunc func(w io.Writer, o *Output) error

// Write calls f.
func (f PartFunc) Write(w io.Writer, o *Output) error { return f(w, o) }

// Add adds a part.
func (o *Output) Add(p Part) { o.parts = append(o.parts, p) }

// Table adds a list result; rows are sorted. Cells are typed: a string,
// an int, a bool, a []string, or nil for "none" (printed "-" in a table,
// null in JSON).
func (o *Output) Table(headers []string, rows [][]any) {
	sort.SliceStable(rows, func(i, j int) bool { return rowKey(rows[i]) < rowKey(rows[j]) })
	o.Add(table{headers: headers, rows: rows})
}

// Text adds free-form output; in JSON it is {"text": s}.
func (o *Output) Text(s string) { o.Add(value{text: s, v: map[string]string{"text": s}}) }

// Value adds output that is text for people and v, structured, in JSON.
func (o *Output) Value(text string, v any) { o.Add(value{text: text, v: v}) }

// Write prints everything collected.
func (o *Output) Write(w io.Writer) error {
	for _, p := range o.parts {
		if err := p.Write(w, o); err != nil {
			return err
		}
	}
	return nil
}

type value struct {
	text string
	v    any
}

func (p value) Write(w io.Writer, o *Output) error {
	if o.Format == FormatJSON {
		return writeJSON(w, p.v)
	}
	_, err := io.WriteString(w, p.text)
	return err
}

func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(b))
	return err
}

// table is a list result.
type table struct {
	headers []string
	rows    [][]any
}

func rowKey(r []any) string {
	parts := make([]string, len(r))
	for i, c := range r {
		parts[i] = Cell(c)
	}
	return strings.Join(parts, "\x00")
}

// Shown is a cell that reads as Text in a table and as V in JSON.
type Shown struct {
	Text string
	V    any
}

// MarshalJSON is V's.
func (s Shown) MarshalJSON() ([]byte, error) { return json.Marshal(s.V) }

// Opt is a cell for an optional string: nil (none) when empty.
func Opt(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// Cell is how a table cell reads as text.
func Cell(v any) string {
	switch x := v.(type) {
	case Shown:
		return x.Text
	case nil:
		return "-"
	case string:
		return x
	case int:
		return strconv.Itoa(x)
	case bool:
		if x {
			return "yes"
		}
		return "no"
	case []string:
		if len(x) == 0 {
			return "-"
		}
		return strings.Join(x, ",")
	default:
		return fmt.Sprint(x)
	}
}

func (p table) Write(w io.Writer, o *Output) error {
	format := o.Format
	if o.Bare {
		format = FormatList
	}
	switch format {
	case FormatJSON:
		rows := make([]map[string]any, 0, len(p.rows))
		for _, r := range p.rows {
			m := map[string]any{}
			for i, h := range p.headers {
				v := r[i]
				if s, ok := v.([]string); ok && s == nil {
					v = []string{}
				}
				m[strings.ToLower(h)] = v
			}
			rows = append(rows, m)
		}
		return writeJSON(w, rows)
	case FormatCSV:
		cw := csv.NewWriter(w)
		if !o.NoHeadings {
			cw.Write(lower(p.headers))
		}
		for _, r := range p.rows {
			cells := make([]string, len(r))
			for i, c := range r {
				cells[i] = Cell(c)
			}
			cw.Write(cells)
		}
		cw.Flush()
		return cw.Error()
	case FormatList:
		for i, r := range p.rows {
			if i > 0 {
				fmt.Fprintln(w)
			}
			for j, h := range lower(p.headers) {
				if o.NoHeadings || o.Bare {
					fmt.Fprintln(w, Cell(r[j]))
				} else {
					fmt.Fprintf(w, "%-20s: %s\n", h, Cell(r[j]))
				}
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if !o.NoHeadings {
		fmt.Fprintln(tw, strings.Join(p.headers, "\t"))
	}
	for _, r := range p.rows {
		cells := make([]string, len(r))
		for i, c := range r {
			cells[i] = Cell(c)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

func lower(hs []string) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = strings.ToLower(h)
	}
	return out
}
