package northd

import (
	"github.com/urfave/cli/v2"

	"github.com/courier-sdn/courier/internal/daemon"
)

// App is the courier-northd command line.
func App() *cli.App {
	return &cli.App{
		Name:  "courier-northd",
		Usage: "compile Courier's northbound intent into the southbound database",
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
		Flags: []cli.Flag{
			daemon.NBFlag(), daemon.SBFlag(), daemon.RunDirFlag(),
			&cli.StringFlag{Name: "metrics-addr", Usage: "serve Prometheus metrics on `ADDR` (host:port); empty: off"},
			&cli.IntFlag{Name: "max-txn-ops", Value: 20000, Usage: "split big southbound changes into transactions of at most `N` operations"},
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error"},
		},
		Action: func(cx *cli.Context) error {
			log, err := daemon.Logger(cx.String("log-level"), "northd")
			if err != nil {
				return err
			}
			nb, err := daemon.NBRemotes(cx)
			if err != nil {
				return err
			}
			sb, err := daemon.SBRemotes(cx)
			if err != nil {
				return err
			}
			ctx, cancel := daemon.SignalContext()
			defer cancel()
			reg := daemon.NewRegistry()
			if err := daemon.ServeMetrics(ctx, cx.String("metrics-addr"), reg, log); err != nil {
				return err
			}
			log.Info("starting", "nb", nb, "sb", sb)
			d := New(Config{NB: nb, SB: sb, MaxTxnOps: cx.Int("max-txn-ops"), Log: log, Metrics: NewMetrics(reg)})
			return d.Run(ctx)
		},
	}
}
