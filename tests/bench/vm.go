package bench

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
	"github.com/vishvananda/netlink"

	"github.com/courier-sdn/courier/internal/lab"
	"github.com/courier-sdn/courier/tools/sandbox"
)

// What a VM sees (#13): how long a DHCP DISCOVER waits for its OFFER,
// measured in the VM, answered by the DVR in the kernel and, for the
// choice DEVELOPERS.md records, by a user-space server on the host side
// of a VM's veth (what hostd answering from packets handed up would at
// best be); and what a VM left at MTU 1500 gets through the overlay
// against one at the overlay's MTU, in interleaved rounds.

// VMResult is that benchmark's result.
type VMResult struct {
	// DISCOVER to OFFER in ms, per answerer, over Exchanges exchanges
	// in Rounds interleaved rounds.
	DHCPKernel Latency `json:"dhcp_kernel_ms"`
	DHCPUser   Latency `json:"dhcp_user_space_ms"`
	Exchanges  int     `json:"exchanges"`
	// One TCP stream across hosts, Gbit/s min/median/max over the rounds.
	MTU1500 Stat     `json:"mtu1500_gbps"`
	MTU1450 Stat     `json:"mtu1450_gbps"`
	Ratio   float64  `json:"mtu1500_vs_mtu1450"`
	Rounds  int      `json:"rounds"`
	Notes   []string `json:"notes,omitempty"`
}

// VM runs it.
func VM(ctx context.Context, env Env, rounds, exchanges, seconds int) (*VMResult, error) {
	sb, _, done, err := benchSandbox(ctx, env, "vm", 3, 2)
	if err != nil {
		return nil, err
	}
	defer done()
	nbctl := func(args ...string) error {
		cmd := exec.Command(filepath.Join(env.BinDir, "courier-nbctl"), append([]string{"--db", sb.NB(), "--timeout", "30s"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("courier-nbctl %v: %v: %s", args, err, out)
		}
		return nil
	}
	err = nbctl("--wait=hv", "vpc-add", "v", "--", "vxnet-add", "v", "web", "10.70.1.0/24", "--", "vxnet-add", "v", "db", "10.70.2.0/24",
		"--", "port-add", "web", "dc", "02:00:00:70:01:0a", "10.70.1.10", "--", "port-add", "web", "big", "02:00:00:70:01:0b", "10.70.1.11",
		"--", "port-add", "web", "small", "02:00:00:70:01:0c", "10.70.1.12", "--", "port-add", "db", "srv", "02:00:00:70:02:0a", "10.70.2.10")
	if err != nil {
		return nil, err
	}
	for _, v := range []struct {
		host, port string
		mtu        int
	}{{"hv3", "dc", 1500}, {"hv3", "big", 1500}, {"hv3", "small", 0}, {"hv2", "srv", 0}} {
		if err := sb.AddVMWith(ctx, v.host, v.port, sandbox.VMOptions{MTU: v.mtu}); err != nil {
			return nil, err
		}
	}
	userVM, stop, err := userSpaceDHCP(sb)
	if err != nil {
		return nil, fmt.Errorf("the user-space DHCP server: %w", err)
	}
	defer stop()
	res := &VMResult{Exchanges: exchanges, Rounds: rounds}
	var kernel, user []time.Duration
	for r := 0; r < rounds; r++ {
		for _, c := range []struct {
			ns   string
			into *[]time.Duration
		}{{sb.VMNS("dc"), &kernel}, {userVM, &user}} {
			ds, err := discoverOffer(c.ns, exchanges/rounds)
			if err != nil {
				return nil, fmt.Errorf("DHCP in %s: %w", c.ns, err)
			}
			*c.into = append(*c.into, ds...)
		}
	}
	res.DHCPKernel, res.DHCPUser = Summarize(kernel), Summarize(user)
	if err := mtuThroughput(res, sb, rounds, seconds); err != nil {
		return nil, err
	}
	res.Notes = append(res.Notes, "OVN's pinctrl path could not be set up here (no ovs-vswitchd): the user-space "+
		"server stands in for answering DHCP outside the kernel")
	return res, nil
}

// discoverOffer times n DISCOVER-to-OFFER exchanges from eth0 in ns, with
// a raw-socket client (nclient4) that sees the answer as the VM's stack
// would.
func discoverOffer(ns string, n int) ([]time.Duration, error) {
	var out []time.Duration
	err := lab.Do(ns, func() error {
		c, err := nclient4.New("eth0", nclient4.WithTimeout(2*time.Second), nclient4.WithRetry(1))
		if err != nil {
			return err
		}
		defer c.Close()
		for i := 0; i < n; i++ {
			start := time.Now()
			if _, err := c.DiscoverOffer(context.Background()); err != nil {
				return err
			}
			out = append(out, time.Since(start))
		}
		return nil
	})
	return out, err
}

// userSpaceDHCP makes a VM on a host of its own, without the DVR, whose
// DISCOVERs a user-space server on the host side of its veth answers;
// it returns the VM's namespace.
func userSpaceDHCP(sb *sandbox.Sandbox) (string, func(), error) {
	l := sb.Lab()
	h, err := l.AddHost("hu", 9)
	if err != nil {
		return "", nil, err
	}
	vm, err := l.AddVM("udc", h, lab.VMConfig{Port: "udc", MAC: net.HardwareAddr{2, 0, 0, 0x70, 9, 10}, MTU: 1500})
	if err != nil {
		return "", nil, err
	}
	offer := func(conn net.PacketConn, peer net.Addr, m *dhcpv4.DHCPv4) {
		if m.MessageType() != dhcpv4.MessageTypeDiscover {
			return
		}
		r, err := dhcpv4.NewReplyFromRequest(m, dhcpv4.WithMessageType(dhcpv4.MessageTypeOffer),
			dhcpv4.WithYourIP(net.IP{10, 70, 9, 10}), dhcpv4.WithServerIP(net.IP{10, 70, 9, 1}),
			dhcpv4.WithNetmask(net.CIDRMask(24, 32)), dhcpv4.WithRouter(net.IP{10, 70, 9, 1}),
			dhcpv4.WithLeaseTime(43200), dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IP{10, 70, 9, 1})))
		if err == nil {
			conn.WriteTo(r.ToBytes(), peer)
		}
	}
	var srv *server4.Server
	err = lab.Do(h.NS, func() error {
		link, err := netlink.LinkByName(vm.HostSide)
		if err != nil {
			return err
		}
		a := netip.MustParsePrefix("10.70.9.1/24")
		if err := netlink.AddrAdd(link, &netlink.Addr{IPNet: &net.IPNet{IP: a.Addr().AsSlice(), Mask: net.CIDRMask(24, 32)}}); err != nil {
			return err
		}
		srv, err = server4.NewServer(vm.HostSide, &net.UDPAddr{Port: 67}, offer)
		return err
	})
	if err != nil {
		return "", nil, err
	}
	go srv.Serve()
	return vm.NS, func() { srv.Close() }, nil
}

