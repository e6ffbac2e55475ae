// Package doc generates the man pages and shell completions of every
// Courier command from the command definitions themselves (urfave/cli's
// ToMan and ToFishCompletion; the bash completion lists the same
// commands and options), so that they cannot drift from the binaries,
// and the reference of both database schemas (courier-nb(5),
// courier-sb(5) and their Markdown in docs/) from the schemas and the
// descriptions kept beside them.
// "go generate ./doc" writes them; CI regenerates them and fails on a
// difference (make check-generated), and so does this package's test.
package doc

//go:generate go run ./gen

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/template"

	"github.com/urfave/cli/v2"

	"github.com/courier-sdn/courier/hostd"
	"github.com/courier-sdn/courier/northd"
	"github.com/courier-sdn/courier/southd"
	"github.com/courier-sdn/courier/tools/ctl"
	"github.com/courier-sdn/courier/tools/dpctl"
	"github.com/courier-sdn/courier/tools/nbctl"
	"github.com/courier-sdn/courier/tools/sandbox"
	"github.com/courier-sdn/courier/tools/sbctl"
	"github.com/courier-sdn/courier/tools/trace"
)

// Apps are every command Courier installs.
func Apps() []*cli.App {
	return []*cli.App{ctl.App(), dpctl.App(io.Discard), hostd.App(), nbctl.DocApp(), northd.App(),
		sandbox.App(io.Discard), sbctl.DocApp(), southd.App(), trace.App(io.Discard)}
}

// Files renders every generated file, by path relative to doc/ (which
// must be the working directory, as it is for go generate and go test):
// the commands' man pages and completions, and the schema reference
// (schemadoc.go).
func Files() (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, app := range Apps() {
		app.Version = "" // the build's, which a committed file cannot know
		man, err := app.ToMan()
		if err != nil {
			return nil, fmt.Errorf("%s: man page: %w", app.Name, err)
		}
		out["man/"+app.Name+".8"] = []byte(man)
		fish, err := app.ToFishCompletion()
		if err != nil {
			return nil, fmt.Errorf("%s: fish completion: %w", app.Name, err)
		}
		out["completion/"+app.Name+".fish"] = []byte(fish)
		bash, err := bashCompletion(app)
		if err != nil {
			return nil, err
		}
		out["completion/"+app.Name+".bash"] = bash
	}
	schemas, err := schemaFiles(func(path string) ([]byte, error) { return os.ReadFile(filepath.Join("..", path)) })
	if err != nil {
		return nil, err
	}
	maps.Copy(out, schemas)
	return out, nil
}

var bashTemplate = template.Must(template.New("bash").Parse(`# bash completion for {{.Name}}: generated from its command definitions
# (go generate ./doc); do not edit.
_{{.Func}}() {
    local cur="${COMP_WORDS[COMP_CWORD]}"
    COMPREPLY=($(compgen -W "{{.Words}}" -- "$cur"))
}
complete -o default -F _{{.Func}} {{.Name}}
`))

// bashCompletion completes the app's commands and every option name.
func bashCompletion(app *cli.App) ([]byte, error) {
	words := map[string]bool{}
	addFlags := func(fs []cli.Flag) {
		for _, f := range fs {
			for _, n := range f.Names() {
				if len(n) > 1 {
					words["--"+n] = true
				}
			}
		}
	}
	addFlags(app.Flags)
	var walk func([]*cli.Command)
	walk = func(cs []*cli.Command) {
		for _, c := range cs {
			words[c.Name] = true
			addFlags(c.Flags)
			walk(c.Subcommands)
		}
	}
	walk(app.Commands)
	list := make([]string, 0, len(words))
	for w := range words {
		list = append(list, w)
	}
	sort.Strings(list)
	var b bytes.Buffer
	err := bashTemplate.Execute(&b, map[string]string{"Name": app.Name, "Func": strings.ReplaceAll(app.Name, "-", "_"),
		"Words": strings.Join(list, " ")})
	return b.Bytes(), err
}
