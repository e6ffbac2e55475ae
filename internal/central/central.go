// Package central starts, stops and reports Courier's central services
// in a run directory, the way ovn-ctl does for OVN: the northbound and
// southbound ovsdb-servers (standalone, or one member of a Raft cluster)
// and the central daemons. courier-ctl (tools/ctl) is its command line;
// the sandbox and the tests' databases (internal/testenv) reuse it.
package central

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/courier-sdn/courier/internal/dbconf"
	"github.com/courier-sdn/courier/internal/proc"
	"github.com/courier-sdn/courier/ops/jsonrpc"
	"github.com/courier-sdn/courier/schema"
)

// Database describes one of the two databases.
type Database struct {
	Short  string // "nb" or "sb"
	Name   string // the OVSDB database name
	Schema []byte
}

// Databases are the two databases, northbound first.
var Databases = []Database{
	{Short: "nb", Name: schema.NBName, Schema: schema.NB},
	{Short: "sb", Name: schema.SBName, Schema: schema.SB},
}

// Daemon is a central daemon that courier-ctl starts after the databases.
type Daemon struct {
	Name string // binary name, e.g. "courier-northd"
	// Args builds its command line from the configuration.
	Args func(c *Config) []string
}

// Daemons are what "courier-ctl start" runs after the databases,
// serving Prometheus metrics on the given addresses (empty: none).
func Daemons(northdMetrics, southdMetrics string) []Daemon {
	central := func(name, metrics string) Daemon {
		return Daemon{Name: name, Args: func(c *Config) []string {
			a := []string{"--nb", c.DaemonRemote(Databases[0]), "--sb", c.DaemonRemote(Databases[1])}
			a = append(a, c.DaemonTLSArgs(name)...)
			if metrics != "" {
				a = append(a, "--metrics-addr", metrics)
			}
			return a
		}}
	}
	return []Daemon{central("courier-northd", northdMetrics), central("courier-southd", southdMetrics)}
}

// Config locates the run directory and says what to run.
type Config struct {
	RunDir string
	// DBDir holds the database files; it defaults to RunDir.
	DBDir string
	// Listen adds passive remotes per database short name, for example
	// {"nb": {"ptcp:6641:127.0.0.1"}}, next to the unix sockets.
	Listen map[string][]string
	// Daemons are started after the databases, in order.
	Daemons []Daemon
	// DaemonRemotes, by database short name, are the remotes the daemons
	// connect to; none means this run directory's socket. A cluster
	// member's daemons are given every member, so that they outlive this
	// member's servers.
	DaemonRemotes map[string][]string
	// BinDir is where the daemons' binaries are; empty means next to the
	// running executable, then $PATH.
	BinDir string
	// Allocator is the malloc ovsdb-server runs with: AllocatorAuto (the
	// default when empty), AllocatorJemalloc or AllocatorSystem.
	Allocator string
	Log       *slog.Logger
	// PKIDir, when set, turns on TLS with role-based access control
	// (tls.go): the databases serve the listeners in Connections, the
	// southbound enforces schema.Roles(), and the daemons connect over
	// ssl: with their own certificates from this directory.
	PKIDir string
	// Connections are the TLS listeners by database short name (with
	// PKIDir; DefaultConnections when none).
	Connections map[string][]dbconf.Listener
}

func (c *Config) dbDir() string {
	if c.DBDir != "" {
		return c.DBDir
	}
	return c.RunDir
}

func (c *Config) log() *slog.Logger {
	if c.Log != nil {
		return c.Log
	}
	return slog.New(slog.DiscardHandler)
}

// Paths of one database's files.
func (c *Config) DBFile(d Database) string { return filepath.Join(c.dbDir(), d.Short+".db") }
func (c *Config) Socket(d Database) string { return filepath.Join(c.RunDir, d.Short+".sock") }
func (c *Config) CtlSocket(d Database) string {
	return filepath.Join(c.RunDir, "ovsdb-server-"+d.Short+".ctl")
}
func (c *Config) serverPid(d Database) string {
	return filepath.Join(c.RunDir, "ovsdb-server-"+d.Short+".pid")
}
func (c *Config) serverLog(d Database) string {
	return filepath.Join(c.RunDir, "ovsdb-server-"+d.Short+".log")
}
func (c *Config) schemaFile(d Database) string {
	return filepath.Join(c.RunDir, d.Short+".ovsschema")
}

