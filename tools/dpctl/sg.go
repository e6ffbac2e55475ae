package dpctl

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/courier-sdn/courier/dataplane"
)

// sg prints the security group maps: local ports' identities, what each
// identity means, each group's rules (numbers are hostd's, per VPC), and
// the packets each identity's rules refused; what the internet sent
// (its reserved identity) and ports refused is shown under "internet".
func sg(d *dataplane.Datapath, out io.Writer) error {
	v, err := d.SecurityGroups()
	if err != nil {
		return err
	}
	for _, part := range []struct {
		what  string
		lines []string
	}{{"ports", v.Ports}, {"identities", v.Identities}, {"rules", v.Rules}, {"denials", v.Denials}} {
		if len(part.lines) == 0 {
			fmt.Fprintf(out, "(no %s)\n", part.what)
		}
		for _, l := range part.lines {
			fmt.Fprintln(out, l)
		}
	}
	return nil
}

// ct prints the tracked connections.
func ct(d *dataplane.Datapath, out io.Writer) error {
	cs, err := d.Connections()
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ZONE\tPROTO\tFROM\tTO\tOPENED\tEXPIRES IN\tREMOTE-ID\tSTATE")
	for _, c := range cs {
		opened := "by the port"
		if c.Ingress {
			opened = "to the port"
		}
		state := "allowed"
		switch {
		case c.Stale:
			state = "stale (checked again at its next packet)"
		case c.Pending:
			state = "pending the receiver's check"
		}
		if c.Closing {
			state += ", closing"
		}
		fmt.Fprintf(w, "%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Zone, c.Proto, c.Src, c.Dst, opened, c.Expires.Round(time.Second),
			dataplane.IdentityString(c.RemoteID), state)
	}
	if len(cs) == 0 {
		fmt.Fprintln(w, "(no tracked connections)")
	}
	return w.Flush()
}
