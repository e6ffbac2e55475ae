package sandbox

import "fmt"

// MigrateVM moves a running VM to another host as a live migration
// does: its namespace, processes and open connections stay; its uplink
// moves to the new host (lab.MigrateVM).
func (s *Sandbox) MigrateVM(port, to string) error {
	from, ok := s.HasVM(port)
	if !ok {
		return fmt.Errorf("no VM %s in the sandbox", port)
	}
	if from == to {
		return fmt.Errorf("VM %s already runs on %s", port, to)
	}
	if _, err := s.host(to); err != nil {
		return err
	}
	if err := s.lab.MigrateVM(port, s.lab.Hosts[to]); err != nil {
		return fmt.Errorf("migrate VM %s to %s: %w", port, to, err)
	}
	s.mu.Lock()
	vm := s.State.VMs[port]
	vm.Host = to
	s.State.VMs[port] = vm
	s.mu.Unlock()
	return s.save()
}
