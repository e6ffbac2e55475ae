package trace

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Detail levels, as ovn-trace has them.
const (
	Detailed = "detailed" // every stage, with the flow or record that decided
	Summary  = "summary"  // one line per hop
	Minimal  = "minimal"  // the outcome only
)

// Write prints a trace at a detail level, or as JSON.
func (tr *Trace) Write(w io.Writer, level, format string) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(tr)
	}
	var b strings.Builder
	switch level {
	case Minimal:
		fmt.Fprintln(&b, tr.Detail)
	case Summary:
		fmt.Fprintf(&b, "%s\n", tr.Packet)
		for _, h := range tr.Hops {
			var stages []string
			for _, s := range h.Steps {
				stages = append(stages, s.Stage)
			}
			last := h.Steps[len(h.Steps)-1]
			fmt.Fprintf(&b, "%s (%s): %s: %s\n", h.Chassis, h.Direction, strings.Join(stages, " > "), last.Detail)
		}
		fmt.Fprintln(&b, tr.Detail)
	default:
		tr.detailed(&b)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (tr *Trace) detailed(b *strings.Builder) {
	fmt.Fprintf(b, "%s trace of %s\n\n", strings.ToUpper(tr.Mode[:1])+tr.Mode[1:], tr.Packet)
	for _, h := range tr.Hops {
		where := h.Chassis
		if h.VTEP != "" {
			where += " (" + h.VTEP + ")"
		}
		from := "from port " + h.From
		if h.Direction != "from_port" {
			from = fmt.Sprintf("from %s, vni %d", h.From, h.VNI)
			if h.Identity != "" {
				from += ", identity " + h.Identity
			}
		}
		fmt.Fprintf(b, "%s, %s\n", where, from)
		for _, s := range h.Steps {
			fmt.Fprintf(b, "  %-11s %-9s %s\n", s.Stage, s.Verdict, s.Detail)
			if s.Match != "" {
				fmt.Fprintf(b, "  %-11s %-9s priority %d, match (%s), actions (%s) [%s]\n", "", "", *s.Priority, s.Match, s.Actions, s.Source)
			}
			if len(s.Flags) > 0 {
				fmt.Fprintf(b, "  %-11s %-9s also: %s\n", "", "", strings.Join(s.Flags, ", "))
			}
		}
		fmt.Fprintln(b)
	}
	fmt.Fprintln(b, tr.Detail)
	for _, n := range tr.Notes {
		fmt.Fprintln(b, "note: "+n)
	}
}
