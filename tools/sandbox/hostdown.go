package sandbox

import (
	"fmt"
	"net/netip"
	"os"

	"github.com/courier-sdn/courier/internal/lab"
	"github.com/courier-sdn/courier/internal/proc"
)

// A host's failure and return (#15), for hypervisors and gateways
// alike. host-down is what the rest of the deployment sees of a machine
// that died: its hostd is killed (SIGKILL, by the pid the sandbox
// recorded: a dead machine tells nobody it goes), then both ends of
// each of its links go down: its underlay link (its eth0 and the fabric
// bridge's port) and, for a gateway, its uplink (up0 and the internet's
// side, so that the internet's multipath route loses its next hop, as a
// router's BFD would take it out). The kill comes first, so that hostd
// never reports the links it loses. What stays is what a powered-off
// machine keeps: its namespace, its VMs and their bindings, its pinned
// data plane (which, its links down, reaches no other host; VMs on the
// same host still reach each other, which a real dead machine's would
// not).
//
// host-up brings the links back (for a gateway, and the internet's
// route through it, which the kernel deleted if every gateway was down),
// then starts hostd with the arguments it had (recorded in the run
// directory, HostdArgs included), and returns once its data plane is
// loaded; southd finds it alive at its next heartbeat.

// hostEnds are both ends of every link of host h.
func (s *Sandbox) hostEnds(h HostState) []lab.LinkEnd {
	lh := s.lab.Hosts[h.Name]
	ends := s.lab.UnderlayEnds(lh)
	if h.Gateway && s.State.Internet != nil {
		ends = append(ends, s.lab.UplinkEnds(lh)...)
	}
	return ends
}

// HostDown simulates host name's failure: its hostd killed, its links
// down on both sides. Taking a host that is down down again is not an
// error: it makes sure of both and reports wasDown.
func (s *Sandbox) HostDown(name string) (wasDown bool, err error) {
	h, err := s.host(name)
	if err != nil {
		return false, err
	}
	if pid := s.HostdPID(name); pid != 0 {
		if err := proc.Kill(pid, "courier-hostd"); err != nil {
			return h.Down, fmt.Errorf("kill hostd of %s (pid %d): %w", name, pid, err)
		}
		if proc.Matches(pid, "courier-hostd") {
			return h.Down, fmt.Errorf("hostd of %s (pid %d) survived SIGKILL", name, pid)
		}
		s.log.Info("killed hostd", "host", name, "pid", pid)
	}
	os.Remove(s.hostdPid(name))
	if err := lab.SetLinks(s.hostEnds(h), false); err != nil {
		return h.Down, fmt.Errorf("host %s: %w", name, err)
	}
	if h.Gateway {
		// The internet's route through the gateways that are left, as
		// HostUp sets it: the kernel only marks a dead next hop, and
		// twice in ~15 e2e runs the route was found gone altogether
		// after a gateway's death (TestSNATToTheInternet's stream).
		if err := s.routeInternet(); err != nil {
			return h.Down, fmt.Errorf("host %s: %w", name, err)
		}
	}
	s.setDown(name, true)
	return h.Down, s.save()
}

// HostUp brings host name back: its links up on both sides, its hostd
// started as it was. wasUp says the host was up already (not down, its
// links up, its hostd running), in which case nothing changed.
func (s *Sandbox) HostUp(name string) (wasUp bool, err error) {
	h, err := s.host(name)
	if err != nil {
		return false, err
	}
	ends := s.hostEnds(h)
	linksUp, err := lab.LinksUp(ends)
	if err != nil {
		return false, fmt.Errorf("host %s: %w", name, err)
	}
	if err := lab.SetLinks(ends, true); err != nil {
		return false, fmt.Errorf("host %s: %w", name, err)
	}
	if h.Gateway {
		if err := s.routeInternet(); err != nil {
			return false, fmt.Errorf("host %s: %w", name, err)
		}
	}
	running := s.HostdPID(name) != 0
	if !running {
		if err := s.startHostd(name); err != nil {
			return false, fmt.Errorf("host %s: %w", name, err)
		}
	}
	s.setDown(name, false)
	return !h.Down && linksUp && running, s.save()
}

// routeInternet puts the internet's multipath route back through every
// gateway whose link is up: the kernel deletes it when the last one's
// link goes down.
func (s *Sandbox) routeInternet() error {
	in := s.State.Internet
	if in == nil {
		return nil
	}
	public, err := netip.ParsePrefix(in.Public)
	if err != nil {
		return err
	}
	uplinks := map[string]netip.Addr{}
	for g, a := range in.Gateways {
		if uplinks[g], err = netip.ParseAddr(a); err != nil {
			return err
		}
	}
	return s.lab.RouteInternet(public, uplinks)
}

// IsDown reports whether host-down took the host down (and host-up has
// not brought it back).
func (s *Sandbox) IsDown(name string) bool {
	h, err := s.host(name)
	return err == nil && h.Down
}

func (s *Sandbox) setDown(name string, down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.State.Hosts {
		if s.State.Hosts[i].Name == name {
			s.State.Hosts[i].Down = down
		}
	}
}

// ReplaceUnderlay deletes host name's underlay link and plugs in a new
// one holding the same VTEP address, with a new ifindex and MAC, as an
// operator recreating a bond does; its hostd keeps running. The other
// hosts' static neighbour entries learn the new MAC.
func (s *Sandbox) ReplaceUnderlay(name string) error {
	h, err := s.host(name)
	if err != nil {
		return err
	}
	if h.Down {
		return fmt.Errorf("host %s is down (courier-sandbox host-up %s first): a new link would come up", name, name)
	}
	if err := s.lab.ReplaceUnderlay(name); err != nil {
		return fmt.Errorf("host %s: %w", name, err)
	}
	s.mu.Lock()
	for i := range s.State.Hosts {
		if s.State.Hosts[i].Name == name {
			s.State.Hosts[i].MAC = s.lab.Hosts[name].MAC.String()
		}
	}
	s.mu.Unlock()
	s.log.Info("replaced the underlay link", "host", name)
	return s.save()
}
