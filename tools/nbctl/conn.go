package nbctl

import (
	"github.com/courier-sdn/courier/internal/dbconf"
	"github.com/courier-sdn/courier/tools/cmdline"
)

// The northbound's own listeners and TLS files (internal/dbconf), set as
// ovn-nbctl sets them. courier-ctl serves them; a change takes effect at
// once.
func connCommands() []*command {
	return []*command{
		{Name: "set-connection", Args: "TARGET...", Summary: "listen on these pssl:PORT[:IP] or ptcp:PORT[:IP] targets only (read-only may precede one)",
			Min: 1, Max: -1, Tables: []string{tNB}, Run: func(st *state, inv *cmdline.Invocation, _ *cmdline.Output) error {
				ls, err := dbconf.ParseListeners(inv.Args, false)
				if err != nil {
					return err
				}
				st.ops = append(st.ops, dbconf.SetConnections(tNB, ls, false)...)
				return nil
			}},
		{Name: "get-connection", Summary: "print the listeners", Max: 0, Tables: []string{tNB},
			Run: func(st *state, _ *cmdline.Invocation, out *cmdline.Output) error {
				ls, status, err := dbconf.Connections(st.ctx, st.c)
				if err != nil {
					return err
				}
				out.Text(dbconf.Show(ls, status))
				return nil
			}},
		{Name: "del-connection", Summary: "stop listening (the unix socket stays)", Max: 0, Tables: []string{tNB},
			Run: func(st *state, _ *cmdline.Invocation, _ *cmdline.Output) error {
				st.ops = append(st.ops, dbconf.SetConnections(tNB, nil, false)...)
				return nil
			}},
		{Name: "set-ssl", Args: "PRIVATE-KEY CERTIFICATE CA-CERT [PROTOCOLS [CIPHERS]]", Summary: "serve pssl: listeners with these files",
			Min: 3, Max: 5, Tables: []string{tNB}, Run: func(st *state, inv *cmdline.Invocation, _ *cmdline.Output) error {
				f, protos, ciphers, err := dbconf.ParseSSL(inv.Args)
				if err != nil {
					return err
				}
				st.ops = append(st.ops, dbconf.SetSSL(tNB, f, protos, ciphers)...)
				return nil
			}},
		{Name: "get-ssl", Summary: "print the TLS files", Max: 0, Tables: []string{tNB},
			Run: func(st *state, _ *cmdline.Invocation, out *cmdline.Output) error {
				f, err := dbconf.SSL(st.ctx, st.c)
				if err != nil || f == nil {
					return err
				}
				out.Text("Private key: " + f.PrivateKey + "\nCertificate: " + f.Certificate + "\nCA Certificate: " + f.CACert + "\n")
				return nil
			}},
		{Name: "del-ssl", Summary: "remove the TLS files", Max: 0, Tables: []string{tNB},
			Run: func(st *state, _ *cmdline.Invocation, _ *cmdline.Output) error {
				st.ops = append(st.ops, dbconf.DelSSL(tNB)...)
				return nil
			}},
	}
}
