package sandbox

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/netip"

	"github.com/courier-sdn/courier/tools/nbctl"
)

// The physical network (#15): with --gateways N the sandbox also has a
// server of the data centre's own network, namespace <prefix>phys on the
// fabric (192.168.200.10/24, a second subnet on the hosts' segment), and
// the external network "dc" of kind physical (192.168.200.0/24). An EIP
// of dc is served by its port's host on its underlay NIC, no gateway on
// the path: courier-nbctl eip-add dc 192.168.200.5 --port vm1, then
// courier-sandbox exec phys -- ping 192.168.200.5.

// Names and addresses of the sandbox's physical network.
const (
	PhysName    = "phys"
	PhysNetwork = "dc"
)

var (
	PhysAddr = netip.MustParsePrefix("192.168.200.10/24")
	PhysCIDR = netip.MustParsePrefix("192.168.200.0/24")
)

// PhysState is what the sandbox records of its physical server.
type PhysState struct {
	NS      string `json:"ns"`
	Addr    string `json:"addr"`
	Network string `json:"network"`
	CIDR    string `json:"cidr"`
}

// addPhys creates the physical server and the external network dc.
func (s *Sandbox) addPhys(ctx context.Context) error {
	if err := s.lab.AddPhys(PhysAddr); err != nil {
		return err
	}
	s.State.Phys = &PhysState{NS: s.lab.PhysNS(), Addr: PhysAddr.Addr().String(), Network: PhysNetwork, CIDR: PhysCIDR.String()}
	if err := s.save(); err != nil {
		return err
	}
	var out bytes.Buffer
	err := nbctl.Run(ctx, nbctl.Options{DB: s.NB(), Wait: "none", Format: "table", LeaderOnly: true},
		[]string{"--may-exist", "extnet-add", PhysNetwork, PhysCIDR.String(), "--kind", "physical"}, &out)
	if err != nil {
		return fmt.Errorf("external network %s: %w", PhysNetwork, err)
	}
	return nil
}

// PhysNS is the physical server's namespace, or "" without one.
func (s *Sandbox) PhysNS() string {
	if s.State.Phys == nil {
		return ""
	}
	return s.State.Phys.NS
}

// printPhys says how to reach the physical server, if there is one.
func (s *Sandbox) printPhys(w io.Writer) {
	p := s.State.Phys
	if p == nil {
		return
	}
	fmt.Fprintf(w, "physical server (%s): %s on the fabric; external network %s (%s, physical: served by each VM's host, no gateway)\n",
		p.NS, p.Addr, p.Network, p.CIDR)
	fmt.Fprintf(w, "  courier-nbctl eip-add %s 192.168.200.5 --port PORT; courier-sandbox exec %s -- ping 192.168.200.5\n", p.Network, PhysName)
}
