package daemon

import (
	"context"
	"crypto/tls"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/urfave/cli/v2"

	"github.com/courier-sdn/courier/internal/cliargs"
	"github.com/courier-sdn/courier/internal/pki"
	"github.com/courier-sdn/courier/internal/ready"
	"github.com/courier-sdn/courier/internal/version"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/ops/jsonrpc"
)

// Database flags shared by the daemons: --nb and --sb, each defaulting to
// $COURIER_NB_DB / $COURIER_SB_DB and then to the run directory's socket.
// Each call returns new flags (urfave/cli flags keep parsing state).

// NBFlag is --nb.
func NBFlag() cli.Flag {
	return &cli.StringFlag{Name: "nb",
		Usage: "northbound `REMOTES`, comma-separated (default: $COURIER_NB_DB, else the run directory's nb.sock)"}
}

// SBFlag is --sb.
func SBFlag() cli.Flag {
	return &cli.StringFlag{Name: "sb",
		Usage: "southbound `REMOTES`, comma-separated (default: $COURIER_SB_DB, else the run directory's sb.sock)"}
}

// RunDirFlag is --run-dir.
func RunDirFlag() cli.Flag {
	return &cli.StringFlag{Name: "run-dir", Usage: "run directory holding the default sockets",
		EnvVars: []string{"COURIER_RUNDIR"}, Value: ops.DefaultRunDir}
}

// NBRemotes resolves --nb.
func NBRemotes(cx *cli.Context) ([]string, error) {
	return remotes(cx, "nb", ops.DefaultNBRemote)
}

// SBRemotes resolves --sb.
func SBRemotes(cx *cli.Context) ([]string, error) {
	return remotes(cx, "sb", ops.DefaultSBRemote)
}

func remotes(cx *cli.Context, flag string, fallback func(runDir string) string) ([]string, error) {
	arg := cx.String(flag)
	if arg == "" {
		arg = fallback(ops.RunDir(cx.String("run-dir")))
	}
	return ops.ParseRemotes(arg)
}

// CentralFlags are a central daemon's (northd's, southd's) flags: the
// databases and run directory, its own, then --metrics-addr and
// --log-level.
func CentralFlags(own ...cli.Flag) []cli.Flag {
	flags := []cli.Flag{NBFlag(), SBFlag(), RunDirFlag()}
	flags = append(flags, pki.Flags()...)
	flags = append(flags, own...)
	flags = append(flags, &cli.DurationFlag{Name: "probe-interval", Value: jsonrpc.DefaultProbeInterval,
		Usage: "echo a database server that has been silent this long, and give it up (and the southbound lock) when silent 3 times as long. Raise it for very large databases, whose big commits keep the server silent for seconds"})
	return append(append(flags, MetricsFlag()), LogFlags()...)
}

// MetricsFlag is --metrics-addr.
func MetricsFlag() cli.Flag {
	return &cli.StringFlag{Name: "metrics-addr",
		Usage: "serve Prometheus metrics (/metrics), /healthz and /readyz on `ADDR` (host:port; a port alone is loopback's); empty: off"}
}

// Central is what a central daemon starts with, read from CentralFlags.
type Central struct {
	Log      *slog.Logger
	NB, SB   []string
	Registry *prometheus.Registry
	// TLS is the client configuration for ssl: remotes, nil without
	// --private-key, --certificate and --ca-cert.
	TLS *tls.Config
	// ProbeInterval is --probe-interval (jsonrpc.ProbeVerdict).
	ProbeInterval time.Duration
}

// StartCentral refuses stray arguments, reads the shared flags, starts
// serving metrics and tells its starter that it is up (internal/ready):
// from here on a central daemon only reconnects, it does not exit by
// itself. The context ends on SIGINT or SIGTERM.
func StartCentral(cx *cli.Context, component string) (context.Context, context.CancelFunc, *Central, error) {
	if err := cliargs.None(cx); err != nil {
		return nil, nil, nil, err
	}
	ctx, stop := SignalContext()
	fail := func(err error) (context.Context, context.CancelFunc, *Central, error) {
		stop()
		return nil, nil, nil, err
	}
	log, err := OpenLog(ctx, cx, component)
	if err != nil {
		return fail(err)
	}
	nb, err := NBRemotes(cx)
	if err != nil {
		return nil, nil, nil, err
	}
	if err != nil {
		return fail(err)
	}
	sb, err := SBRemotes(cx)
	if err != nil {
		return fail(err)
	}
	creds, err := pki.FromFlags(cx)
	if err != nil {
		return fail(err)
	}
	if err := pki.Require(creds, nb, sb); err != nil {
		return fail(err)
	}
	reg := NewRegistry()
	RegisterBuildInfo(reg, component)
	health := &Health{}
	ctx = WithHealth(ctx, health)
	if err := ServeMetrics(ctx, cx.String("metrics-addr"), reg, health, log); err != nil {
		return fail(err)
	}
	if creds != nil {
		log.Info("TLS identity", "cn", creds.CommonName(), "serial", creds.Serial(), "expires", creds.NotAfter())
	}
	log.Info("starting", "version", version.String(), "nb", nb, "sb", sb, "role", "active/standby by the southbound lock courier_"+component)
	if err := ready.Notify(); err != nil {
		log.Warn("could not tell the starter that this daemon is up", "err", err)
	}
	// The caller defers cancel: it runs when the daemon's loop has
	// returned, which is a clean stop.
	cancel := func() {
		stop()
		log.Info("stopped")
	}
	return ctx, cancel, &Central{Log: log, NB: nb, SB: sb, Registry: reg, TLS: creds.TLSConfig(),
		ProbeInterval: cx.Duration("probe-interval")}, nil
}
