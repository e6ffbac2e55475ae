// Package cmdline is the command framework shared by courier-nbctl and
// courier-sbctl: ovn-nbctl-style command lists separated by "--", options
// before or after the command name, and output as aligned tables or JSON,
// written only once every command has succeeded.
package cmdline

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/courier-sdn/courier/ops"
)

// Flag is an option of one command, such as port-add's --vip.
type Flag struct {
	Name   string
	Arg    string // value placeholder; "" for a boolean option
	Repeat bool
	Usage  string
}

// Command is one command of a tool whose commands run against a state S.
type Command[S any] struct {
	Name    string
	Args    string // usage of the positional arguments
	Summary string
	Min     int
	Max     int // -1: unlimited
	Flags   []Flag
	// Tables it reads; an invocation monitors their union only.
	Tables []string
	Run    func(st S, inv *Invocation, out *Output) error
}

// Invocation is one parsed command of the command line.
type Invocation struct {
	Name  string
	Args  []string
	flags map[string][]string
}

// Has reports whether an option was given.
func (inv *Invocation) Has(name string) bool { _, ok := inv.flags[name]; return ok }

// Value is an option's (last) value, or "".
func (inv *Invocation) Value(name string) string {
	if v := inv.flags[name]; len(v) > 0 {
		return v[len(v)-1]
	}
	return ""
}

// Values are every value of a repeatable option.
func (inv *Invocation) Values(name string) []string { return inv.flags[name] }

// Split splits the arguments after the global options into
// commands at each "--", as ovn-nbctl does.
func Split(args []string) [][]string {
	var out [][]string
	cur := []string{}
	for _, a := range args {
		if a == "--" {
			if len(cur) > 0 {
				out = append(out, cur)
			}
			cur = []string{}
			continue
		}
		cur = append(cur, a)
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// Parse parses one command. The command's name is its first
// word that is not an option; its options may come before or after the
// name and the positional arguments (before the name, an option that
// takes a value must use --opt=value).
func Parse[S any](tool string, table map[string]*Command[S], words []string) (*Invocation, *Command[S], error) {
	idx := -1
	for i, w := range words {
		if !strings.HasPrefix(w, "--") {
			idx = i
			break
		}
	}
	if idx < 0 {
		return nil, nil, fmt.Errorf("missing command name")
	}
	cmd := table[words[idx]]
	if cmd == nil {
		return nil, nil, fmt.Errorf("unknown command %q; see %s --help", words[idx], tool)
	}
	inv := &Invocation{Name: cmd.Name, flags: map[string][]string{}}
	specs := map[string]Flag{}
	for _, f := range cmd.Flags {
		specs[f.Name] = f
	}
	rest := append(append([]string{}, words[:idx]...), words[idx+1:]...)
	for i := 0; i < len(rest); i++ {
		w := rest[i]
		if !strings.HasPrefix(w, "--") {
			inv.Args = append(inv.Args, w)
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimPrefix(w, "--"), "=")
		f, ok := specs[name]
		switch {
		case !ok:
			return nil, nil, fmt.Errorf("%s: unknown option --%s", cmd.Name, name)
		case f.Arg != "" && !hasVal:
			if i+1 >= len(rest) {
				return nil, nil, fmt.Errorf("%s: option --%s needs a value (%s)", cmd.Name, name, f.Arg)
			}
			i++
			val = rest[i]
		case f.Arg == "" && hasVal:
			return nil, nil, fmt.Errorf("%s: option --%s takes no value", cmd.Name, name)
		}
		if len(inv.flags[name]) > 0 && !f.Repeat {
			return nil, nil, fmt.Errorf("%s: option --%s given twice", cmd.Name, name)
		}
		inv.flags[name] = append(inv.flags[name], val)
	}
	if len(inv.Args) < cmd.Min || (cmd.Max >= 0 && len(inv.Args) > cmd.Max) {
		return nil, nil, fmt.Errorf("%s: wrong number of arguments\nusage: %s %s %s", cmd.Name, tool, cmd.Name, cmd.Args)
	}
	return inv, cmd, nil
}

// Output collects what commands print; it is written after the
// transaction commits, so a failed invocation prints only its error.
type Output struct {
	Format string // "table" or "json"
	parts  []any
}

// table is a list result.
type table struct {
	headers []string
	rows    [][]string
}

// text is free-form output (show).
type text string

// Table adds a list result; rows are sorted.
func (o *Output) Table(headers []string, rows [][]string) {
	sort.SliceStable(rows, func(i, j int) bool { return strings.Join(rows[i], "\x00") < strings.Join(rows[j], "\x00") })
	o.parts = append(o.parts, table{headers: headers, rows: rows})
}

// Text adds free-form output.
func (o *Output) Text(s string) { o.parts = append(o.parts, text(s)) }

// Write prints everything collected.
func (o *Output) Write(w io.Writer) error {
	for _, p := range o.parts {
		switch p := p.(type) {
		case text:
			if o.Format == "json" {
				b, _ := json.Marshal(map[string]string{"text": string(p)})
				fmt.Fprintln(w, string(b))
			} else {
				fmt.Fprint(w, string(p))
			}
		case table:
			if o.Format == "json" {
				rows := make([]map[string]string, 0, len(p.rows))
				for _, r := range p.rows {
					m := map[string]string{}
					for i, h := range p.headers {
						m[strings.ToLower(h)] = r[i]
					}
					rows = append(rows, m)
				}
				b, err := json.MarshalIndent(rows, "", "  ")
				if err != nil {
					return err
				}
				fmt.Fprintln(w, string(b))
				continue
			}
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, strings.Join(p.headers, "\t"))
			for _, r := range p.rows {
				fmt.Fprintln(tw, strings.Join(r, "\t"))
			}
			tw.Flush()
		}
	}
	return nil
}

// Usage renders the command reference for --help.
func Usage[S any](cmds []*Command[S]) string {
	var b strings.Builder
	for _, c := range cmds {
		fmt.Fprintf(&b, "  %s %s\n", c.Name, c.Args)
		fmt.Fprintf(&b, "      %s\n", c.Summary)
		for _, f := range c.Flags {
			opt := "--" + f.Name
			if f.Arg != "" {
				opt += " " + f.Arg
			}
			fmt.Fprintf(&b, "      %-22s %s\n", opt, f.Usage)
		}
	}
	return b.String()
}

// RetryBackoff is how the tools wait between attempts to reach a database
// that is restarting or electing a leader: an election takes a second or
// two, and half a second between attempts finds the new leader soon
// after, for two connections a second per waiting client.
func RetryBackoff() *ops.Backoff {
	return &ops.Backoff{First: 50 * time.Millisecond, Max: 500 * time.Millisecond}
}
