package sandbox

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/courier-sdn/courier/internal/cliargs"
	"github.com/courier-sdn/courier/internal/ready"
	"github.com/courier-sdn/courier/tools/nbctl"
)

// startCommand is courier-sandbox start.
func startCommand(stdout io.Writer) *cli.Command {
	return &cli.Command{
		Name:   "start",
		Usage:  "start a sandbox (replacing any earlier one in the run directory)",
		Before: cliargs.None,
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "hosts", Value: 3, Usage: "number of hypervisors"},
			&cli.IntFlag{Name: "hubs", Value: 2, Usage: "how many of them are hubs"},
			&cli.IntFlag{Name: "gateways", Usage: "add this many gateway chassis (gw1..gwN) of an external network \"internet\" (203.0.113.0/24), and an internet namespace (198.51.100.10) routed through them; and a physical server on the fabric (192.168.200.10) with an external network \"dc\" of kind physical (192.168.200.0/24)"},
			&cli.BoolFlag{Name: "tls", Usage: "run over mutual TLS with role-based access control, as across machines (PKI in RUN-DIR/pki)"},
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "log what is done"},
		},
		Action: func(cx *cli.Context) error {
			lvl := slog.LevelWarn
			if cx.Bool("verbose") {
				lvl = slog.LevelInfo
			}
			s, err := Start(context.Background(), Options{RunDir: cx.String("run-dir"), Hosts: cx.Int("hosts"), Hubs: cx.Int("hubs"), Gateways: cx.Int("gateways"), TLS: cx.Bool("tls"),
				Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))})
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, `Courier sandbox running: %d hypervisors (hv1..hv%d), %d of them hubs.

  export COURIER_RUNDIR=%s
  courier-nbctl vpc-add blue -- vxnet-add blue web 10.0.1.0/24
  courier-nbctl --wait=hv port-add web vm1 02:00:00:00:01:0a 10.0.1.10
  courier-sandbox vm-add hv1 vm1
  courier-sandbox exec vm1 -- ping 10.0.1.1
  courier-sbctl show

Or let the sandbox show itself: courier-sandbox demo
Namespaces: %sfabric, %shv1.., %sPORT; logs in %s. Stop with: courier-sandbox stop
`, cx.Int("hosts"), cx.Int("hosts"), cx.Int("hubs"), s.RunDir, s.State.Prefix, s.State.Prefix, s.State.Prefix, s.RunDir)
			s.printTLS(stdout)
			s.printInternet(stdout)
			s.printPhys(stdout)
			return nil
		},
	}
}

// stopCommand is courier-sandbox stop.
func stopCommand() *cli.Command {
	return &cli.Command{
		Name:   "stop",
		Usage:  "remove everything the sandbox made",
		Before: cliargs.None,
		Action: func(cx *cli.Context) error {
			s, err := openSandbox(cx)
			if err != nil {
				// Nothing recorded: still clean the default prefix.
				return cleanOrphans(cx.String("run-dir"))
			}
			return s.Stop()
		},
	}
}

// statusCommand is courier-sandbox status.
func statusCommand(stdout io.Writer) *cli.Command {
	return &cli.Command{
		Name:   "status",
		Usage:  "show the sandbox's hosts, hostd processes and VMs",
		Before: cliargs.None,
		Action: func(cx *cli.Context) error {
			s, err := openSandbox(cx)
			if err != nil {
				return err
			}
			for _, h := range s.State.Hosts {
				role := ""
				if h.Hub {
					role = " hub"
				}
				if h.Gateway {
					role = " gateway"
				}
				state := "hostd stopped"
				if pid := s.HostdPID(h.Name); pid != 0 {
					state = fmt.Sprintf("hostd pid %d", pid)
				}
				if h.Down {
					state = "DOWN (links down, " + state + "; courier-sandbox host-up " + h.Name + ")"
				}
				fmt.Fprintf(stdout, "%s (%s, vtep %s%s): %s\n", h.Name, s.HostNS(h.Name), h.VTEP, role, state)
			}
			for port, vm := range s.State.VMs {
				fmt.Fprintf(stdout, "  vm %s on %s: %s (namespace %s)\n", port, vm.Host, vm.IP, s.VMNS(port))
			}
			for _, st := range s.ctl.Status() {
				fmt.Fprintf(stdout, "%s: running=%v pid=%d\n", st.Name, st.Running, st.PID)
			}
			s.printTLS(stdout)
			s.printInternet(stdout)
			s.printPhys(stdout)
			return nil
		},
	}
}

