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
// migration, and the port handed over the way an orchestrator does it
// with Courier (hostd/activation.go): the port's migration destination is
// set in the northbound; the destination host gets the port's tap, so its
// hostd prepares the port (VPC joined, DVR programmed) without binding
// it, and says so in the binding (migration_prepared); a QEMU there
// waits with -incoming on the host's underlay address, and the source
// migrates to it over QMP, the stream crossing the underlay. When the
// guest resumes on the destination, QEMU's RARP out of the tap makes
// that host bind the port. Then the source QEMU and its tap go, and the
// migration destination is cleared. The blackout is QEMU's downtime plus
// the activation and the peers' convergence.

// migrationPort is where a destination QEMU listens for the stream, on
// its host's VTEP address.
const migrationPort = 4444

// MigrationParams are the QMP migration parameters vm-migrate sets
// (migrate-set-parameters). downtime-limit is the longest pause QEMU
// plans for: it iterates the pre-copy until what is left to send fits in
// it at the bandwidth it measured (QEMU's default, 300 ms, lets it stop
// the guest with that much left). max-bandwidth caps the pre-copy's
// rate (default 128 MiB/s); the underlay here is a veth, so the cap only
// lengthened the pre-copy and lowered the measured bandwidth, and with
// it what QEMU dares to leave for the pause.
func MigrationParams() map[string]any {
	return map[string]any{"downtime-limit": 10, "max-bandwidth": 4 << 30}
}

// QEMUDefaultMigrationParams are QEMU 7.2's own (query-migrate-parameters),
// for comparison.
func QEMUDefaultMigrationParams() map[string]any {
	return map[string]any{"downtime-limit": 300, "max-bandwidth": 128 << 20}
}

// MigrateVM live-migrates a VM to another host. A QEMU guest migrates
// with QEMU's own migration, and MigrateVM returns once its port is bound
// and up there, with the downtime QEMU reports; a namespace VM keeps its
// namespace, processes and connections while its uplink moves
// (lab.MigrateVM), and the downtime is not measured (0).
func (s *Sandbox) MigrateVM(ctx context.Context, port, to string) (time.Duration, error) {
	m, err := s.MigrateVMTimed(ctx, port, to, MigrationParams())
	return m.Downtime, err
}

// Migration is how a live migration went.
type Migration struct {
	Downtime time.Duration // the guest paused, as the source QEMU reports it
	// Activated: from QEMU reporting the migration completed until the
	// destination had bound the port on the guest's announcement, as
	// the southbound showed it to a client polling every 2 ms.
	Activated time.Duration
	// Paused: from the source's STOP event to the destination's RESUME
	// (QEMU's timestamps), the guest's whole pause, which the source's
	// downtime figure ends before (the destination still loads the last
	// pages and resumes); BoundAfterResume: from that RESUME until the
	// binding was seen on the destination, Courier's share. Both 0 when
	// an event was missed.
	Paused, BoundAfterResume time.Duration
}

// timeResume reads the destination's RESUME and times the pause and the
// activation from it.
func (m *Migration) timeResume(ctx context.Context, dst *guest.QMP, stop, bound time.Time) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ev, err := dst.WaitEvent(ctx, "RESUME")
	if err != nil || stop.IsZero() {
		return
	}
	m.Paused, m.BoundAfterResume = ev.At.Sub(stop), max(0, bound.Sub(ev.At))
}