// stagingFile is the schema an older northbound is converted to first
// (schema.NBStaging): the current one without the Port keys' indexes.
func (c *Config) stagingFile() string          { return filepath.Join(c.RunDir, "nb-staging.ovsschema") }
func (c *Config) daemonPid(name string) string { return filepath.Join(c.RunDir, name+".pid") }
func (c *Config) daemonLog(name string) string { return filepath.Join(c.RunDir, name+".log") }

// Remote is the unix remote of a database in this run directory.
func (c *Config) Remote(d Database) string { return "unix:" + c.Socket(d) }

// DaemonRemote is what the daemons are given for a database: the
// comma-separated DaemonRemotes, else this run directory's socket.
func (c *Config) DaemonRemote(d Database) string {
	if r := c.DaemonRemotes[d.Short]; len(r) > 0 {
		return strings.Join(r, ",")
	}
	if r := c.tlsRemote(d); r != "" {
		return r
	}
	return c.Remote(d)
}

// warnLocalOnly warns about a cluster member whose daemons would reach
// only its own servers, and stop working when those go.
func (c *Config) warnLocalOnly() {
	if len(c.Daemons) > 0 && (len(c.DaemonRemotes["nb"]) < 2 || len(c.DaemonRemotes["sb"]) < 2) {
		c.log().Warn("this cluster member's daemons are given fewer than two members' remotes, so they stop when its servers do; " +
			"list every member's with --nb-remotes and --sb-remotes")
	}
}

func (c *Config) prepare() error {
	for _, dir := range []string{c.RunDir, c.dbDir()} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	for _, d := range Databases {
		if err := os.WriteFile(c.schemaFile(d), d.Schema, 0o644); err != nil {
			return err
		}
	}
	return os.WriteFile(c.stagingFile(), schema.NBStaging(), 0o644)
}

func run(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return strings.TrimSpace(string(out)), nil
}

// ensureStandalone creates a database file that does not exist, and
// converts one whose schema is older than the binary's: an upgrade keeps
// the data. It says whether it converted.
func (c *Config) ensureStandalone(d Database) (bool, error) {
	file := c.DBFile(d)
	if _, err := os.Stat(file); errors.Is(err, os.ErrNotExist) {
		c.log().Info("creating database", "file", file)
		_, err := run("ovsdb-tool", "create", file, c.schemaFile(d))
		return false, err
	}
	if _, err := run("ovsdb-tool", "db-is-clustered", file); err == nil {
		return false, nil // a cluster member converts online, not here
	}
	needs, err := run("ovsdb-tool", "needs-conversion", file, c.schemaFile(d))
	if err != nil || needs != "yes" {
		return false, err
	}
	target := c.schemaFile(d)
	if d.Short == Databases[0].Short {
		target = c.stagingFile() // the rest after claim-sync (finishNB)
	}
	c.log().Info("converting database to the current schema", "file", file, "schema", target)
	_, err = run("ovsdb-tool", "convert", file, target)
	return err == nil, err
}

// finishNB completes the conversion of an older northbound, running: it
// gives every port its address keys and claims (claimSync), then
// converts the database online from the staging schema to the current
// one, whose keys' unique indexes the filled keys now satisfy.
func (c *Config) finishNB() error {
	if err := c.claimSync(); err != nil {
		return err
	}
	if _, err := run("ovsdb-client", "convert", c.Remote(Databases[0]), c.schemaFile(Databases[0])); err != nil {
		return fmt.Errorf("converting the northbound to the current schema after claim-sync: %w", err)
	}
	return nil
}

