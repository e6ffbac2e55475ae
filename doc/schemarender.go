package doc

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/courier-sdn/courier/schema"
)

// SchemaRef is one database's reference: its schema, its description
// file and the names of what is rendered from them.
type SchemaRef struct {
	Page   string // the man page's name: courier-nb
	Schema []byte // the .ovsschema
	Source string // the description file, relative to the repository
}

// SchemaRefs are both databases' references.
func SchemaRefs() []SchemaRef {
	return []SchemaRef{
		{Page: "courier-nb", Schema: schema.NB, Source: "schema/nb.md"},
		{Page: "courier-sb", Schema: schema.SB, Source: "schema/sb.md"},
	}
}

// schemaFiles renders both references, by path relative to doc/: the
// man pages in man/ and the Markdown in ../docs/. read reads a file
// by its path relative to the repository's root.
func schemaFiles(read func(string) ([]byte, error)) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, r := range SchemaRefs() {
		d, s, err := r.Load(read)
		if err != nil {
			return nil, err
		}
		if errs := Check(d, s); len(errs) > 0 {
			return nil, fmt.Errorf("%s does not match the schema: %w", r.Source, errors.Join(errs...))
		}
		out["man/"+r.Page+".5"] = Man(r, d, s)
		out["../docs/"+r.Page+".5.md"] = Markdown(r, d, s)
	}
	return out, nil
}

// Load parses the reference's schema and description file.
func (r SchemaRef) Load(read func(string) ([]byte, error)) (*SchemaDoc, *DBSchema, error) {
	s, err := ParseSchema(r.Schema)
	if err != nil {
		return nil, nil, fmt.Errorf("%s schema: %w", r.Page, err)
	}
	src, err := read(r.Source)
	if err != nil {
		return nil, nil, err
	}
	d, err := ParseSchemaDoc(src)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", r.Source, err)
	}
	return d, s, nil
}

func schemaFile(page string) string {
	return "schema/" + strings.TrimPrefix(page, "courier-") + ".ovsschema"
}

// tableFacts is what the schema says of a table beyond its columns.
func tableFacts(ts TableSchema) string {
	var f []string
	if ts.IsRoot {
		f = append(f, "Root set: rows stay until deleted.")
	} else {
		f = append(f, "Not a root set: a row lives while a row of another table refers to it.")
	}
	if ts.MaxRows > 0 {
		f = append(f, fmt.Sprintf("At most %d row.", ts.MaxRows))
	}
	for _, ix := range ts.Indexes {
		f = append(f, "Unique: "+strings.Join(ix, ", ")+".")
	}
	return strings.Join(f, " ")
}

func columnFacts(c ColumnSchema) string {
	s := TypeString(c.Type)
	if c.Ephemeral {
		s += "; ephemeral (a standalone server does not write it to disk; a Raft cluster keeps it)"
	}
	return s
}

// firstSentence is a description's first sentence, for summaries.
func firstSentence(bs []Block) string {
	if len(bs) == 0 {
		return ""
	}
	t := bs[0].Text
	if i := strings.Index(t, ". "); i >= 0 {
		return t[:i+1]
	}
	return t
}

// Markdown renders a reference as Markdown.
func Markdown(r SchemaRef, d *SchemaDoc, s *DBSchema) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "<!-- Generated from %s and %s by go generate ./doc; do not edit. -->\n\n", schemaFile(r.Page), r.Source)
	fmt.Fprintf(&b, "# %s(5): %s\n\n", r.Page, d.Title)
	fmt.Fprintf(&b, "The `%s` database, schema version %s. The man page `%s(5)` says the same.\n\n", s.Name, s.Version, r.Page)
	mdBlocks(&b, d.Text)
	b.WriteString("## Tables\n\n| Table | |\n|---|---|\n")
	for _, t := range d.Tables {
		fmt.Fprintf(&b, "| [%s](#%s) | %s |\n", t.Name, strings.ToLower(t.Name), firstSentence(t.Text))
	}
	b.WriteString("\n")
	for _, t := range d.Tables {
		ts := s.Tables[t.Name]
		fmt.Fprintf(&b, "## %s\n\n", t.Name)
		mdBlocks(&b, t.Text)
		fmt.Fprintf(&b, "%s\n\n| Column | Type |\n|---|---|\n", tableFacts(ts))
		for _, c := range t.Columns {
			fmt.Fprintf(&b, "| `%s` | %s |\n", c.Name, columnFacts(ts.Columns[c.Name]))
		}
		b.WriteString("\n")
		for _, c := range t.Columns {
			fmt.Fprintf(&b, "### %s.%s\n\n*%s*\n\n", t.Name, c.Name, columnFacts(ts.Columns[c.Name]))
			mdBlocks(&b, c.Text)
		}
	}
	return append(bytes.TrimRight(b.Bytes(), "\n"), '\n')
}