// dialQMP connects to a QEMU's monitor, waiting for a QEMU just started
// to open it.
func dialQMP(ctx context.Context, path string) (*guest.QMP, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		q, err := guest.DialQMP(ctx, path)
		if err == nil {
			return q, nil
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// MigrateVMTimed is MigrateVM with QEMU's migration parameters given
// (migrate-set-parameters), returning the migration's timings.
func (s *Sandbox) MigrateVMTimed(ctx context.Context, port, to string, params map[string]any) (Migration, error) {
	s.mu.Lock()
	vm, ok := s.State.VMs[port]
	s.mu.Unlock()
	if !ok {
		return Migration{}, fmt.Errorf("no VM %s in the sandbox", port)
	}
	if !vm.QEMU {
		return Migration{}, s.migrateNamespaceVM(port, to)
	}
	if vm.Host == to {
		return Migration{}, fmt.Errorf("guest %s already runs on %s", port, to)
	}
	if err := s.setMigrationDestination(ctx, port, to); err != nil {
		return Migration{}, err
	}
	uri, err := s.startIncoming(ctx, port, to, vm.MTU)
	if err != nil {
		return Migration{}, s.abortMigration(ctx, port, to, err)
	}
	// The destination holds the port ready before the guest switches.
	if err := s.waitBinding(ctx, port, "migration_prepared", to, 15*time.Second); err != nil {
		return Migration{}, s.abortMigration(ctx, port, to, err)
	}
	// The destination's monitor says when the guest resumes there.
	dst, err := dialQMP(ctx, s.guestFile(port, to, ".qmp"))
	if err != nil {
		return Migration{}, s.abortMigration(ctx, port, to, err)
	}
	defer dst.Close()
	downtime, stop, err := s.migrate(ctx, s.guestFile(port, vm.Host, ".qmp"), uri, params)
	if err != nil {
		return Migration{}, s.abortMigration(ctx, port, to, err)
	}
	// The guest runs on the destination, whose hostd binds the port on
	// its RARP: nothing here hands it over. The source goes after.
	done := time.Now()
	m := Migration{Downtime: time.Duration(downtime) * time.Millisecond}
	activateErr := s.waitBinding(ctx, port, "chassis", to, 15*time.Second)
	bound := time.Now()
	m.Activated = bound.Sub(done)
	m.timeResume(ctx, dst, stop, bound)
	// The guest runs on the destination whether its port followed or
	// not: the source goes and the sandbox records where the guest
	// runs, so that stop finds it. Without the activation, the source
	// tap's removal still hands the port over (southd grants it to its
	// one claimer left), but the migration is reported failed.
	from := vm.Host
	vm.Host = to
	s.setVM(port, &vm)
	if err := errors.Join(s.stopQEMU(port, from), s.endMigration(ctx, port, to), s.save()); err != nil {
		return m, err
	}
	if activateErr != nil {
		return m, fmt.Errorf("guest %s resumed on %s, which did not activate its port: %w", port, to, activateErr)
	}
	s.log.Info("migrated", "port", port, "from", from, "to", to, "downtime_ms", downtime,
		"activated_after", m.Activated, "source_stopped_after", time.Since(done))
	return m, s.WaitBound(ctx, port, to, 15*time.Second)
}

// startIncoming creates the port's tap on the destination and starts a
// QEMU there that waits for the migration stream; it returns the stream's
// URI.
func (s *Sandbox) startIncoming(ctx context.Context, port, to string, mtu int) (string, error) {
	dst, err := s.host(to)
	if err != nil {
		return "", err
	}
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		return "", err
	}
	img, err := guest.Build(ctx, guestCache())
	if err != nil {
		return "", err
	}
	tap := tapName(port)
	err = lab.Do(s.HostNS(to), func() error {
		_, err := dataplane.CreateTap(tap, dataplane.AliasPrefix+port)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("guest %s: tap on %s: %w", port, to, err)
	}
	in := func(ext string) string { return s.guestFile(port, to, ext) }
	uri := fmt.Sprintf("tcp:%s:%d", dst.VTEP, migrationPort)
	mac, err := s.guestMAC(port)
	if err != nil {
		return "", err
	}
	// The same devices as the source's, or QEMU refuses the stream.
	spec := guest.Spec{Name: port, Image: img, Tap: tap, MAC: mac, MTU: mtu, Incoming: uri,
		Console: in(".con"), ConsoleLog: in(".con.log"), QMP: in(".qmp")}
	pid, err := proc.Start(proc.Spec{Bin: qemu, Args: spec.Args(), LogFile: in(".log"), PidFile: in(".pid"),
		Start: func(c *exec.Cmd) error { return lab.Do(s.HostNS(to), c.Start) }})
	if err != nil {
		return "", err
	}
	s.log.Info("started incoming QEMU", "port", port, "host", to, "pid", pid)
	return uri, nil
}

// setMigrationDestination sets (or with "" clears) the chassis a port's
// live migration takes it to, as an orchestrator does.
//
// Equivalent to: courier-nbctl port-set PORT --migrating-to CHASSIS|none
func (s *Sandbox) setMigrationDestination(ctx context.Context, port, to string) error {
	val := any([]any{"set", []any{}})
	if to != "" {
		val = to
	}
	return s.updateNBPort(ctx, port, map[string]any{"op": "update", "table": "Port",
		"where": []any{[]any{"name", "==", port}}, "row": map[string]any{"migration_destination": val}})
}

// endMigration ends a port's migration to a host where its guest now
// runs: a port requested on a chassis is requested there from now on
// (or its old host would take it back), and the migration destination
// goes, in one transaction.
//
// Equivalent to: courier-nbctl port-set PORT [--chassis TO] --migrating-to none
func (s *Sandbox) endMigration(ctx context.Context, port, to string) error {
	return s.updateNBPort(ctx, port,
		map[string]any{"op": "update", "table": "Port", "row": map[string]any{"requested_chassis": to},
			"where": []any{[]any{"name", "==", port}, []any{"requested_chassis", "!=", []any{"set", []any{}}}}},
		map[string]any{"op": "update", "table": "Port", "row": map[string]any{"migration_destination": []any{"set", []any{}}},
			"where": []any{[]any{"name", "==", port}}})
}

// updateNBPort commits ops on the northbound; the last must update the
// port.
func (s *Sandbox) updateNBPort(ctx context.Context, port string, ops ...map[string]any) error {
	conn, err := jsonrpc.Dial(s.NB(), nil)
	if err != nil {
		return err
	}
	defer conn.Close()
	var res []struct {
		Count int    `json:"count"`
		Error string `json:"error"`
	}
	params := []any{"Courier_Northbound"}
	for _, op := range ops {
		params = append(params, op)
	}
	err = conn.Call(ctx, "transact", params, &res)
	switch {
	case err != nil:
		return fmt.Errorf("port %s: its migration: %w", port, err)
	case len(res) < len(ops) || res[len(ops)-1].Count != 1:
		return fmt.Errorf("port %s: its migration: %+v", port, res)
	}
	for _, r := range res {
		if r.Error != "" {
			return fmt.Errorf("port %s: its migration: %+v", port, res)
		}
	}
	return nil
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
// It returns the downtime QEMU reports and when the source paused the
// guest (its STOP event; zero if none was seen).
func (s *Sandbox) migrate(ctx context.Context, qmp, uri string, params map[string]any) (int64, time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	// The incoming QEMU listens once it has started: retry the migrate
	// until it accepts.
	src, err := guest.DialQMP(ctx, qmp)
	if err != nil {
		return 0, time.Time{}, err
	}
	defer src.Close()
	if _, err := src.Do("migrate-set-parameters", params); err != nil {
		return 0, time.Time{}, err
	}
	for {
		d, err := src.Migrate(ctx, uri)
		if err == nil {
			var stop time.Time
			for _, e := range src.Events() {
				if e.Name == "STOP" {
					stop = e.At
				}
			}
			return d, stop, nil
		}
		select {
		case <-ctx.Done():
			return 0, time.Time{}, err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// abortMigration removes the destination's QEMU and tap after a failed
// migration, and ends the migration in the northbound; the guest keeps
// running on its source.
func (s *Sandbox) abortMigration(ctx context.Context, port, to string, cause error) error {
	return errors.Join(cause, s.stopQEMU(port, to), s.setMigrationDestination(ctx, port, ""))
}

// WaitBound waits until a port is bound to chassis and up there.
func (s *Sandbox) WaitBound(ctx context.Context, port, chassis string, timeout time.Duration) error {
	return s.waitBindingRow(ctx, port, timeout, func(pb map[string]any) bool { return pb["up"] == true && pb["chassis"] == chassis },
		fmt.Sprintf("port %s is not bound and up on %s", port, chassis))
}

// waitBinding waits until a string column of a port's binding is want.
func (s *Sandbox) waitBinding(ctx context.Context, port, column, want string, timeout time.Duration) error {
	return s.waitBindingRow(ctx, port, timeout, func(pb map[string]any) bool { return pb[column] == want },
		fmt.Sprintf("port %s: its binding's %s is not %s", port, column, want))
}

// waitBindingRow waits until a port's binding satisfies ok.
func (s *Sandbox) waitBindingRow(ctx context.Context, port string, timeout time.Duration, ok func(map[string]any) bool, fail string) error {
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
			"where": []any{[]any{"logical_port", "==", port}}, "columns": []string{"up", "chassis", "migration_prepared"}}}, &res)
		// chassis names the chassis (a string, not a reference).
		if err == nil && len(res) == 1 && len(res[0].Rows) == 1 && ok(res[0].Rows[0]) {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.New(fail)
		case <-time.After(2 * time.Millisecond):
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