// showCommand is courier-sandbox show.
func showCommand(stdout io.Writer) *cli.Command {
	return &cli.Command{
		Name:  "show",
		Usage: "show the sandbox's network: VPCs, vxnets, ports and routes, where each port runs, the hubs and what hosts learned",
		Flags: []cli.Flag{&cli.StringFlag{Name: "format", Value: "text",
			Usage: "text; dot, a Graphviz graph; or svg, drawn by Graphviz's dot (`FORMAT`)"}},
		Before: cliargs.None,
		Action: func(cx *cli.Context) error {
			s, err := openSandbox(cx)
			if err != nil {
				return err
			}
			o := nbctl.Options{DB: s.NB(), SB: s.SB(), Wait: "none", Format: "table", Timeout: 30 * time.Second}
			return nbctl.Run(cx.Context, o, []string{"show", "--format", cx.String("format"), "--runtime"}, stdout)
		},
	}
}

// vmAddCommand is courier-sandbox vm-add.
func vmAddCommand() *cli.Command {
	return &cli.Command{
		Name:      "vm-add",
		Usage:     "create the VM of a northbound port on a host",
		ArgsUsage: "HOST PORT",
		Description: `The VM is a namespace with the port's MAC. By default it is configured as
the northbound says: its IP, its vxnet's gateway, the overlay MTU. With
--dhcp it starts with nothing but its MAC, at MTU 1500 as a VM's OS would,
and runs a DHCP client (udhcpc unless --dhcp-client says dhclient or
dhcpcd) that learns its address, gateway, MTU and DNS from the host;
vm-add returns once it has an address. A port whose MAC or IP is dynamic
(courier-nbctl port-add VXNET PORT) gets the ones northd allocated:
vm-add waits until northd has written them into the port's
dynamic_addresses, and fails with the port's error if northd refused it.`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "dhcp", Usage: "configure nothing: the VM runs a DHCP client"},
			&cli.StringFlag{Name: "dhcp-client", Value: "udhcpc", Usage: "with --dhcp, the client: udhcpc, dhclient or dhcpcd"},
			&cli.IntFlag{Name: "mtu", Usage: "the VM's MTU (default: the overlay's; 1500 with --dhcp)"},
			&cli.BoolFlag{Name: "qemu", Usage: "boot a real QEMU guest on a tap in the host's namespace, not a namespace VM (image: make guest)"},
		},
		Action: func(cx *cli.Context) error {
			s, err := openArgs(cx, 2, "vm-add [--dhcp] HOST PORT")
			if err != nil {
				return err
			}
			o := VMOptions{MTU: cx.Int("mtu"), QEMU: cx.Bool("qemu")}
			if cx.Bool("dhcp") {
				o.DHCP = cx.String("dhcp-client")
			}
			return s.AddVMWith(context.Background(), cx.Args().Get(0), cx.Args().Get(1), o)
		},
	}
}

// vmDelCommand is courier-sandbox vm-del.
func vmDelCommand() *cli.Command {
	return &cli.Command{
		Name:      "vm-del",
		Usage:     "remove a VM",
		ArgsUsage: "PORT",
		Action: func(cx *cli.Context) error {
			s, err := openArgs(cx, 1, "vm-del PORT")
			if err != nil {
				return err
			}
			return s.DelVM(cx.Args().First())
		},
	}
}

// vmMoveCommand is courier-sandbox vm-move.
func vmMoveCommand() *cli.Command {
	return &cli.Command{
		Name:      "vm-move",
		Usage:     "move a VM to another host, keeping its MAC and IP",
		ArgsUsage: "PORT HOST",
		Action: func(cx *cli.Context) error {
			s, err := openArgs(cx, 2, "vm-move PORT HOST")
			if err != nil {
				return err
			}
			return s.MoveVM(context.Background(), cx.Args().Get(0), cx.Args().Get(1))
		},
	}
}