// claimSync gives the ports of a converted northbound the address keys
// and claims of schema 1.8.0 (courier-nbctl claim-sync; idempotent, so
// it runs after any conversion). Addresses two ports already shared stay
// with northd's refusal, and are logged.
func (c *Config) claimSync() error {
	bin, err := proc.Find(c.BinDir, "courier-nbctl")
	if err != nil {
		return fmt.Errorf("filling in address claims after the conversion: %w", err)
	}
	out, err := run(bin, "--db", c.Remote(Databases[0]), "--timeout", "5m", "claim-sync")
	if err != nil {
		return fmt.Errorf("filling in address claims after the conversion (run courier-nbctl claim-sync): %w", err)
	}
	if out != "" {
		c.log().Warn("ports left without a claim: another port holds the address (northd refuses one of them)", "ports", out)
	}
	return nil
}

// Start creates missing database files, starts both ovsdb-servers and then
// the daemons. Services already running are left alone.
func (c *Config) Start(ctx context.Context) error {
	if err := c.prepare(); err != nil {
		return err
	}
	nbConverted := false
	for _, d := range Databases {
		converted, err := c.ensureStandalone(d)
		if err != nil {
			return err
		}
		nbConverted = nbConverted || (converted && d.Short == Databases[0].Short)
	}
	if _, err := run("ovsdb-tool", "db-is-clustered", c.DBFile(Databases[0])); err == nil {
		c.warnLocalOnly() // a cluster member started again
	}
	if err := c.startAll(ctx); err != nil {
		return err
	}
	if nbConverted {
		return c.finishNB()
	}
	return nil
}

func (c *Config) startAll(ctx context.Context) error {
	for _, d := range Databases {
		if err := c.startServer(ctx, d); err != nil {
			return err
		}
	}
	if err := c.initGlobals(ctx); err != nil {
		return err
	}
	if err := c.configureTLS(ctx); err != nil {
		return err
	}
	for _, dm := range c.Daemons {
		if err := c.startDaemon(dm); err != nil {
			return err
		}
	}
	return nil
}

func (c *Config) startServer(ctx context.Context, d Database) error {
	if pid, ok := proc.Running(c.serverPid(d), "ovsdb-server"); ok {
		c.log().Info("ovsdb-server already running", "db", d.Short, "pid", pid)
		return nil
	}
	err := c.launchServer(ctx, d, true)
	if err != nil && strings.Contains(err.Error(), `has no column "connections"`) {
		// A cluster member is converted online, after it starts: until
		// then its schema has no Connection or SSL to refer to.
		c.log().Warn("the database's schema predates its Connection and SSL tables; starting without them "+
			"(convert it with ovsdb-client convert, then restart)", "db", d.Short)
		err = c.launchServer(ctx, d, false)
	}
	return err
}

// launchServer starts one ovsdb-server; with dbRefs its listeners and
// TLS files come from the database itself (dbconf), as ovn-ctl does.
func (c *Config) launchServer(ctx context.Context, d Database, dbRefs bool) error {
	alloc, env, err := allocatorEnv(c.Allocator, jemallocPaths)
	if err != nil {
		return err
	}
	os.Remove(c.Socket(d))
	var logStart int64
	if st, err := os.Stat(c.serverLog(d)); err == nil {
		logStart = st.Size()
	}
	args := []string{c.DBFile(d),
		"--remote=punix:" + c.Socket(d),
		"--unixctl=" + c.CtlSocket(d),
		"--log-file=" + c.serverLog(d),
		"-vconsole:off", "-vfile:info", "--no-chdir"}
	for _, l := range c.Listen[d.Short] {
		args = append(args, "--remote="+l)
	}
	if dbRefs {
		args = append(args, dbRefArgs(d)...)
	}
	pid, err := proc.Start(proc.Spec{Bin: "ovsdb-server", Args: args, Env: env,
		LogFile: c.serverLog(d), PidFile: c.serverPid(d)})
	if err != nil {
		return err
	}
	c.log().Info("started ovsdb-server", "db", d.Short, "pid", pid, "socket", c.Socket(d), "allocator", alloc)
	if err := waitSocket(ctx, c.Socket(d), pid, 10*time.Second); err != nil {
		return fmt.Errorf("ovsdb-server (%s) %w%s", d.Short, err, proc.LogTail(c.serverLog(d), logStart))
	}
	return nil
}

