package southd

import (
	"github.com/urfave/cli/v2"

	"github.com/courier-sdn/courier/internal/daemon"
	"github.com/courier-sdn/courier/internal/version"
)

// App is the courier-southd command line.
func App() *cli.App {
	return &cli.App{
		Name:    "courier-southd",
		Version: version.String(),
		Usage:   "keep Courier's southbound true to the running world",
		Description: `courier-southd decides what depends on the running world rather than on
intent: which chassis are alive (from their heartbeats), which live
hub-role chassis serve each VPC's hubs (kept stable, balanced, replaced
when one dies), which port holds a contested virtual IP (the newest
announcement), which learned bindings are not allowed or have gone stale,
NB_Global.hv_cfg, the configuration every live host has applied, SNAT
port blocks, and which SNAT handoffs nobody will ever install.

Several instances may run; the one holding the southbound lock
"courier_southd" decides, the others stand by.`,
		Flags: daemon.CentralFlags(
			&cli.DurationFlag{Name: "dead-after", Value: 5e9, Usage: "a chassis whose heartbeat stops for this long is dead"},
			&cli.IntFlag{Name: "hubs-per-vpc", Value: 2, Usage: "hubs to assign to every VPC"},
			&cli.DurationFlag{Name: "learned-age", Value: 600e9, Usage: "remove learned bindings not refreshed for this long"},
			&cli.IntFlag{Name: "age-batch", Value: 100, Usage: "remove at most `N` stale learned bindings per pass"},
			&cli.DurationFlag{Name: "handoff-dead-for", Value: 120e9, Usage: "remove a SNAT handoff whose destination chassis has been dead this long"},
			&cli.DurationFlag{Name: "handoff-max-age", Value: 600e9, Usage: "remove a SNAT handoff left this long"},
		),
		Action: func(cx *cli.Context) error {
			ctx, cancel, c, err := daemon.StartCentral(cx, "southd")
			if err != nil {
				return err
			}
			defer cancel()
			d := New(Config{NB: c.NB, SB: c.SB, TLS: c.TLS, DeadAfter: cx.Duration("dead-after"), HubsPerVPC: cx.Int("hubs-per-vpc"),
				LearnedAge: cx.Duration("learned-age"), AgeBatch: cx.Int("age-batch"),
				HandoffDeadFor: cx.Duration("handoff-dead-for"), HandoffMaxAge: cx.Duration("handoff-max-age"), ProbeInterval: c.ProbeInterval, Log: c.Log, Metrics: NewMetrics(c.Registry)})
			return d.Run(ctx)
		},
	}
}