func mdBlocks(b *bytes.Buffer, bs []Block) {
	for i, p := range bs {
		if p.Item {
			fmt.Fprintf(b, "* %s\n", p.Text)
			if i+1 == len(bs) || !bs[i+1].Item {
				b.WriteString("\n")
			}
			continue
		}
		fmt.Fprintf(b, "%s\n\n", p.Text)
	}
}

// Man renders a reference as a man page in section 5.
func Man(r SchemaRef, d *SchemaDoc, s *DBSchema) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, ".\\\" Generated from %s and %s by go generate ./doc; do not edit.\n", schemaFile(r.Page), r.Source)
	fmt.Fprintf(&b, ".nh\n.TH %s 5\n.SH NAME\n%s \\- %s\n", r.Page, r.Page, roff(d.Title))
	fmt.Fprintf(&b, ".SH DESCRIPTION\nThe \\fB%s\\fR database, schema version %s.\n", s.Name, s.Version)
	manBlocks(&b, d.Text)
	b.WriteString(".SH \"TABLE SUMMARY\"\n")
	for _, t := range d.Tables {
		fmt.Fprintf(&b, ".TP\n\\fB%s\\fR\n%s\n", t.Name, roff(firstSentence(t.Text)))
	}
	for _, t := range d.Tables {
		ts := s.Tables[t.Name]
		fmt.Fprintf(&b, ".SH \"%s TABLE\"\n", t.Name)
		manBlocks(&b, t.Text)
		fmt.Fprintf(&b, ".PP\n%s\n.SS Columns\n", roff(tableFacts(ts)))
		for _, c := range t.Columns {
			fmt.Fprintf(&b, ".TP\n\\fB%s\\fR: %s\n", c.Name, roff(columnFacts(ts.Columns[c.Name])))
			for i, p := range c.Text {
				switch {
				case p.Item:
					fmt.Fprintf(&b, ".RS\n.IP \\(bu 2\n%s\n.RE\n", roff(p.Text))
				case i > 0:
					fmt.Fprintf(&b, ".IP\n%s\n", roff(p.Text))
				default:
					fmt.Fprintf(&b, "%s\n", roff(p.Text))
				}
			}
		}
	}
	b.WriteString(".SH \"SEE ALSO\"\ncourier-nbctl(8), courier-sbctl(8), courier-northd(8), courier-southd(8), courier-hostd(8), ovsdb-server(1)\n")
	return b.Bytes()
}

func manBlocks(b *bytes.Buffer, bs []Block) {
	for _, p := range bs {
		if p.Item {
			fmt.Fprintf(b, ".IP \\(bu 2\n%s\n", roff(p.Text))
			continue
		}
		fmt.Fprintf(b, ".PP\n%s\n", roff(p.Text))
	}
}

var (
	mdCode = regexp.MustCompile("`([^`]*)`")
	mdBold = regexp.MustCompile(`\*\*([^*]+)\*\*`)
	mdLink = regexp.MustCompile(`\[([^\]]+)\]\([^)]*\)`)
)

// roff turns a paragraph's Markdown into roff: `code` and **bold** in
// bold, links as their text, backslashes escaped, and no line starting
// with a control character.
func roff(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = mdLink.ReplaceAllString(s, "$1")
	s = mdCode.ReplaceAllString(s, `\fB$1\fR`)
	s = mdBold.ReplaceAllString(s, `\fB$1\fR`)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}