// vmMigrateCommand is courier-sandbox vm-migrate.
func vmMigrateCommand(stdout io.Writer) *cli.Command {
	return &cli.Command{
		Name:      "vm-migrate",
		Usage:     "live-migrate a VM to another host, its port moving with it",
		ArgsUsage: "PORT HOST",
		Description: `A QEMU guest: QEMU's live migration. A QEMU on HOST waits with -incoming
on HOST's underlay address, the guest's QEMU migrates to it over QMP, and
once the guest runs there its old QEMU and tap go and its port is bound on
HOST. Returns once the port is up on HOST, printing QEMU's downtime.

A namespace VM: its namespace, processes and open connections stay, and
the host side of its veth moves to HOST (vm-move instead recreates the VM
there, a reboot).`,
		Action: func(cx *cli.Context) error {
			s, err := openArgs(cx, 2, "vm-migrate PORT HOST")
			if err != nil {
				return err
			}
			d, err := s.MigrateVM(context.Background(), cx.Args().Get(0), cx.Args().Get(1))
			if err != nil {
				return err
			}
			if d == 0 {
				fmt.Fprintf(stdout, "%s runs on %s\n", cx.Args().Get(0), cx.Args().Get(1))
				return nil
			}
			fmt.Fprintf(stdout, "%s runs on %s (QEMU downtime %s)\n", cx.Args().Get(0), cx.Args().Get(1), d)
			return nil
		},
	}
}

// hostDownCommand is courier-sandbox host-down.
func hostDownCommand(stdout io.Writer) *cli.Command {
	return &cli.Command{
		Name:      "host-down",
		Usage:     "simulate a host's failure: its hostd killed, its links down on both sides",
		ArgsUsage: "HOST",
		Description: `For a hypervisor (hv1..) or a gateway (gw1..) alike: its hostd is killed
(SIGKILL, by the pid the sandbox recorded), then both ends of each of
its links go down: its underlay link (eth0 in its namespace and its port
on the fabric's bridge) and, for a gateway, its uplink (up0 and the
internet's side, so that the internet's multipath route loses that next
hop, as a router's BFD would take it out). Its namespace, VMs and pinned
data plane stay, as a powered-off machine's disks would. southd declares
its chassis dead after --dead-after; its ports are marked down but keep
their bindings. status shows it as DOWN. Taking a host that is down down
again is not an error (it says so).`,
		Action: func(cx *cli.Context) error {
			s, name, err := openHost(cx, "host-down")
			if err != nil {
				return err
			}
			was, err := s.HostDown(name)
			if err != nil {
				return err
			}
			if was {
				fmt.Fprintf(stdout, "%s was already down (its hostd stopped, its links down)\n", name)
			} else {
				fmt.Fprintf(stdout, "%s is down: hostd killed, links down on both sides (courier-sandbox host-up %s brings it back)\n", name, name)
			}
			return nil
		},
	}
}

// hostUpCommand is courier-sandbox host-up.
func hostUpCommand(stdout io.Writer) *cli.Command {
	return &cli.Command{
		Name:      "host-up",
		Usage:     "bring a host back after host-down: its links up, its hostd started as it was",
		ArgsUsage: "HOST",
		Description: `Sets both ends of each of the host's links up again and starts its hostd
with the arguments it had, returning once its data plane is loaded;
southd declares the chassis alive at its next heartbeat, and its ports
come up again where they were bound. On a host that is up it changes
nothing (it says so); one whose hostd was stopped otherwise gets it
started.`,
		Action: func(cx *cli.Context) error {
			s, name, err := openHost(cx, "host-up")
			if err != nil {
				return err
			}
			was, err := s.HostUp(name)
			if err != nil {
				return err
			}
			if was {
				fmt.Fprintf(stdout, "%s was already up\n", name)
			} else {
				fmt.Fprintf(stdout, "%s is up: links up, hostd pid %d\n", name, s.HostdPID(name))
			}
			return nil
		},
	}
}

