package sandbox

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/courier-sdn/courier/internal/cliargs"
	"github.com/courier-sdn/courier/internal/version"
	"github.com/courier-sdn/courier/tools/nbctl"
)

// App is the courier-sandbox command line.
func App(stdout io.Writer) *cli.App {
	// COURIER_RUNDIR too: start tells the operator to export it for
	// courier-nbctl and courier-sbctl, and the sandbox's own commands that
	// follow must find the same sandbox.
	runDir := &cli.StringFlag{Name: "run-dir", Value: DefaultRunDir, EnvVars: []string{"COURIER_SANDBOX_DIR", "COURIER_RUNDIR"},
		Usage: "the sandbox's run directory (its database sockets are there)"}
	return &cli.App{
		Name:    "courier-sandbox",
		Version: version.String(),
		Usage:   "run a whole Courier deployment on this machine, in network namespaces",
		Description: `courier-sandbox start builds: the northbound and southbound ovsdb-servers,
courier-northd and courier-southd; an underlay (namespace cs-fabric, one
veth per host); hypervisors hv1..hvN (namespaces cs-hv1.., chassis of the
same names), each running courier-hostd, the first H of them hubs. VMs are
namespaces cs-PORT, made with vm-add from ports declared in the northbound.

Point courier-nbctl and courier-sbctl at it with
  export COURIER_RUNDIR=/var/run/courier/sandbox
and run a command in a VM with
  courier-sandbox exec PORT -- ping 10.0.1.11

courier-sandbox host-down HOST simulates a host's failure (its hostd
killed, its links down), host-up its return.

courier-sandbox stop removes every namespace, link, pinned object and
process the sandbox made, also after a crash.`,
		Flags:           []cli.Flag{runDir},
		HideHelpCommand: true,
		Action:          cliargs.UnknownCommand,
		Commands: []*cli.Command{
			startCommand(stdout),
			stopCommand(),
			statusCommand(stdout),
			showCommand(stdout),
			vmAddCommand(),
			vmDelCommand(),
			vmMoveCommand(),
			vmMigrateCommand(stdout),
			hostDownCommand(stdout),
			hostUpCommand(stdout),
			underlayReplaceCommand(stdout),
			execCommand(stdout),
			relayCommand(),
			demoCommand(stdout),
		},
	}
}

// Demo declares a small world and shows it working.
func Demo(ctx context.Context, s *Sandbox, out io.Writer) error {
	hosts := []string{}
	for _, h := range s.State.Hosts {
		hosts = append(hosts, h.Name)
	}
	on := func(i int) string { return hosts[i%len(hosts)] }
	nb := func(args ...string) error {
		var b bytes.Buffer
		err := nbctl.Run(ctx, nbctl.Options{DB: s.NB(), Wait: "hv", Format: "table", Timeout: 30 * time.Second}, args, &b)
		if err != nil {
			return fmt.Errorf("courier-nbctl %s: %w", strings.Join(args, " "), err)
		}
		return nil
	}
	fmt.Fprintln(out, "Declaring VPC blue (vxnets web 10.0.1.0/24, db 10.0.2.0/24) and VPC red (vxnet app 10.0.1.0/24, the same CIDR as blue's web)...")
	steps := [][]string{
		{"vpc-add", "blue", "--", "vxnet-add", "blue", "web", "10.0.1.0/24", "--", "vxnet-add", "blue", "db", "10.0.2.0/24",
			"--", "vpc-add", "red", "--", "vxnet-add", "red", "app", "10.0.1.0/24"},
		{"port-add", "web", "blue-web1", "02:00:00:0b:01:0a", "10.0.1.10", "--", "port-add", "web", "blue-web2", "02:00:00:0b:01:0b", "10.0.1.11",
			"--", "port-add", "db", "blue-db1", "02:00:00:0b:02:0a", "10.0.2.10",
			"--", "port-add", "app", "red-app1", "02:00:00:0e:01:0a", "10.0.1.10", "--", "port-add", "app", "red-app2", "02:00:00:0e:01:0b", "10.0.1.11"},
	}
	for _, st := range steps {
		if err := nb(st...); err != nil {
			return err
		}
	}
	vms := []struct{ port, host string }{{"blue-web1", on(0)}, {"blue-web2", on(1)}, {"blue-db1", on(2)}, {"red-app1", on(0)}, {"red-app2", on(1)}}
	for _, v := range vms {
		if _, ok := s.HasVM(v.port); ok {
			continue
		}
		if err := s.AddVM(ctx, v.host, v.port); err != nil {
			return err
		}
		fmt.Fprintf(out, "  VM %s on %s\n", v.port, v.host)
	}
	if err := nb("sync"); err != nil {
		return err
	}
	check := func(from, to, what string, want bool) {
		n, _ := s.Ping(from, netip.MustParseAddr(to), 3, "0.2")
		ok := (n > 0) == want
		verdict := map[bool]string{true: "ok", false: "UNEXPECTED"}[ok]
		fmt.Fprintf(out, "  %-10s -> %-10s %-45s %d/3 answered  [%s]\n", from, to, what, n, verdict)
	}
	fmt.Fprintln(out, "Pings:")
	check("blue-web1", "10.0.1.1", "(blue web's gateway, answered on the host)", true)
	check("blue-web1", "10.0.1.11", "(blue-web2: same vxnet, another host)", true)
	check("blue-web1", "10.0.2.10", "(blue-db1: another vxnet, one hop)", true)
	check("red-app1", "10.0.1.11", "(red-app2, not blue-web2: VPCs reuse CIDRs)", true)
	check("red-app1", "10.0.2.10", "(blue's db: another VPC, unreachable)", false)
	fmt.Fprintln(out, "\nSee the bindings with: courier-sbctl --db unix:"+s.RunDir+"/sb.sock show")
	return nil
}

// guestExec runs a command in a QEMU guest through its console, prints
// its output and exits with its status.
func guestExec(ctx context.Context, s *Sandbox, port string, cmd []string, stdout io.Writer) error {
	// A lone argument is a shell command line (exec g -- 'ls | wc -l').
	line := cmd[0]
	if len(cmd) > 1 {
		line = shellQuote(cmd)
	}
	out, status, err := s.GuestExec(ctx, port, line)
	fmt.Fprint(stdout, out)
	if err != nil {
		return err
	}
	if status != 0 {
		return cli.Exit("", status)
	}
	return nil
}

func lookPath(name string) (string, error) {
	for _, d := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		if _, err := os.Stat(d + "/" + name); err == nil {
			return d + "/" + name, nil
		}
	}
	return "", fmt.Errorf("%s not found", name)
}

// cleanOrphans removes what a sandbox without a state file could have
// left: namespaces with the default prefix and its pins.
func cleanOrphans(runDir string) error {
	s := &Sandbox{RunDir: runDir, State: State{Prefix: "cs-", PinRoot: "/sys/fs/bpf/courier/sandbox-cs-"}}
	s.ctl = ctlConfig(runDir, "", 0, nil)
	return s.Stop()
}

// Main runs courier-sandbox.
func Main(args []string) int {
	if err := App(os.Stdout).Run(args); err != nil {
		fmt.Fprintln(os.Stderr, "courier-sandbox:", err)
		return 1
	}
	return 0
}
