// Package cmdline is the command framework shared by courier-nbctl and
// courier-sbctl: ovn-nbctl-style command lists separated by "--", options
// before or after the command name, and output as aligned tables or JSON,
// written only once every command has succeeded.
package cmdline

import (
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

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
	// Rows, when set, names the rows of its Tables it reads, by table
	// (the names given on its command line): an invocation whose
	// commands all name their rows reads those rows (and what the tool
	// reads with them), not whole tables.
	Rows func(inv *Invocation) map[string][]string
	Run  func(st S, inv *Invocation, out *Output) error
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
// Each command is a slice of args (capped, so that appending to it
// copies): a chain of thousands of commands is split without copying
// its words.
func Split(args []string) [][]string {
	n := 1
	for _, a := range args {
		if a == "--" {
			n++
		}
	}
	out := make([][]string, 0, n)
	start := 0
	for i := 0; i <= len(args); i++ {
		if i < len(args) && args[i] != "--" {
			continue
		}
		if i > start {
			out = append(out, args[start:i:i])
		}
		start = i + 1
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
	rest := words[1:] // the name first, as almost always: nothing to copy
	if idx > 0 {
		rest = append(append([]string{}, words[:idx]...), words[idx+1:]...)
	}
	for _, w := range rest {
		if w == "--help" || w == "-h" {
			return nil, nil, &HelpRequest{Text: Help(tool, cmd)}
		}
	}
	// The flags' map is made for the commands that have options: a
	// chain of thousands of port-adds mostly has none.
	inv := &Invocation{Name: cmd.Name, flags: map[string][]string{}, Args: make([]string, 0, len(rest))}
	var specs map[string]Flag
	for i := 0; i < len(rest); i++ {
		w := rest[i]
		if !strings.HasPrefix(w, "--") {
			inv.Args = append(inv.Args, w)
			continue
		}
		if specs == nil {
			specs = make(map[string]Flag, len(cmd.Flags))
			for _, f := range cmd.Flags {
				specs[f.Name] = f
			}
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

// HelpRequest is what Parse returns for "COMMAND --help": the caller
// prints Text and exits with success, having contacted nothing.
type HelpRequest struct{ Text string }

func (h *HelpRequest) Error() string { return h.Text }

// Help is one command's help, as its tool's --help shows it.
func Help[S any](tool string, c *Command[S]) string {
	var b strings.Builder
	fmt.Fprintf(&b, "usage: %s [OPTIONS] %s %s\n\n%s\n", tool, c.Name, c.Args, c.Summary)
	if len(c.Flags) > 0 {
		b.WriteString("\nOptions (before or after the command's name):\n")
		for _, f := range c.Flags {
			fmt.Fprintf(&b, "  %-24s %s\n", flagSpec(f), f.Usage)
		}
	}
	fmt.Fprintf(&b, "\nSee %s --help for the global options.\n", tool)
	return b.String()
}

func flagSpec(f Flag) string {
	opt := "--" + f.Name
	if f.Arg != "" {
		opt += " " + f.Arg
	}
	return opt
}

// GlobalArgs returns args (args[0] is the program) with a "--" inserted
// before the first word that is not one of the global flags, so that
// urfave/cli parses the global options only and leaves a command's own
// options to it even when they come first ("--may-exist vpc-add X",
// "--columns=name list VPC"), as ovn-nbctl accepts them.
func GlobalArgs(flags []cli.Flag, args []string) []string {
	takes := map[string]bool{}
	for _, f := range append(append([]cli.Flag{}, flags...), cli.HelpFlag, cli.VersionFlag) {
		v := false
		if df, ok := f.(cli.DocGenerationFlag); ok {
			v = df.TakesValue()
		}
		for _, n := range f.Names() {
			takes[n] = v
		}
	}
	takes["generate-bash-completion"] = false
	for i := 1; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return args
		}
		name, _, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		v, known := takes[name]
		if !strings.HasPrefix(a, "-") || !known {
			out := append(append(append([]string{}, args[:i]...), "--"), args[i:]...)
			return out
		}
		if v && !hasVal {
			i++
		}
	}
	return args
}

// Usage renders the command reference for --help.
func Usage[S any](cmds []*Command[S]) string {
	var b strings.Builder
	for _, c := range cmds {
		fmt.Fprintf(&b, "  %s %s\n", c.Name, c.Args)
		fmt.Fprintf(&b, "      %s\n", c.Summary)
		for _, f := range c.Flags {
			fmt.Fprintf(&b, "      %-22s %s\n", flagSpec(f), f.Usage)
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

// CLICommands describes cmds as urfave/cli commands, for the man pages
// and shell completions generated from them (doc/); they run nothing.
func CLICommands[S any](cmds []*Command[S]) []*cli.Command {
	var out []*cli.Command
	for _, c := range cmds {
		cc := &cli.Command{Name: c.Name, Usage: c.Summary, ArgsUsage: c.Args, HideHelp: true}
		for _, f := range c.Flags {
			if f.Arg == "" {
				cc.Flags = append(cc.Flags, &cli.BoolFlag{Name: f.Name, Usage: f.Usage})
			} else {
				cc.Flags = append(cc.Flags, &cli.StringFlag{Name: f.Name, Usage: f.Usage + " (" + f.Arg + ")"})
			}
		}
		out = append(out, cc)
	}
	return out
}
