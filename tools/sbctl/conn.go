package sbctl

import (
	"github.com/courier-sdn/courier/internal/dbconf"
	"github.com/courier-sdn/courier/tools/cmdline"
)

// The southbound's own listeners and TLS files (internal/dbconf), set as
// ovn-sbctl sets them: a listener may carry a role (role=ROLE), which
// every client coming in by it gets (schema.Roles).
func connCommands() []*command {
	return []*command{
		{Name: "set-connection", Args: "[read-only] [role=ROLE] TARGET...",
			Summary: "listen on these pssl:PORT[:IP] or ptcp:PORT[:IP] targets only, each with the role before it",
			Min:     1, Max: -1, Tables: []string{tGlobal}, Run: func(v *view, inv *cmdline.Invocation, _ *cmdline.Output) error {
				ls, err := dbconf.ParseListeners(inv.Args, true)
				if err != nil {
					return err
				}
				v.ops = append(v.ops, dbconf.SetConnections(tGlobal, ls, true)...)
				return nil
			}},
		{Name: "get-connection", Summary: "print the listeners and their roles", Max: 0, Tables: []string{tGlobal},
			Run: func(v *view, _ *cmdline.Invocation, out *cmdline.Output) error {
				ls, status, err := dbconf.Connections(v.ctx, v.c)
				if err != nil {
					return err
				}
				out.Text(dbconf.Show(ls, status))
				return nil
			}},
		{Name: "del-connection", Summary: "stop listening (the unix socket stays)", Max: 0, Tables: []string{tGlobal},
			Run: func(v *view, _ *cmdline.Invocation, _ *cmdline.Output) error {
				v.ops = append(v.ops, dbconf.SetConnections(tGlobal, nil, true)...)
				return nil
			}},
		{Name: "set-ssl", Args: "PRIVATE-KEY CERTIFICATE CA-CERT [PROTOCOLS [CIPHERS]]", Summary: "serve pssl: listeners with these files",
			Min: 3, Max: 5, Tables: []string{tGlobal}, Run: func(v *view, inv *cmdline.Invocation, _ *cmdline.Output) error {
				f, protos, ciphers, err := dbconf.ParseSSL(inv.Args)
				if err != nil {
					return err
				}
				v.ops = append(v.ops, dbconf.SetSSL(tGlobal, f, protos, ciphers)...)
				return nil
			}},
		{Name: "get-ssl", Summary: "print the TLS files", Max: 0, Tables: []string{tGlobal},
			Run: func(v *view, _ *cmdline.Invocation, out *cmdline.Output) error {
				f, err := dbconf.SSL(v.ctx, v.c)
				if err != nil || f == nil {
					return err
				}
				out.Text("Private key: " + f.PrivateKey + "\nCertificate: " + f.Certificate + "\nCA Certificate: " + f.CACert + "\n")
				return nil
			}},
		{Name: "del-ssl", Summary: "remove the TLS files", Max: 0, Tables: []string{tGlobal},
			Run: func(v *view, _ *cmdline.Invocation, _ *cmdline.Output) error {
				v.ops = append(v.ops, dbconf.DelSSL(tGlobal)...)
				return nil
			}},
	}
}
