package hostd

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/urfave/cli/v2"
	"github.com/vishvananda/netlink"

	"github.com/courier-sdn/courier/dataplane"
	"github.com/courier-sdn/courier/internal/cliargs"
	"github.com/courier-sdn/courier/internal/daemon"
	"github.com/courier-sdn/courier/internal/pki"
	"github.com/courier-sdn/courier/internal/ready"
	"github.com/courier-sdn/courier/internal/version"
)

// kernelEncapFlag is --kernel-encap (dataplane.Config.KernelEncap).
var kernelEncapFlag = &cli.BoolFlag{Name: "kernel-encap", Usage: "leave every encapsulation to the VXLAN device, as before #21 " +
	"(an escape hatch, and the benchmark's baseline). By default the DVR puts the VXLAN headers on itself and sends out of the " +
	"interface that holds the VTEP address, and the device sends only what the DVR cannot (anything not IPv4, such as hub " +
	"probes and lessons; a VLAN tag; no route out of that interface; a packet over its MTU; counter encap_device)"}

// App is the courier-hostd command line.
func App() *cli.App {
	return &cli.App{
		Name:    "courier-hostd",
		Version: version.String(),
		Usage:   "run Courier on a hypervisor: the DVR on every VM port, fed from the southbound",
		Description: `courier-hostd registers the chassis, binds the ports whose VM interfaces
are on this host (a host-side interface whose alias is "courier:PORT"; see
"courier-hostd attach"): those requested for this chassis itself, the
others once southd grants them on its claim. It keeps the eBPF data plane
equal to what the
southbound says: ports, vxnets, routes, hubs, and on a hub every binding of
the VPCs it serves. Unknown destinations go through a hub, which teaches
this host the direct path in-band.

It writes back only facts about itself: its chassis rows and heartbeat,
its ports' chassis and up, the nb_cfg its kernel reflects (what
courier-nbctl --wait=hv waits for), and addresses its ports announced.
Stopping it leaves the data plane forwarding; a new hostd adopts it.

Over ssl: it presents --certificate, whose common name must be the
chassis name (courier-ctl pki sign NAME): the southbound lets it write
only rows that name it. A certificate replaced on disk is presented at
once (hostd reconnects; the data plane forwards on).`,
		Flags: append([]cli.Flag{
			// Required, but checked in run: urfave/cli would also demand
			// them of "attach".
			&cli.StringFlag{Name: "chassis", Usage: "this chassis's `NAME` (required)"},
			&cli.StringFlag{Name: "encap-ip", Usage: "this host's underlay (VTEP) `ADDRESS` (required)"},
			daemon.SBFlag(), daemon.RunDirFlag(),
			&cli.StringSliceFlag{Name: "role", Usage: "a role of this chassis: hub, gateway; repeatable"},
			&cli.StringFlag{Name: "gateway-networks", Category: "Gateway",
				Usage: "with --role gateway: the external `NETWORKS` it serves, comma-separated"},
			&cli.StringFlag{Name: "uplink", Category: "Gateway", Usage: "with --role gateway: the `INTERFACE` facing the external networks"},
			&cli.StringFlag{Name: "gateway-next-hop", Category: "Gateway",
				Usage: "with --role gateway: send upstream through this `ADDRESS` for networks whose External_Network.next_hop is unset (default: the gateway's own routes)"},
			&cli.StringFlag{Name: "pin-root", Value: dataplane.DefaultPinRoot, Usage: "pin BPF objects under `DIR`/CHASSIS"},
			&cli.StringFlag{Name: "device", Value: dataplane.DefaultDevice, Usage: "name of the VXLAN device"},
			kernelEncapFlag,
			&cli.DurationFlag{Name: "heartbeat", Value: defaultHeartbeat, Usage: "how often to tell southd this chassis is alive"},
			&cli.DurationFlag{Name: "refresh", Value: defaultRefresh, Usage: "refresh a learned path through a hub after this long (to the kernel's tick: a path is used up to a tick, a few ms, longer)"},
			&cli.DurationFlag{Name: "cache-idle", Value: defaultCacheIdle, Usage: "forget learned paths unused for this long"},
			&cli.IntFlag{Name: "snat-port-quota", Value: DefaultSNATPortQuota, Category: "Protection",
				Usage: "per VM port, connections translated by SNAT it may hold at once (its share of the host's table of 262,144); 0: no limit"},
			&cli.Float64Flag{Name: "hub-budget", Value: dataplane.DefaultHubBudget.Rate, Category: "Protection",
				Usage: "per VM port, packets a second it may send to hubs (first packets to destinations not learned yet); 0: no limit"},
			&cli.IntFlag{Name: "hub-burst", Value: dataplane.DefaultHubBudget.Burst, Category: "Protection",
				Usage: "per VM port, packets it may send to hubs at once"},
			&cli.Float64Flag{Name: "announce-budget", Value: dataplane.DefaultAnnounceBudget.Rate, Category: "Protection",
				Usage: "per VM port, new addresses a second reported to hostd (gratuitous ARP, addresses of ports with unknown addresses); 0: no limit"},
			&cli.IntFlag{Name: "announce-burst", Value: dataplane.DefaultAnnounceBudget.Burst, Category: "Protection",
				Usage: "per VM port, new addresses reported at once"},
			&cli.Float64Flag{Name: "icmp-budget", Value: dataplane.DefaultICMPBudget.Rate, Category: "Protection",
				Usage: "per VM port, ICMP errors a second sent back to it (time exceeded, unreachable, fragmentation needed); 0: no limit"},
			&cli.IntFlag{Name: "icmp-burst", Value: dataplane.DefaultICMPBudget.Burst, Category: "Protection",
				Usage: "per VM port, ICMP errors sent at once"},
			&cli.DurationFlag{Name: "unknown-ttl", Value: dataplane.DefaultUnknownTTL, Category: "Protection",
				Usage: "after a hub says a destination is unknown, drop packets to it here for this long"},
			&cli.DurationFlag{Name: "hub-probe-interval", Value: defaultProbeInterval, Category: "Hub liveness",
				Usage: "probe each hub this often (0: never); a hub's kernel answers"},
			&cli.DurationFlag{Name: "hub-down-after", Value: dataplane.DefaultHubDownAfter, Category: "Hub liveness",
				Usage: "send new flows to another hub when one has not answered probes for this long"},
			daemon.MetricsFlag(),
		}, append(daemon.LogFlags(), pki.Flags()...)...),
		Action: run,
		Commands: []*cli.Command{{
			Name:      "attach",
			Usage:     "tie a VM interface to a port by setting its alias courier:PORT",
			ArgsUsage: "PORT IFNAME",
			Action: func(cx *cli.Context) error {
				if cx.NArg() != 2 {
					return fmt.Errorf("usage: courier-hostd attach PORT IFNAME")
				}
				l, err := netlink.LinkByName(cx.Args().Get(1))
				if err != nil {
					return fmt.Errorf("interface %s: %w", cx.Args().Get(1), err)
				}
				return netlink.LinkSetAlias(l, dataplane.AliasPrefix+cx.Args().Get(0))
			},
		}},
	}
}

