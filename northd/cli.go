package northd

import (
	"github.com/urfave/cli/v2"

	"github.com/courier-sdn/courier/internal/daemon"
	"github.com/courier-sdn/courier/internal/version"
)

// App is the courier-northd command line.
func App() *cli.App {
	return &cli.App{
		Name:    "courier-northd",
		Version: version.String(),
		Usage:   "compile Courier's northbound intent into the southbound database",
		Description: `courier-northd monitors the northbound database (VPCs, vxnets, ports,
routes) and keeps the southbound's datapaths, port bindings and logical
flows equal to what that intent compiles to. Rows it cannot compile are
refused one by one: their status column says why, and the rest keeps
working. Each change is processed incrementally; a full recompute happens
at start, after a reconnection, and when this instance becomes active.

Several instances may run: the one holding the southbound lock
"courier_northd" writes, the others stand by and take over when it goes.

It acknowledges NB_Global.nb_cfg in SB_Global.nb_cfg and NB_Global.sb_cfg
once the southbound reflects it, which is what courier-nbctl --wait=sb
waits for.`,
		Flags: daemon.CentralFlags(
			&cli.IntFlag{Name: "max-txn-ops", Value: 20000, Usage: "split big southbound changes into transactions of at most `N` operations"},
		),
		Action: func(cx *cli.Context) error {
			ctx, cancel, c, err := daemon.StartCentral(cx, "northd")
			if err != nil {
				return err
			}
			defer cancel()
			d := New(Config{NB: c.NB, SB: c.SB, TLS: c.TLS, MaxTxnOps: cx.Int("max-txn-ops"), ProbeInterval: c.ProbeInterval, Log: c.Log, Metrics: NewMetrics(c.Registry)})
			return d.Run(ctx)
		},
	}
}
