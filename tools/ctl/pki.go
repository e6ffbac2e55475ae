package ctl

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/courier-sdn/courier/internal/pki"
)

// pkiCommand is "courier-ctl pki", Courier's ovs-pki.
func pkiCommand() *cli.Command {
	dir := func() cli.Flag {
		return &cli.StringFlag{Name: "dir", Usage: "the PKI `DIR`", EnvVars: []string{"COURIER_PKI_DIR"}, Value: pki.DefaultDir}
	}
	return &cli.Command{
		Name:  "pki",
		Usage: "create a CA and sign certificates for the databases, the daemons, each chassis and operators",
		Description: `Like ovs-pki: "init" creates a CA in DIR (cacert.pem, private/cakey.pem);
"sign NAME" creates NAME-privkey.pem and NAME-cert.pem, a key and a
certificate whose common name is NAME, signed by the CA, for a client
only unless --server (the databases' is; courier-ctl start --tls signs
it as "ovsdb-server"). A hypervisor's
NAME must be its chassis name: the southbound lets a chassis write only
the rows that name its certificate's common name. Give every party
cacert.pem as --ca-cert, and its own two files as --private-key and
--certificate. "sign --force" replaces a key and certificate: running
daemons present the new ones from their next connection (hostd at once).`,
		Subcommands: []*cli.Command{
			{
				Name:  "init",
				Usage: "create the CA, unless there is one",
				Flags: []cli.Flag{dir()},
				Action: func(cx *cli.Context) error {
					if cx.NArg() != 0 {
						return fmt.Errorf("usage: courier-ctl pki init [--dir DIR]")
					}
					created, err := pki.Init(cx.String("dir"))
					if err != nil {
						return err
					}
					if !created {
						fmt.Fprintf(cx.App.Writer, "%s already holds a CA\n", cx.String("dir"))
					}
					fmt.Fprintln(cx.App.Writer, pki.CACert(cx.String("dir")))
					return nil
				},
			},
			{
				Name:      "sign",
				Usage:     "create a key and a certificate for NAME, signed by the CA",
				ArgsUsage: "NAME",
				Flags: []cli.Flag{dir(),
					&cli.IntFlag{Name: "days", Value: 365, Usage: "the certificate is valid for `N` days"},
					&cli.BoolFlag{Name: "force", Usage: "replace an existing key and certificate (rotation)"},
					&cli.BoolFlag{Name: "server", Usage: "a database server's certificate (clients accept only such a server)"}},
				Action: func(cx *cli.Context) error {
					if cx.NArg() != 1 {
						return fmt.Errorf("usage: courier-ctl pki sign NAME [--dir DIR]")
					}
					d, name := cx.String("dir"), cx.Args().First()
					if err := pki.Sign(d, name, pki.SignOptions{Days: cx.Int("days"), Force: cx.Bool("force"), Server: cx.Bool("server")}); err != nil {
						return err
					}
					fmt.Fprintln(cx.App.Writer, pki.PrivateKey(d, name))
					fmt.Fprintln(cx.App.Writer, pki.Certificate(d, name))
					return nil
				},
			},
		},
	}
}
