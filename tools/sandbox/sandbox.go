// Package sandbox runs a whole Courier deployment on one machine: the
// databases, northd and southd; an underlay (a fabric namespace with one
// veth per host); hypervisors as namespaces, each with its hostd; and VMs
// as namespaces. courier-sandbox is its command line, and the end-to-end
// tests drive it directly. Everything it makes is recorded in the run
// directory, so that Stop, even in a new process after a crash, removes
// every namespace, pinned object and process it started, and nothing else.
package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/courier-sdn/courier/dataplane"
	"github.com/courier-sdn/courier/internal/central"
	"github.com/courier-sdn/courier/internal/lab"
	"github.com/courier-sdn/courier/internal/proc"
	"github.com/courier-sdn/courier/northd/rules"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/ops/jsonrpc"
	"github.com/courier-sdn/courier/schema"
	"github.com/courier-sdn/courier/schema/nbdb"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
)

// DefaultRunDir is the sandbox's run directory.
const DefaultRunDir = "/var/run/courier/sandbox"

// Options for Start.
type Options struct {
	RunDir string
	Prefix string // namespace prefix, "cs-" by default
	Hosts  int
	Hubs   int
	// Gateways adds gateway chassis gw1..gwN and the internet (internet.go).
	Gateways int
	BinDir   string
	// Underlay is the hosts' subnet (192.168.100.0/24 by default).
	Underlay netip.Prefix
	// DeadAfter is southd's liveness timeout.
	DeadAfter time.Duration
	// HostdArgs are added to every hostd's command line.
	HostdArgs []string
	// TLS runs everything over mutual TLS with role-based access
	// control (tls.go).
	TLS bool
	Log *slog.Logger
}

// State is what a sandbox records in its run directory.
type State struct {
	Prefix  string          `json:"prefix"`
	PinRoot string          `json:"pin_root"`
	BinDir  string          `json:"bin_dir"`
	Hosts   []HostState     `json:"hosts"`
	VMs     map[string]VMSt `json:"vms"` // by port
	TLS     *TLSState       `json:"tls,omitempty"`
	// Internet, with gateways (internet.go)
	Internet *InternetState `json:"internet,omitempty"`
	// Phys, the physical server, with gateways too (phys.go)
	Phys *PhysState `json:"phys,omitempty"`
	// HostdArgs are added to every hostd's command line (Options), kept
	// so that a hostd started later (host-up) gets them too.
	HostdArgs []string `json:"hostd_args,omitempty"`
}

// HostState is one hypervisor.
type HostState struct {
	Name string `json:"name"`
	VTEP string `json:"vtep"`
	MAC  string `json:"mac"`
	Hub  bool   `json:"hub"`
	// Gateway: a gateway of the internet (internet.go), not a hypervisor
	Gateway bool `json:"gateway,omitempty"`
	// Down: host-down took it down (hostdown.go)
	Down bool `json:"down,omitempty"`
}

// VMSt is one VM.
type VMSt struct {
	Host string `json:"host"`
	IP   string `json:"ip"`
	DHCP string `json:"dhcp,omitempty"` // the DHCP client it runs, if any
	QEMU bool   `json:"qemu,omitempty"` // a QEMU guest on a tap (qemu.go), not a namespace
	MTU  int    `json:"mtu,omitempty"`  // a guest's NIC's (a migration's destination has the same)
}

// Sandbox is a running sandbox. Its methods may be called concurrently.
type Sandbox struct {
	RunDir string
	mu     sync.Mutex // guards State and its file
	State  State
	ctl    *central.Config
	lab    *lab.Lab
	log    *slog.Logger
	args   []string
}