// mtuThroughput compares one TCP stream from a VM at MTU 1500 with one
// from a VM at the overlay's MTU, on the same hosts, interleaved.
func mtuThroughput(res *VMResult, sb *sandbox.Sandbox, rounds, seconds int) error {
	srv := exec.Command("ip", "netns", "exec", sb.VMNS("srv"), "iperf3", "-s", "-p", "5201")
	if err := srv.Start(); err != nil {
		return err
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	time.Sleep(500 * time.Millisecond)
	var big, small []float64
	for r := 0; r < rounds; r++ {
		for _, c := range []struct {
			vm   string
			into *[]float64
		}{{"big", &big}, {"small", &small}} {
			g, err := iperf(sb.VMNS(c.vm), "10.70.2.10", 1, seconds)
			if err != nil {
				return fmt.Errorf("%s: %w", c.vm, err)
			}
			*c.into = append(*c.into, g)
		}
	}
	res.MTU1500, res.MTU1450 = stat(big), stat(small)
	res.Ratio = res.MTU1500.Med / res.MTU1450.Med
	return nil
}

func (v *VMResult) markdown(b *strings.Builder) {
	fmt.Fprintf(b, "\n## What a VM sees\n\nDHCP DISCOVER to OFFER, measured in the VM (%d exchanges, %d interleaved rounds):\n\n", v.Exchanges, v.Rounds)
	fmt.Fprintf(b, "| answered by | p50 ms | p90 ms | p99 ms | max ms |\n|---|---|---|---|---|\n")
	for _, r := range []struct {
		name string
		l    Latency
	}{{"the DVR, in the kernel", v.DHCPKernel}, {"a user-space server on the host side", v.DHCPUser}} {
		fmt.Fprintf(b, "| %s | %.3f | %.3f | %.3f | %.3f |\n", r.name, r.l.P50, r.l.P90, r.l.P99, r.l.Max)
	}
	fmt.Fprintf(b, "\nOne TCP stream across hosts, Gbit/s (min/median/max over %d rounds): VM at MTU 1500 %.2f/%.2f/%.2f, "+
		"at the overlay's 1450 %.2f/%.2f/%.2f; ratio of medians %.2f\n", v.Rounds, v.MTU1500.Min, v.MTU1500.Med, v.MTU1500.Max,
		v.MTU1450.Min, v.MTU1450.Med, v.MTU1450.Max, v.Ratio)
	for _, n := range v.Notes {
		fmt.Fprintf(b, "\n- %s\n", n)
	}
}
