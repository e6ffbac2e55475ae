package doc

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func readRepo(path string) ([]byte, error) { return os.ReadFile(filepath.Join("..", path)) }

// Every table and column of both schemas is described, and nothing
// else is.
func TestSchemaDocsCoverEveryColumn(t *testing.T) {
	for _, r := range SchemaRefs() {
		d, s, err := r.Load(readRepo)
		if err != nil {
			t.Fatal(err)
		}
		if errs := Check(d, s); len(errs) > 0 {
			t.Errorf("%s: %v", r.Source, errors.Join(errs...))
		}
		man := string(Man(r, d, s))
		md := string(Markdown(r, d, s))
		for name, ts := range s.Tables {
			for col := range ts.Columns {
				if !strings.Contains(md, "### "+name+"."+col+"\n") {
					t.Errorf("%s Markdown lacks %s.%s", r.Page, name, col)
				}
				if !strings.Contains(man, ".TP\n\\fB"+col+"\\fR: ") {
					t.Errorf("%s(5) lacks %s.%s", r.Page, name, col)
				}
			}
		}
	}
}

// The check fails on a column without documentation, on documentation
// of a column or table that no longer exists, and on an empty one.
func TestSchemaDocCheckCatchesDrift(t *testing.T) {
	s, err := ParseSchema([]byte(`{"name": "X", "version": "1.0.0", "tables": {
		"A": {"columns": {"kept": {"type": "string"}, "added": {"type": {"key": "integer", "min": 0, "max": 1}},
			"empty": {"type": "string"}}},
		"B": {"columns": {"c": {"type": "boolean"}}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	d, err := ParseSchemaDoc([]byte("# X\n\nThe database.\n\n## A\n\nA table.\n\n### kept\n\nKept.\n\n### removed\n\nGone.\n\n" +
		"### empty\n\n## Gone\n\nA table that went.\n"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range Check(d, s) {
		got = append(got, e.Error())
	}
	want := []string{
		"column A.removed is described but no longer exists",
		"column A.empty has an empty description",
		"column A.added has no documentation",
		"table Gone is described but the schema has no such table",
		"table B has no documentation",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// A column's type reads as ovsdb-doc's would.
func TestTypeString(t *testing.T) {
	s, err := ParseSchema([]byte(`{"name": "X", "version": "1.0.0", "tables": {"T": {"columns": {
		"a": {"type": {"key": {"type": "integer", "minInteger": 1, "maxInteger": 16777215}, "min": 0, "max": 1}},
		"b": {"type": {"key": {"type": "string", "minLength": 7, "maxLength": 15}, "min": 0, "max": 16}},
		"c": {"type": {"key": "string", "value": "string", "min": 0, "max": "unlimited"}},
		"d": {"type": {"key": {"type": "uuid", "refTable": "Vxnet", "refType": "strong"}, "min": 0, "max": "unlimited"}},
		"e": {"type": {"key": {"type": "string", "enum": ["set", ["hub", "gateway"]]}, "min": 0, "max": 2}},
		"f": {"type": "boolean", "ephemeral": true}}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	cols := s.Tables["T"].Columns
	for name, want := range map[string]string{
		"a": "optional integer (1 to 16777215)",
		"b": "set of up to 16 strings (7 to 15 characters)",
		"c": "map of string to string",
		"d": "set of references to Vxnet",
		"e": "set of up to 2 strings (one of hub, gateway)",
		"f": "boolean; ephemeral (a standalone server does not write it to disk; a Raft cluster keeps it)",
	} {
		if got := columnFacts(cols[name]); got != want {
			t.Errorf("%s: got %q, want %q", name, got, want)
		}
	}
}

// A paragraph that would start with a roff control character, or holds
// a backslash, stays text.
func TestRoffEscapes(t *testing.T) {
	for in, want := range map[string]string{
		".hidden":          `\&.hidden`,
		"a `b` **c** d\\e": `a \fBb\fR \fBc\fR d\ee`,
		"[text](x.md) end": "text end",
	} {
		if got := roff(in); got != want {
			t.Errorf("roff(%q) = %q, want %q", in, got, want)
		}
	}
}