func (o *Options) defaults() {
	if o.RunDir == "" {
		o.RunDir = DefaultRunDir
	}
	if o.Prefix == "" {
		o.Prefix = "cs-"
	}
	if o.Hosts == 0 {
		o.Hosts = 2
	}
	if !o.Underlay.IsValid() {
		o.Underlay = netip.MustParsePrefix("192.168.100.0/24")
	}
	if o.DeadAfter == 0 {
		o.DeadAfter = 3 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

func ctlConfig(runDir, binDir string, deadAfter time.Duration, tls *TLSState) *central.Config {
	args := func(c *central.Config, name string) []string {
		return append([]string{"--nb", c.DaemonRemote(central.Databases[0]), "--sb", c.DaemonRemote(central.Databases[1])},
			c.DaemonTLSArgs(name)...)
	}
	c := &central.Config{RunDir: runDir, BinDir: binDir, Daemons: []central.Daemon{
		{Name: "courier-northd", Args: func(c *central.Config) []string { return args(c, "courier-northd") }},
		{Name: "courier-southd", Args: func(c *central.Config) []string {
			return append(args(c, "courier-southd"), "--dead-after", deadAfter.String())
		}},
	}}
	setTLS(c, runDir, tls)
	return c
}

// Start builds a sandbox, after removing whatever an earlier sandbox in
// the same run directory or with the same prefix left behind.
func Start(ctx context.Context, o Options) (*Sandbox, error) {
	o.defaults()
	if o.Hubs > o.Hosts {
		return nil, fmt.Errorf("--hubs %d is more than --hosts %d", o.Hubs, o.Hosts)
	}
	if old, err := Open(o.RunDir); err == nil {
		old.Stop()
	}
	lab.DestroyPrefix(o.Prefix)
	if err := os.MkdirAll(o.RunDir, 0o755); err != nil {
		return nil, err
	}
	// A new sandbox starts from empty databases.
	for _, f := range []string{"nb.db", "sb.db"} {
		os.Remove(filepath.Join(o.RunDir, f))
	}
	s := &Sandbox{RunDir: o.RunDir, log: o.Log, args: o.HostdArgs, State: State{Prefix: o.Prefix, BinDir: o.BinDir,
		PinRoot: filepath.Join(dataplane.DefaultPinRoot, "sandbox-"+o.Prefix), VMs: map[string]VMSt{}, HostdArgs: o.HostdArgs}}
	fail := func(err error) (*Sandbox, error) {
		s.Stop()
		return nil, err
	}
	if o.TLS {
		var err error
		if s.State.TLS, err = newTLSState(); err != nil {
			return nil, err
		}
	}
	s.ctl = ctlConfig(o.RunDir, o.BinDir, o.DeadAfter, s.State.TLS)
	s.ctl.Log = o.Log
	if err := s.save(); err != nil {
		return fail(err)
	}
	if err := s.ctl.Start(ctx); err != nil {
		return fail(fmt.Errorf("central services: %w", err))
	}
	if err := s.nameHubs(ctx, o.Hubs); err != nil {
		return fail(err)
	}
	l, err := lab.New(o.Prefix, o.Underlay)
	if err != nil {
		return fail(err)
	}
	s.lab = l
	for i := 1; i <= o.Hosts; i++ {
		name := "hv" + strconv.Itoa(i)
		h, err := l.AddHost(name, i)
		if err != nil {
			return fail(err)
		}
		s.State.Hosts = append(s.State.Hosts, HostState{Name: name, VTEP: h.VTEP.String(), MAC: h.MAC.String(), Hub: i <= o.Hubs})
		if err := s.save(); err != nil {
			return fail(err)
		}
		if err := s.signIdentities(); err != nil {
			return fail(err)
		}
		if err := s.startRelay(name); err != nil {
			return fail(err)
		}
		if err := s.startHostd(name); err != nil {
			return fail(err)
		}
	}
	if o.Gateways > 0 {
		if err := s.addGateways(ctx, o.Gateways); err != nil {
			return fail(err)
		}
	}
	return s, s.save()
}

func (s *Sandbox) save() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, _ := json.MarshalIndent(s.State, "", "  ")
	return os.WriteFile(filepath.Join(s.RunDir, "sandbox.json"), b, 0o644)
}

// Open attaches to the sandbox recorded in runDir.
func Open(runDir string) (*Sandbox, error) {
	b, err := os.ReadFile(filepath.Join(runDir, "sandbox.json"))
	if err != nil {
		return nil, fmt.Errorf("no sandbox in %s (start one with courier-sandbox start): %w", runDir, err)
	}
	s := &Sandbox{RunDir: runDir, log: slog.New(slog.DiscardHandler)}
	if err := json.Unmarshal(b, &s.State); err != nil {
		return nil, err
	}
	if s.State.VMs == nil {
		s.State.VMs = map[string]VMSt{}
	}
	s.args = s.State.HostdArgs
	s.ctl = ctlConfig(runDir, s.State.BinDir, 0, s.State.TLS)
	s.lab = &lab.Lab{Prefix: s.State.Prefix, Fabric: s.State.Prefix + "fabric", Hosts: map[string]*lab.Host{}, VMs: map[string]*lab.VM{}}
	for _, h := range s.State.Hosts {
		m, _ := net.ParseMAC(h.MAC)
		vtep, _ := netip.ParseAddr(h.VTEP)
		s.lab.Hosts[h.Name] = &lab.Host{Name: h.Name, NS: s.State.Prefix + h.Name, VTEP: vtep, MAC: m}
	}
	return s, nil
}

// SetLog sets the logger.
func (s *Sandbox) SetLog(l *slog.Logger) { s.log = l; s.ctl.Log = l }

func (s *Sandbox) host(name string) (HostState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	for _, h := range s.State.Hosts {
		if h.Name == name {
			return h, nil
		}
		names = append(names, h.Name)
	}
	return HostState{}, fmt.Errorf("no host %q in the sandbox (its hosts: %s)", name, strings.Join(names, " "))
}

// NB and SB are the databases' remotes.
func (s *Sandbox) NB() string { return s.ctl.Remote(central.Databases[0]) }
func (s *Sandbox) SB() string { return s.ctl.Remote(central.Databases[1]) }

// HostNS is a host's namespace.
func (s *Sandbox) HostNS(host string) string { return s.State.Prefix + host }

// VMNS is a VM's namespace.
func (s *Sandbox) VMNS(port string) string { return s.State.Prefix + port }

func (s *Sandbox) hostdPid(host string) string { return filepath.Join(s.RunDir, "hostd-"+host+".pid") }

// HostdPID is the pid of a host's running hostd, or 0: also when its pid
// file names a process gone (a hostd that crashed or was killed leaves
// its pid file), which status showed as running and host-up did not
// start again.
func (s *Sandbox) HostdPID(host string) int {
	if pid, running := proc.Running(s.hostdPid(host), "courier-hostd"); running {
		return pid
	}
	return 0
}

func (s *Sandbox) startHostd(name string) error {
	h, err := s.host(name)
	if err != nil {
		return err
	}
	bin, err := proc.Find(s.State.BinDir, "courier-hostd")
	if err != nil {
		return err
	}
	args := append([]string{"--chassis", name, "--encap-ip", h.VTEP}, s.hostdSB(name)...)
	args = append(args, "--pin-root", s.State.PinRoot,
		"--metrics-addr", "127.0.0.1:9660", "--log-level", "debug")
	if h.Hub {
		args = append(args, "--role", "hub")
	}
	if h.Gateway {
		args = append(args, gatewayArgs()...)
	}
	args = append(args, s.args...)
	// hostd says when its data plane is loaded; one that dies first
	// fails the start, quoting its log.
	pid, err := proc.Start(proc.Spec{Bin: bin, Args: args, LogFile: filepath.Join(s.RunDir, "hostd-"+name+".log"),
		PidFile: s.hostdPid(name), Ready: 30 * time.Second, Start: func(c *exec.Cmd) error {
			// Forked from a thread inside the host's network namespace,
			// hostd runs there but keeps the machine's mount namespace,
			// where bpffs is (ip netns exec would remount /sys).
			return lab.Do(s.HostNS(name), c.Start)
		}})
	if err != nil {
		return err
	}
	s.log.Info("started hostd", "host", name, "pid", pid)
	return nil
}

// StopHostd stops a host's hostd (its data plane keeps forwarding).
func (s *Sandbox) StopHostd(host string) error {
	return proc.Stop(s.hostdPid(host), "courier-hostd", 5*time.Second)
}

// KillHostd kills a host's hostd without warning, as a crash would.
func (s *Sandbox) KillHostd(host string) error {
	pid := s.HostdPID(host)
	if pid == 0 {
		return fmt.Errorf("hostd of %s is not running", host)
	}
	return proc.Kill(pid, "courier-hostd")
}

// RestartHostd stops and starts a host's hostd.
func (s *Sandbox) RestartHostd(host string) error {
	if err := s.StopHostd(host); err != nil {
		return err
	}
	return s.startHostd(host)
}

// StartHostd starts a stopped hostd.
func (s *Sandbox) StartHostd(host string) error { return s.startHostd(host) }

// Ctl is the central services' configuration (to restart them).
func (s *Sandbox) Ctl() *central.Config { return s.ctl }

// portInfo reads a port and its vxnet from the northbound. A port with a
// dynamic MAC or IP is read once northd has allocated them (as an
// orchestrator would), and returned with them in place of the word
// dynamic.
func (s *Sandbox) portInfo(ctx context.Context, port string) (*nbdb.Port, netip.Prefix, netip.Addr, error) {
	m, _ := nbdb.FullDatabaseModel()
	// Only this port: the whole Port table, 256,000 rows in the host
	// scale run, took longer than Open's 10 s to arrive (issue #20). The
	// vxnets with their lists of ports took longer too while northd read
	// the load: a server that busy gets a minute. (Monitoring the port's
	// vxnet alone, by a second monitor once the port was read, timed out
	// once in e2e for no reason found, and was taken back.)
	pm := &nbdb.Port{}
	sess, err := ops.Open(ctx, m, ops.SessionOptions{Remotes: []string{s.NB()}, ConnectTimeout: time.Minute,
		Monitor: []client.MonitorOption{
			client.WithConditionalTable(pm, []model.Condition{{Field: &pm.Name, Function: ovsdb.ConditionEqual, Value: port}}),
			client.WithTable(&nbdb.Vxnet{})}})
	if err != nil {
		return nil, netip.Prefix{}, netip.Addr{}, err
	}
	defer sess.Close()
	p, _ := ops.First[nbdb.Port](ctx, sess, func(p *nbdb.Port) bool { return p.Name == port })
	if p == nil {
		return nil, netip.Prefix{}, netip.Addr{}, fmt.Errorf("no port %q in the northbound (courier-nbctl port-add first)", port)
	}
	if p, err = waitDynamic(ctx, sess, p); err != nil {
		return nil, netip.Prefix{}, netip.Addr{}, err
	}
	vx, _ := ops.First[nbdb.Vxnet](ctx, sess, func(v *nbdb.Vxnet) bool {
		for _, u := range v.Ports {
			if u == p.UUID {
				return true
			}
		}
		return false
	})
	if vx == nil {
		return nil, netip.Prefix{}, netip.Addr{}, fmt.Errorf("port %s belongs to no vxnet", port)
	}
	cidr, err := rules.ParseCIDR(vx.Cidr)
	if err != nil {
		return nil, netip.Prefix{}, netip.Addr{}, err
	}
	gw := rules.DefaultGateway(cidr)
	if vx.Gateway != nil {
		gw, _ = netip.ParseAddr(*vx.Gateway)
	}
	return p, cidr, gw, nil
}

// AddVM creates the VM of a northbound port on a host: a namespace with
// the port's MAC, IP, gateway and the overlay MTU, its host-side veth
// tied to the port by its alias.
func (s *Sandbox) AddVM(ctx context.Context, host, port string) error {
	return s.AddVMWith(ctx, host, port, VMOptions{})
}

// AddVMWith is AddVM with options: a DHCP client instead of addresses
// set by hand, another MTU.
func (s *Sandbox) AddVMWith(ctx context.Context, host, port string, o VMOptions) error {
	if h, err := s.host(host); err != nil {
		return err
	} else if h.Down {
		return fmt.Errorf("host %s is down (courier-sandbox host-up %s)", host, host)
	}
	s.mu.Lock()
	vm, ok := s.State.VMs[port]
	s.mu.Unlock()
	if ok {
		return fmt.Errorf("VM %s already runs on %s", port, vm.Host)
	}
	p, cidr, gw, err := s.portInfo(ctx, port)
	if err != nil {
		return err
	}
	mac, err := net.ParseMAC(p.MAC)
	if err != nil {
		return err
	}
	var addr netip.Prefix
	if len(p.IPs) > 0 {
		a, err := netip.ParseAddr(p.IPs[0])
		if err != nil {
			return err
		}
		addr = netip.PrefixFrom(a, cidr.Bits())
	}
	if o.QEMU {
		return s.addGuest(ctx, host, port, mac, addr, gw, o)
	}
	if o.DHCP != "" {
		return s.addDHCPVM(ctx, host, port, mac, o)
	}
	if _, err := s.lab.AddVM(port, s.lab.Hosts[host], lab.VMConfig{Port: port, MAC: mac, Addr: addr, Gateway: gw, MTU: o.MTU}); err != nil {
		return err
	}
	s.setVM(port, &VMSt{Host: host, IP: addr.Addr().String()})
	if err := s.save(); err != nil {
		return err
	}
	// Like an orchestrator, wait until the host has bound the port and
	// programmed its DVR: the interface is not part of the northbound,
	// so --wait=hv cannot cover it.
	return s.WaitUp(ctx, port, 15*time.Second)
}

// WaitUp waits until the port's binding says it is up on some chassis.
func (s *Sandbox) WaitUp(ctx context.Context, port string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := jsonrpc.Dial(s.SB(), nil)
	if err != nil {
		return err
	}
	defer conn.Close()
	for {
		var res []struct {
			Rows []struct {
				Up      any `json:"up"`
				Chassis any `json:"chassis"`
			} `json:"rows"`
		}
		err := conn.Call(ctx, "transact", []any{"Courier_Southbound", map[string]any{"op": "select", "table": "Port_Binding",
			"where": []any{[]any{"logical_port", "==", port}}, "columns": []string{"up", "chassis"}}}, &res)
		if err == nil && len(res) == 1 && len(res[0].Rows) == 1 && res[0].Rows[0].Up == true {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("port %s did not come up (is it declared in the northbound?)", port)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// setVM records (or, with nil, forgets) a VM.
func (s *Sandbox) setVM(port string, vm *VMSt) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if vm == nil {
		delete(s.State.VMs, port)
	} else {
		s.State.VMs[port] = *vm
	}
}

// HasVM reports whether a VM runs and where.
func (s *Sandbox) HasVM(port string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	vm, ok := s.State.VMs[port]
	return vm.Host, ok
}

// AddVMAt creates a VM for a port that need not exist in the northbound
// yet, with the given MAC and address, so that its interface is there
// before the port is declared.
func (s *Sandbox) AddVMAt(host, port string, mac net.HardwareAddr, addr netip.Prefix, gw netip.Addr) error {
	if _, err := s.host(host); err != nil {
		return err
	}
	if _, err := s.lab.AddVM(port, s.lab.Hosts[host], lab.VMConfig{Port: port, MAC: mac, Addr: addr, Gateway: gw}); err != nil {
		return err
	}
	s.setVM(port, &VMSt{Host: host, IP: addr.Addr().String()})
	return s.save()
}

// Lab is the sandbox's namespaces.
func (s *Sandbox) Lab() *lab.Lab { return s.lab }

// DelVM removes a VM: its namespace and its veth, by exact name (the
// namespace prefix of w1 is also w10's), and returns once its name is
// free on its host for the next vm-add.
func (s *Sandbox) DelVM(port string) error {
	host, ok := s.HasVM(port)
	if !ok {
		return fmt.Errorf("no VM %s in the sandbox", port)
	}
	if s.IsGuest(port) {
		if err := s.stopGuest(port); err != nil {
			return fmt.Errorf("guest %s: %w", port, err)
		}
		s.setVM(port, nil)
		return s.save()
	}
	if err := s.stopDHCP(port); err != nil {
		return fmt.Errorf("VM %s: stop its DHCP client: %w", port, err)
	}
	if err := s.lab.DelVM(port, s.lab.Hosts[host]); err != nil {
		return fmt.Errorf("remove VM %s: %w", port, err)
	}
	s.setVM(port, nil)
	return s.save()
}

// MoveVM moves a VM to another host, keeping its IP and MAC: the VM is
// recreated there and its old interface removed.
func (s *Sandbox) MoveVM(ctx context.Context, port, to string) error {
	if _, ok := s.HasVM(port); !ok {
		return fmt.Errorf("no VM %s in the sandbox", port)
	}
	s.mu.Lock()
	vm := s.State.VMs[port]
	s.mu.Unlock()
	if err := s.DelVM(port); err != nil {
		return err
	}
	return s.AddVMWith(ctx, to, port, VMOptions{DHCP: vm.DHCP, QEMU: vm.QEMU})
}

// Exec runs a command inside a VM: in its namespace, or in a QEMU
// guest through its console (a non-zero exit status is an error).
func (s *Sandbox) Exec(port string, args ...string) (string, error) {
	if s.IsGuest(port) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		out, status, err := s.GuestExec(ctx, port, shellQuote(args))
		if err == nil && status != 0 {
			err = fmt.Errorf("guest %s: %s: exit status %d", port, args[0], status)
		}
		return out, err
	}
	return lab.Exec(s.VMNS(port), args...)
}

// Ping pings from a VM; it returns how many answers came back.
func (s *Sandbox) Ping(port string, ip netip.Addr, count int, interval string) (int, string) {
	if s.IsGuest(port) {
		// busybox ping, which counts "N packets received".
		out, _ := s.Exec(port, "ping", "-q", "-c", fmt.Sprint(count), "-i", interval, "-W", "1", ip.String())
		_, recv := lab.PingSummary(out)
		return recv, out
	}
	l := &lab.Lab{VMs: map[string]*lab.VM{port: {NS: s.VMNS(port)}}}
	return l.Ping(port, ip, count, interval)
}

// Stop removes everything the sandbox made: hostds, central services,
// namespaces (with their links), pinned objects.
func (s *Sandbox) Stop() error {
	var errs []error
	for port := range s.State.VMs {
		errs = append(errs, s.stopDHCP(port), s.stopGuest(port))
	}
	for _, h := range s.State.Hosts {
		if err := s.StopHostd(h.Name); err != nil {
			errs = append(errs, err)
		}
		if err := s.stopRelay(h.Name); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, s.stopHTTP())
	errs = append(errs, s.ctl.Stop())
	errs = append(errs, lab.DestroyPrefix(s.State.Prefix))
	if s.State.PinRoot != "" {
		errs = append(errs, os.RemoveAll(s.State.PinRoot))
		// The shared parent (/sys/fs/bpf/courier) goes too once nothing
		// else is pinned there; os.Remove leaves a non-empty one alone.
		os.Remove(filepath.Dir(s.State.PinRoot))
	}
	os.Remove(filepath.Join(s.RunDir, "sandbox.json"))
	return errors.Join(errs...)
}

// Locate finds a chassis of the sandbox in runDir: where its data plane
// is pinned and its namespace. ok is false when runDir holds no sandbox
// or the sandbox no such chassis.
func Locate(runDir, chassis string) (pinRoot, netns string, ok bool) {
	s, err := Open(runDir)
	if err != nil {
		return "", "", false
	}
	for _, h := range s.State.Hosts {
		if h.Name == chassis {
			return s.State.PinRoot, s.HostNS(chassis), true
		}
	}
	return "", "", false
}

// waitDynamic waits until northd wrote a port's dynamic_addresses, if it
// has a dynamic MAC or IP, and returns a copy with them filled in.
func waitDynamic(ctx context.Context, sess *ops.Session, p *nbdb.Port) (*nbdb.Port, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		mac, ips, allocated := schema.PortAddresses(p)
		if allocated {
			cp := *p
			cp.MAC, cp.IPs = mac, ips
			return &cp, nil
		}
		if p.Status["state"] == "error" {
			return nil, fmt.Errorf("port %s is refused: %s", p.Name, p.Status["error"])
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("northd has not allocated port %s's dynamic addresses (is it running?)", p.Name)
		case <-time.After(20 * time.Millisecond):
		}
		name := p.Name
		if p, _ = ops.First[nbdb.Port](ctx, sess, func(q *nbdb.Port) bool { return q.Name == name }); p == nil {
			return nil, fmt.Errorf("port %s was deleted", name)
		}
	}
}
