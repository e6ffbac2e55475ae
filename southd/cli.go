package southd

import (
	"github.com/urfave/cli/v2"

	"github.com/courier-sdn/courier/internal/daemon"
)

// App is the courier-southd command line.
func App() *cli.App {
	return &cli.App{
		Name:  "courier-southd",
		Usage: "keep Courier's southbound true to the running world",
		Description: `courier-southd decides what depends on the running world rather than on
intent: which chassis are alive (from their heartbeats), which live
hub-role chassis serve each VPC's hubs (kept stable, balanced, replaced
when one dies), which port holds a contested virtual IP (the newest
announcement), which learned bindings are not allowed or have gone stale,
and NB_Global.hv_cfg, the configuration every live host has applied.

Several instances may run; the one holding the southbound lock
"courier_southd" decides, the others stand by.`,
		Flags: []cli.Flag{
			daemon.NBFlag(), daemon.SBFlag(), daemon.RunDirFlag(),
			&cli.DurationFlag{Name: "dead-after", Value: 5e9, Usage: "a chassis whose heartbeat stops for this long is dead"},
			&cli.IntFlag{Name: "hubs-per-vpc", Value: 2, Usage: "hubs to assign to every VPC"},
			&cli.DurationFlag{Name: "learned-age", Value: 600e9, Usage: "remove learned bindings not refreshed for this long"},
			&cli.IntFlag{Name: "age-batch", Value: 100, Usage: "remove at most `N` stale learned bindings per pass"},
			&cli.StringFlag{Name: "metrics-addr", Usage: "serve Prometheus metrics on `ADDR`; empty: off"},
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error"},
		},
		Action: func(cx *cli.Context) error {
			log, err := daemon.Logger(cx.String("log-level"), "southd")
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
			d := New(Config{NB: nb, SB: sb, DeadAfter: cx.Duration("dead-after"), HubsPerVPC: cx.Int("hubs-per-vpc"),
				LearnedAge: cx.Duration("learned-age"), AgeBatch: cx.Int("age-batch"), Log: log, Metrics: NewMetrics(reg)})
			return d.Run(ctx)
		},
	}
}