// underlayReplaceCommand is courier-sandbox underlay-replace.
func underlayReplaceCommand(stdout io.Writer) *cli.Command {
	return &cli.Command{
		Name:      "underlay-replace",
		Usage:     "replace a host's underlay link under its running hostd, as an operator recreating a bond",
		ArgsUsage: "HOST",
		Description: `Deletes the host's underlay link (eth0 in its namespace, and its port on
the fabric's bridge) and plugs in a new one holding the same VTEP address,
with a new ifindex and MAC; the other hosts' neighbour entries learn the
new MAC. Its hostd keeps running and follows the new interface within a
second: its log says "the underlay interface changed" with the new
ifindex, and courier_hostd_underlay_changes_total counts it. Until then
what the host's VMs send to other hosts may be lost. A host that is down
(host-down) is refused: a new link would come up.`,
		Action: func(cx *cli.Context) error {
			s, name, err := openHost(cx, "underlay-replace")
			if err != nil {
				return err
			}
			if err := s.ReplaceUnderlay(name); err != nil {
				return err
			}
			h := s.lab.Hosts[name]
			follows := "its hostd follows it; its log says so"
			if s.HostdPID(name) == 0 {
				follows = fmt.Sprintf("its hostd is not running: courier-sandbox host-up %s starts it", name)
			}
			fmt.Fprintf(stdout, "%s's underlay link replaced: %s, MAC %s (%s)\n", name, h.VTEP, h.MAC, follows)
			return nil
		},
	}
}

// execCommand is courier-sandbox exec.
func execCommand(stdout io.Writer) *cli.Command {
	return &cli.Command{
		Name:      "exec",
		Usage:     "run a command inside a VM",
		ArgsUsage: "PORT -- COMMAND [ARG...]",
		Action: func(cx *cli.Context) error {
			args := cx.Args().Slice()
			if len(args) < 2 {
				return fmt.Errorf("usage: courier-sandbox exec PORT -- COMMAND")
			}
			port, cmd := args[0], args[1:]
			if cmd[0] == "--" {
				cmd = cmd[1:]
			}
			s, err := openSandbox(cx)
			if err != nil {
				return err
			}
			ns := s.VMNS(port)
			if port == InternetName && s.InternetNS() != "" {
				ns = s.InternetNS()
			} else if port == PhysName && s.PhysNS() != "" {
				ns = s.PhysNS()
			} else if _, ok := s.HasVM(port); !ok {
				return fmt.Errorf("no VM %s in the sandbox", port)
			}
			if s.IsGuest(port) {
				return guestExec(cx.Context, s, port, cmd, stdout)
			}
			ip, err := lookPath("ip")
			if err != nil {
				return err
			}
			return syscall.Exec(ip, append([]string{"ip", "netns", "exec", ns}, cmd...), os.Environ())
		},
	}
}

// relayCommand is courier-sandbox relay.
func relayCommand() *cli.Command {
	return &cli.Command{
		Name:   "relay",
		Hidden: true,
		Usage:  "carry connections from a host's namespace to the southbound (started by start --tls)",
		Flags: []cli.Flag{&cli.StringFlag{Name: "netns", Required: true}, &cli.StringFlag{Name: "listen", Required: true},
			&cli.StringFlag{Name: "to", Required: true}},
		Action: func(cx *cli.Context) error {
			return Relay(cx.String("netns"), cx.String("listen"), cx.String("to"), func() {
				if err := ready.Notify(); err != nil {
					fmt.Fprintln(os.Stderr, "courier-sandbox relay:", err)
				}
			})
		},
	}
}

// demoCommand is courier-sandbox demo.
func demoCommand(stdout io.Writer) *cli.Command {
	return &cli.Command{
		Name:   "demo",
		Before: cliargs.None,
		Usage:  "declare two VPCs with overlapping CIDRs, start VMs, and show routing and isolation",
		Action: func(cx *cli.Context) error {
			s, err := openSandbox(cx)
			if err != nil {
				return err
			}
			return Demo(context.Background(), s, stdout)
		},
	}
}

// openSandbox opens the sandbox of the command line's run directory.
func openSandbox(cx *cli.Context) (*Sandbox, error) { return Open(cx.String("run-dir")) }

// openArgs opens the sandbox for a command taking n arguments, or says
// how to call it (usage: the command and its arguments).
func openArgs(cx *cli.Context, n int, usage string) (*Sandbox, error) {
	if cx.NArg() != n {
		return nil, fmt.Errorf("usage: courier-sandbox %s", usage)
	}
	return openSandbox(cx)
}

// openHost opens the sandbox for a command taking one HOST argument.
func openHost(cx *cli.Context, cmd string) (*Sandbox, string, error) {
	s, err := openArgs(cx, 1, cmd+" HOST")
	if err != nil {
		return nil, "", err
	}
	name := cx.Args().First()
	if _, err := s.host(name); err != nil {
		return nil, "", err
	}
	return s, name, nil
}