// waitSocket waits until the server pid listens on path.
func waitSocket(ctx context.Context, path string, pid int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		conn, err := net.Dial("unix", path)
		if err == nil {
			conn.Close()
			return nil
		}
		if !proc.Alive(pid) {
			return errors.New("exited during start-up")
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not come up within %v: %v", path, timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// initGlobals makes sure NB_Global and SB_Global have their one row, as
// "ovn-nbctl init" does. Both tables allow one row, so two concurrent
// starters cannot create two.
func (c *Config) initGlobals(ctx context.Context) error {
	for _, d := range Databases {
		table := "NB_Global"
		if d.Short == "sb" {
			table = "SB_Global"
		}
		if err := jsonrpc.EnsureGlobalRow(ctx, []string{c.Remote(d)}, nil, d.Name, table); err != nil {
			return fmt.Errorf("initialize %s: %w", table, err)
		}
	}
	return nil
}

// daemonReadyTimeout bounds a central daemon's start-up: reading its
// flags and opening its metrics listener, milliseconds normally.
const daemonReadyTimeout = 15 * time.Second

// startDaemon starts a daemon and returns once it says it is up, or with
// an error quoting its log if it exits first.
func (c *Config) startDaemon(dm Daemon) error {
	if pid, ok := proc.Running(c.daemonPid(dm.Name), dm.Name); ok {
		c.log().Info("already running", "daemon", dm.Name, "pid", pid)
		return nil
	}
	bin, err := proc.Find(c.BinDir, dm.Name)
	if err != nil {
		return err
	}
	pid, err := proc.Start(proc.Spec{Bin: bin, Args: dm.Args(c),
		LogFile: c.daemonLog(dm.Name), PidFile: c.daemonPid(dm.Name), Ready: daemonReadyTimeout})
	if err != nil {
		return err
	}
	c.log().Info("started", "daemon", dm.Name, "pid", pid, "log", c.daemonLog(dm.Name))
	return nil
}

// Stop stops the daemons, then the databases. Only processes recorded in
// this run directory's pid files are signalled.
func (c *Config) Stop() error {
	var errs []error
	for i := len(c.Daemons) - 1; i >= 0; i-- {
		name := c.Daemons[i].Name
		if err := proc.Stop(c.daemonPid(name), name, 5*time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	for _, d := range Databases {
		if err := proc.Stop(c.serverPid(d), "ovsdb-server", 5*time.Second); err != nil {
			errs = append(errs, err)
		}
		os.Remove(c.Socket(d))
		os.Remove(c.CtlSocket(d))
	}
	return errors.Join(errs...)
}

// ServiceStatus is one line of "courier-ctl status".
type ServiceStatus struct {
	Name    string
	Running bool
	PID     int
	Detail  string
}

// Status reports every service of the run directory.
func (c *Config) Status() []ServiceStatus {
	var out []ServiceStatus
	for _, d := range Databases {
		s := ServiceStatus{Name: "ovsdb-server-" + d.Short}
		s.PID, s.Running = proc.Running(c.serverPid(d), "ovsdb-server")
		if s.Running {
			s.Detail = c.Remote(d)
			if st, err := run("ovs-appctl", "-t", c.CtlSocket(d), "cluster/status", d.Name); err == nil {
				s.Detail += ", clustered: " + clusterSummary(st)
			} else {
				s.Detail += ", standalone"
			}
		}
		out = append(out, s)
	}
	for _, dm := range c.Daemons {
		s := ServiceStatus{Name: dm.Name}
		s.PID, s.Running = proc.Running(c.daemonPid(dm.Name), dm.Name)
		if s.Running {
			s.Detail = "log " + c.daemonLog(dm.Name)
		}
		out = append(out, s)
	}
	return out
}

func clusterSummary(status string) string {
	var role, leader string
	for _, l := range strings.Split(status, "\n") {
		l = strings.TrimSpace(l)
		if v, ok := strings.CutPrefix(l, "Role: "); ok {
			role = v
		}
		if v, ok := strings.CutPrefix(l, "Leader: "); ok {
			leader = v
		}
	}
	return fmt.Sprintf("role %s, leader %s", role, leader)
}

// ClusterCreate makes this run directory the first member of a Raft
// cluster of each database (raft maps "nb"/"sb" to this member's Raft
// address, such as tcp:127.0.0.1:6643) and starts it.
func (c *Config) ClusterCreate(ctx context.Context, raft map[string]string) error {
	if err := c.prepare(); err != nil {
		return err
	}
	for _, d := range Databases {
		if _, err := os.Stat(c.DBFile(d)); err == nil {
			return fmt.Errorf("%s already exists; remove it to create a new cluster", c.DBFile(d))
		}
		if raft[d.Short] == "" {
			return fmt.Errorf("no Raft address for the %s database", d.Short)
		}
		if _, err := run("ovsdb-tool", "create-cluster", c.DBFile(d), c.schemaFile(d), raft[d.Short]); err != nil {
			return err
		}
	}
	c.warnLocalOnly()
	return c.startAll(ctx)
}

// ClusterJoin makes this run directory a new member of existing clusters:
// raft gives this member's addresses and peers the Raft address of at
// least one existing member of each database.
func (c *Config) ClusterJoin(ctx context.Context, raft map[string]string, peers map[string][]string) error {
	if err := c.prepare(); err != nil {
		return err
	}
	for _, d := range Databases {
		if _, err := os.Stat(c.DBFile(d)); err == nil {
			return fmt.Errorf("%s already exists; remove it to join a cluster", c.DBFile(d))
		}
		if raft[d.Short] == "" || len(peers[d.Short]) == 0 {
			return fmt.Errorf("joining the %s cluster needs this member's Raft address and a peer", d.Short)
		}
		args := append([]string{"join-cluster", c.DBFile(d), d.Name, raft[d.Short]}, peers[d.Short]...)
		if _, err := run("ovsdb-tool", args...); err != nil {
			return err
		}
	}
	c.warnLocalOnly()
	// A joining member has no data until it has caught up with the
	// leader, so it does not initialize the global rows itself.
	for _, d := range Databases {
		if err := c.startServer(ctx, d); err != nil {
			return err
		}
	}
	for _, dm := range c.Daemons {
		if err := c.startDaemon(dm); err != nil {
			return err
		}
	}
	return nil
}

// StopDaemon stops one of the configured daemons.
func (c *Config) StopDaemon(name string) error {
	return proc.Stop(c.daemonPid(name), name, 5*time.Second)
}

// StartDaemon starts one of the configured daemons.
func (c *Config) StartDaemon(name string) error {
	for _, dm := range c.Daemons {
		if dm.Name == name {
			return c.startDaemon(dm)
		}
	}
	return fmt.Errorf("no daemon %s configured", name)
}

// StopServer stops one database server ("nb" or "sb").
func (c *Config) StopServer(short string) error {
	for _, d := range Databases {
		if d.Short == short {
			return proc.Stop(c.serverPid(d), "ovsdb-server", 5*time.Second)
		}
	}
	return fmt.Errorf("no database %q", short)
}

// StartServer starts one database server again.
func (c *Config) StartServer(ctx context.Context, short string) error {
	for _, d := range Databases {
		if d.Short == short {
			return c.startServer(ctx, d)
		}
	}
	return fmt.Errorf("no database %q", short)
}

// ServerPID is the pid of one database server ("nb" or "sb"), or 0 when
// it is not running.
func (c *Config) ServerPID(short string) int {
	for _, d := range Databases {
		if d.Short == short {
			pid, _ := proc.Running(c.serverPid(d), "ovsdb-server")
			return pid
		}
	}
	return 0
}
