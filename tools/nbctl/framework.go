package nbctl

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
)

// flagSpec is an option of one command, such as port-add's --vip.
type flagSpec struct {
	name   string
	arg    string // value placeholder; "" for a boolean option
	repeat bool
	usage  string
}

// command is one courier-nbctl command.
type command struct {
	name    string
	args    string // usage of the positional arguments
	summary string
	min     int
	max     int // -1: unlimited
	flags   []flagSpec
	// tables it reads; the invocation monitors their union only.
	tables []string
	run    func(st *state, inv *invocation, out *output) error
}

// invocation is one parsed command of the command line.
type invocation struct {
	cmd   *command
	args  []string
	flags map[string][]string
}

func (inv *invocation) has(name string) bool { _, ok := inv.flags[name]; return ok }
func (inv *invocation) value(name string) string {
	if v := inv.flags[name]; len(v) > 0 {
		return v[len(v)-1]
	}
	return ""
}
func (inv *invocation) values(name string) []string { return inv.flags[name] }

// splitCommands splits the arguments after the global options into
// commands at each "--", as ovn-nbctl does.
func splitCommands(args []string) [][]string {
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

// parseInvocation parses one command. The command's name is its first
// word that is not an option; its options may come before or after the
// name and the positional arguments (before the name, an option that
// takes a value must use --opt=value).
func parseInvocation(table map[string]*command, words []string) (*invocation, error) {
	idx := -1
	for i, w := range words {
		if !strings.HasPrefix(w, "--") {
			idx = i
			break
		}
	}
	if idx < 0 {
		return nil, fmt.Errorf("missing command name")
	}
	cmd := table[words[idx]]
	if cmd == nil {
		return nil, fmt.Errorf("unknown command %q; see courier-nbctl --help", words[idx])
	}
	inv := &invocation{cmd: cmd, flags: map[string][]string{}}
	specs := map[string]flagSpec{}
	for _, f := range cmd.flags {
		specs[f.name] = f
	}
	rest := append(append([]string{}, words[:idx]...), words[idx+1:]...)
	for i := 0; i < len(rest); i++ {
		w := rest[i]
		if !strings.HasPrefix(w, "--") {
			inv.args = append(inv.args, w)
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimPrefix(w, "--"), "=")
		f, ok := specs[name]
		switch {
		case !ok:
			return nil, fmt.Errorf("%s: unknown option --%s", cmd.name, name)
		case f.arg != "" && !hasVal:
			if i+1 >= len(rest) {
				return nil, fmt.Errorf("%s: option --%s needs a value (%s)", cmd.name, name, f.arg)
			}
			i++
			val = rest[i]
		case f.arg == "" && hasVal:
			return nil, fmt.Errorf("%s: option --%s takes no value", cmd.name, name)
		}
		if len(inv.flags[name]) > 0 && !f.repeat {
			return nil, fmt.Errorf("%s: option --%s given twice", cmd.name, name)
		}
		inv.flags[name] = append(inv.flags[name], val)
	}
	if len(inv.args) < cmd.min || (cmd.max >= 0 && len(inv.args) > cmd.max) {
		return nil, fmt.Errorf("%s: wrong number of arguments\nusage: courier-nbctl %s %s", cmd.name, cmd.name, cmd.args)
	}
	return inv, nil
}

// output collects what commands print; it is written after the
// transaction commits, so a failed invocation prints only its error.
type output struct {
	format string // "table" or "json"
	parts  []any
}

// table is a list result.
type table struct {
	headers []string
	rows    [][]string
}

// text is free-form output (show).
type text string

func (o *output) table(headers []string, rows [][]string) {
	sort.SliceStable(rows, func(i, j int) bool { return strings.Join(rows[i], "\x00") < strings.Join(rows[j], "\x00") })
	o.parts = append(o.parts, table{headers: headers, rows: rows})
}

func (o *output) text(s string) { o.parts = append(o.parts, text(s)) }

func (o *output) write(w io.Writer) error {
	for _, p := range o.parts {
		switch p := p.(type) {
		case text:
			if o.format == "json" {
				b, _ := json.Marshal(map[string]string{"text": string(p)})
				fmt.Fprintln(w, string(b))
			} else {
				fmt.Fprint(w, string(p))
			}
		case table:
			if o.format == "json" {
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

// usage renders the command reference for --help.
func usage(cmds []*command) string {
	var b strings.Builder
	for _, c := range cmds {
		fmt.Fprintf(&b, "  %s %s\n", c.name, c.args)
		fmt.Fprintf(&b, "      %s\n", c.summary)
		for _, f := range c.flags {
			opt := "--" + f.name
			if f.arg != "" {
				opt += " " + f.arg
			}
			fmt.Fprintf(&b, "      %-22s %s\n", opt, f.usage)
		}
	}
	return b.String()
}
