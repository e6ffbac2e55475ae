package sandbox

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"time"

	"github.com/courier-sdn/courier/dataplane"
	"github.com/courier-sdn/courier/internal/lab"
	"github.com/courier-sdn/courier/internal/proc"
	"github.com/courier-sdn/courier/ops/jsonrpc"
	"github.com/courier-sdn/courier/tools/guest"
)

// Live migration of a QEMU guest (vm-migrate), with QEMU's own
// migration: the destination host gets the port's tap first (its hostd
// attaches the DVR and claims the port, which stays bound where it
// runs), a QEMU there waits with -incoming on the host's underlay
// address, and the source migrates to it over QMP, the stream crossing
// the underlay. Once QEMU reports the migration completed (the guest
// runs on the destination), the source QEMU and its tap go: the source
// stops claiming the port and southd binds it to the destination, the
// one live claimer. The blackout is QEMU's downtime plus that handover.

// migrationPort is where a destination QEMU listens for the stream, on
// its host's VTEP address.
const migrationPort = 4444

// MigrateVM live-migrates a VM to another host. A QEMU guest migrates
// with QEMU's own migration, and MigrateVM returns once its port is bound
// and up there, with the downtime QEMU reports; a namespace VM keeps its
// namespace, processes and connections while its uplink moves
// (lab.MigrateVM), and the downtime is not measured (0).
func (s *Sandbox) MigrateVM(ctx context.Context, port, to string) (time.Duration, error) {
	s.mu.Lock()
	vm, ok := s.State.VMs[port]
	s.mu.Unlock()
	if !ok {
		return 0, fmt.Errorf("no VM %s in the sandbox", port)
	}
	if !vm.QEMU {
		return 0, s.migrateNamespaceVM(port, to)
	}
	dst, err := s.host(to)
	if err != nil {
		return 0, err
	}
	if vm.Host == to {
		return 0, fmt.Errorf("guest %s already runs on %s", port, to)
	}
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		return 0, err
	}
	img, err := guest.Build(ctx, guestCache())
	if err != nil {
		return 0, err
	}
	// The destination: its tap, then QEMU waiting for the stream.
	tap := tapName(port)
	err = lab.Do(s.HostNS(to), func() error {
		_, err := dataplane.CreateTap(tap, dataplane.AliasPrefix+port)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("guest %s: tap on %s: %w", port, to, err)
	}
	in := func(ext string) string { return s.guestFile(port, to, ext) }
	uri := fmt.Sprintf("tcp:%s:%d", dst.VTEP, migrationPort)
	mac, err := s.guestMAC(port)
	if err != nil {
		return 0, s.abortMigration(port, to, err)
	}
	// The same devices as the source's, or QEMU refuses the stream.
	spec := guest.Spec{Name: port, Image: img, Tap: tap, MAC: mac, MTU: vm.MTU, Incoming: uri,
		Console: in(".con"), ConsoleLog: in(".con.log"), QMP: in(".qmp")}
	pid, err := proc.Start(proc.Spec{Bin: qemu, Args: spec.Args(), LogFile: in(".log"), PidFile: in(".pid"),
		Start: func(c *exec.Cmd) error { return lab.Do(s.HostNS(to), c.Start) }})
	if err != nil {
		return 0, s.abortMigration(port, to, err)
	}
	s.log.Info("started incoming QEMU", "port", port, "host", to, "pid", pid)
	downtime, err := s.migrate(ctx, s.guestFile(port, vm.Host, ".qmp"), uri)
	if err != nil {
		return 0, s.abortMigration(port, to, err)
	}
	// The guest runs on the destination: the source's tap goes first,
	// and with it the source's claim, which hands the port over; then
	// its QEMU. QEMU first and its tap after held the handover back by
	// QEMU's exit too: 50-90 ms in all here, against 30-55 ms for the
	// tap alone (#19).
	done := time.Now()
	if err := lab.Do(s.HostNS(vm.Host), func() error { return delLink(tap) }); err != nil {
		return 0, fmt.Errorf("guest %s: remove its tap on %s: %w", port, vm.Host, err)
	}
	handedOver := time.Since(done)
	if err := s.stopQEMU(port, vm.Host); err != nil {
		return 0, err
	}
	s.log.Info("migrated", "port", port, "from", vm.Host, "to", to, "downtime_ms", downtime,
		"source_tap_removed_after", handedOver, "source_stopped_after", time.Since(done))
	vm.Host = to
	s.setVM(port, &vm)
	if err := s.save(); err != nil {
		return 0, err
	}
	return time.Duration(downtime) * time.Millisecond, s.WaitBound(ctx, port, to, 15*time.Second)
}

// guestMAC is a guest's MAC: its port's.
func (s *Sandbox) guestMAC(port string) (net.HardwareAddr, error) {
	p, _, _, err := s.portInfo(context.Background(), port)
	if err != nil {
		return nil, err
	}
	return net.ParseMAC(p.MAC)
}

// migrate asks the source QEMU to migrate to uri and waits for the end.
func (s *Sandbox) migrate(ctx context.Context, qmp, uri string) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	// The incoming QEMU listens once it has started: retry the migrate
	// until it accepts.
	src, err := guest.DialQMP(ctx, qmp)
	if err != nil {
		return 0, err
	}
	defer src.Close()
	for {
		d, err := src.Migrate(ctx, uri)
		if err == nil {
			return d, nil
		}
		select {
		case <-ctx.Done():
			return 0, err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// abortMigration removes the destination's QEMU and tap after a failed
// migration; the guest keeps running on its source.
func (s *Sandbox) abortMigration(port, to string, cause error) error {
	return errors.Join(cause, s.stopQEMU(port, to))
}

// WaitBound waits until a port is bound to chassis and up there.
func (s *Sandbox) WaitBound(ctx context.Context, port, chassis string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := jsonrpc.Dial(s.SB(), nil)
	if err != nil {
		return err
	}
	defer conn.Close()
	for {
		var res []struct {
			Rows []map[string]any `json:"rows"`
		}
		err := conn.Call(ctx, "transact", []any{"Courier_Southbound", map[string]any{"op": "select", "table": "Port_Binding",
			"where": []any{[]any{"logical_port", "==", port}}, "columns": []string{"up", "chassis"}}}, &res)
		if err == nil && len(res) == 1 && len(res[0].Rows) == 1 {
			// chassis names the chassis (a string, not a reference).
			if pb := res[0].Rows[0]; pb["up"] == true && pb["chassis"] == chassis {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("port %s is not bound and up on %s", port, chassis)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// migrateNamespaceVM moves a namespace VM's uplink to another host.
func (s *Sandbox) migrateNamespaceVM(port, to string) error {
	from, _ := s.HasVM(port)
	if from == to {
		return fmt.Errorf("VM %s already runs on %s", port, to)
	}
	if _, err := s.host(to); err != nil {
		return err
	}
	if err := s.lab.MigrateVM(port, s.lab.Hosts[from], s.lab.Hosts[to]); err != nil {
		return fmt.Errorf("migrate VM %s to %s: %w", port, to, err)
	}
	s.mu.Lock()
	vm := s.State.VMs[port]
	vm.Host = to
	s.State.VMs[port] = vm
	s.mu.Unlock()
	return s.save()
}