func run(cx *cli.Context) error {
	if err := cliargs.None(cx); err != nil {
		return err
	}
	for _, f := range []string{"chassis", "encap-ip"} {
		if cx.String(f) == "" {
			return fmt.Errorf("--%s is required (see courier-hostd --help)", f)
		}
	}
	ctx, cancel := daemon.SignalContext()
	defer cancel()
	log, err := daemon.OpenLog(ctx, cx, "hostd")
	if err != nil {
		return err
	}
	encap, err := netip.ParseAddr(cx.String("encap-ip"))
	if err != nil || !encap.Is4() {
		return fmt.Errorf("--encap-ip %q is not an IPv4 address", cx.String("encap-ip"))
	}
	hub := false
	var gw *GatewayConfig
	for _, r := range cx.StringSlice("role") {
		switch strings.TrimSpace(r) {
		case "hub":
			hub = true
		case "gateway":
			if gw, err = gatewayFlags(cx); err != nil {
				return err
			}
		default:
			return fmt.Errorf("--role %q: the roles are hub and gateway", r)
		}
	}
	sb, err := daemon.SBRemotes(cx)
	if err != nil {
		return err
	}
	creds, err := pki.FromFlags(cx)
	if err != nil {
		return err
	}
	if err := pki.Require(creds, sb); err != nil {
		return err
	}
	if creds != nil && creds.CommonName() != cx.String("chassis") {
		return fmt.Errorf("--chassis is %q but %s is %q's certificate: the southbound lets a chassis write only the rows "+
			"that name its certificate's common name (sign one with courier-ctl pki sign %s)",
			cx.String("chassis"), creds.Files().Certificate, creds.CommonName(), cx.String("chassis"))
	}
	reg := daemon.NewRegistry()
	daemon.RegisterBuildInfo(reg, "hostd")
	health := &daemon.Health{}
	ctx = daemon.WithHealth(ctx, health)
	if err := daemon.ServeMetrics(ctx, cx.String("metrics-addr"), reg, health, log); err != nil {
		return err
	}
	log.Info("starting", "version", version.String(), "chassis", cx.String("chassis"), "encap_ip", encap, "hub", hub, "sb", sb)
	defer log.Info("stopped")
	d := New(Config{Chassis: cx.String("chassis"), EncapIP: encap, Hub: hub, Gateway: gw, SB: sb, Credentials: creds, PinRoot: cx.String("pin-root"),
		Device: cx.String("device"), KernelEncap: cx.Bool("kernel-encap"), Heartbeat: cx.Duration("heartbeat"), Refresh: cx.Duration("refresh"),
		CacheIdle: cx.Duration("cache-idle"), SNATPortQuota: cx.Int("snat-port-quota"), Log: log, Metrics: NewMetrics(reg),
		HubBudget:      dataplane.Budget{Rate: cx.Float64("hub-budget"), Burst: cx.Int("hub-burst")},
		AnnounceBudget: dataplane.Budget{Rate: cx.Float64("announce-budget"), Burst: cx.Int("announce-burst")},
		ICMPBudget:     dataplane.Budget{Rate: cx.Float64("icmp-budget"), Burst: cx.Int("icmp-burst")},
		UnknownTTL:     cx.Duration("unknown-ttl"), HubDownAfter: cx.Duration("hub-down-after"),
		ProbeInterval: cx.Duration("hub-probe-interval"),
		Ready: func() {
			if err := ready.Notify(); err != nil {
				log.Warn("could not tell the starter that hostd is up", "err", err)
			}
		}})
	return d.Run(ctx)
}

// gatewayFlags reads what --role gateway needs.
func gatewayFlags(cx *cli.Context) (*GatewayConfig, error) {
	g := &GatewayConfig{Uplink: cx.String("uplink")}
	for _, n := range strings.Split(cx.String("gateway-networks"), ",") {
		if n = strings.TrimSpace(n); n != "" {
			g.Networks = append(g.Networks, n)
		}
	}
	if len(g.Networks) == 0 || g.Uplink == "" {
		return nil, fmt.Errorf("--role gateway needs --gateway-networks and --uplink")
	}
	if s := cx.String("gateway-next-hop"); s != "" {
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is4() {
			return nil, fmt.Errorf("--gateway-next-hop %q is not an IPv4 address", s)
		}
		g.NextHop = a
	}
	return g, nil
}
