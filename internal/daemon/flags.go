package daemon

import (
	"github.com/urfave/cli/v2"

	"github.com/courier-sdn/courier/ops"
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
