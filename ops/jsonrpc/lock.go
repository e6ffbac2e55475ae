package jsonrpc

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/ops"
)

// ErrNotLockHolder is returned by LockSession.Transact while this instance
// does not hold the lock. Nothing was sent.
var ErrNotLockHolder = errors.New("this instance does not hold the lock")

// LockSession holds one OVSDB lock for active/standby daemons, the way
// ovn-northd holds "ovn_northd". libovsdb has no lock call, so the lock
// lives on this small JSON-RPC session, and so do the holder's writes:
// each transaction starts with an "assert" of the lock, which the server
// checks atomically with the rest. A daemon that lost the lock (stolen,
// connection gone, server no longer the Raft leader) therefore cannot
// write, even before it has noticed.
//
// Locks in a clustered database are per server, so the session only
// settles on the leader, and drops its connection (and the lock) when that
// server stops leading; the standby instances then race for the lock on
// the new leader.
type LockSession struct {
	remotes []string
	tls     *tls.Config
	db      string
	name    string
	probe   time.Duration
	log     *slog.Logger

	mu      sync.Mutex
	conn    *rpcConn
	held    bool
	changed chan struct{}
}

// DefaultProbeInterval is the probe interval of a LockSession (and of
// the central daemons' sessions) unless configured: OVN's default
// inactivity probe.
const DefaultProbeInterval = 5 * time.Second

// NewLockSession prepares a session for lock name on database db (tlsc
// for ssl: remotes). probe is the probe interval (ProbeVerdict; 0 means
// DefaultProbeInterval).
func NewLockSession(remotes []string, tlsc *tls.Config, db, name string, probe time.Duration, log *slog.Logger) *LockSession {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if probe <= 0 {
		probe = DefaultProbeInterval
	}
	return &LockSession{remotes: remotes, tls: tlsc, db: db, name: name, probe: probe, log: log, changed: make(chan struct{}, 1)}
}

// ProbeSilence is how many probe intervals of silence end a session:
// with the default interval, a server that sends nothing for 15 s is
// given up (noticed within half an interval more, 17.5 s).
const ProbeSilence = 3

// ProbeVerdict says what a session does about a server that has sent
// nothing for silent: any bytes received count as liveness, so a server
// streaming a large update, or answering anything, is alive. Silent for
// an interval, it is sent an echo; silent for ProbeSilence intervals, it
// is given up. A server committing a 256,000-row load answers nobody for
// seconds (issue #20): before, the lock session echoed every 2 s and gave
// up after 4 s without an answer, so northd lost its lock over and over
// and its load never landed.
func ProbeVerdict(silent, interval time.Duration) (echo, dead bool) {
	return silent >= interval, silent >= ProbeSilence*interval
}

// Held reports whether this instance holds the lock now.
func (l *LockSession) Held() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.held
}

// Changed receives a value whenever Held may have changed.
func (l *LockSession) Changed() <-chan struct{} { return l.changed }

func (l *LockSession) setHeld(conn *rpcConn, held bool) {
	l.mu.Lock()
	if conn != l.conn {
		l.mu.Unlock()
		return
	}
	was := l.held
	l.held = held
	l.mu.Unlock()
	if was != held {
		if held {
			l.log.Info("acquired lock; this instance is now active", "lock", l.name)
		} else {
			l.log.Info("lost lock; this instance is now standby", "lock", l.name)
		}
		select {
		case l.changed <- struct{}{}:
		default:
		}
	}
}

// Run keeps a session open and the lock requested until ctx ends,
// reconnecting (to the leader, for a cluster) after any failure.
func (l *LockSession) Run(ctx context.Context) {
	i := 0
	for ctx.Err() == nil {
		remote := l.remotes[i%len(l.remotes)]
		i++
		err := l.runOnce(ctx, remote)
		if ctx.Err() != nil {
			break
		}
		l.log.Debug("lock session ended", "remote", remote, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (l *LockSession) runOnce(ctx context.Context, remote string) error {
	var conn *rpcConn
	notify := func(method string, params json.RawMessage) {
		switch method {
		case "locked":
			l.setHeld(conn, true)
		case "stolen":
			l.setHeld(conn, false)
		case "update":
			if !l.leaderIn(params) {
				l.log.Info("database server lost cluster leadership; dropping lock session", "remote", remote)
				conn.Close()
			}
		}
	}
	conn, err := dialRPC(remote, l.tls, notify)
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.conn = conn
	l.mu.Unlock()
	defer func() {
		l.setHeld(conn, false)
		conn.Close()
	}()

	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	// Watch this server's view of the database: a clustered follower
	// cannot serve the lock, and a leader that steps down must let go.
	var initial map[string]map[string]struct {
		New map[string]any `json:"new"`
	}
	req := map[string]any{"Database": map[string]any{"columns": []string{"name", "model", "leader"}}}
	if err := conn.call(cctx, "monitor", []any{"_Server", "courier-lock", req}, &initial); err != nil {
		return fmt.Errorf("monitor _Server: %w", err)
	}
	found := false
	for _, row := range initial["Database"] {
		if row.New["name"] == l.db {
			found = true
			if row.New["model"] == "clustered" && row.New["leader"] != true {
				return errNotLeader
			}
		}
	}
	if !found {
		return fmt.Errorf("server at %s has no database %s", remote, l.db)
	}
	var reply struct {
		Locked bool `json:"locked"`
	}
	if err := conn.call(cctx, "lock", []any{l.name}, &reply); err != nil {
		return fmt.Errorf("lock %s: %w", l.name, err)
	}
	if reply.Locked {
		l.setHeld(conn, true)
	} else {
		l.log.Info("lock is held by another instance; standing by", "lock", l.name, "remote", remote)
	}
	return l.watch(ctx, conn)
}

// watch keeps the session until it ends, ctx ends or the server has been
// silent too long (ProbeVerdict), with at most one echo outstanding.
func (l *LockSession) watch(ctx context.Context, conn *rpcConn) error {
	tick := time.NewTicker(max(l.probe/2, time.Millisecond))
	defer tick.Stop()
	var echoing atomic.Bool
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-conn.done:
			return conn.err
		case <-tick.C:
			silent := conn.silentFor(time.Now())
			echo, dead := ProbeVerdict(silent, l.probe)
			if dead {
				l.log.Warn("database server sent nothing for too long; dropping the lock session",
					"lock", l.name, "silent", silent.Round(time.Millisecond), "probe_interval", l.probe)
				return fmt.Errorf("server sent nothing for %v", silent.Round(time.Millisecond))
			}
			if echo && echoing.CompareAndSwap(false, true) {
				go func() {
					// The reply, like anything else received, counts
					// through silentFor; its absence is judged there.
					pctx, cancel := context.WithTimeout(ctx, ProbeSilence*l.probe)
					_ = conn.call(pctx, "echo", []any{"courier"}, nil)
					cancel()
					echoing.Store(false)
				}()
			}
		}
	}
}

// leaderIn reads a _Server update and reports false only when it says our
// clustered database's server stopped leading.
func (l *LockSession) leaderIn(params json.RawMessage) bool {
	var p []json.RawMessage
	if json.Unmarshal(params, &p) != nil || len(p) < 2 {
		return true
	}
	var upd map[string]map[string]struct {
		New map[string]any `json:"new"`
	}
	if json.Unmarshal(p[1], &upd) != nil {
		return true
	}
	for _, row := range upd["Database"] {
		if row.New == nil {
			continue
		}
		if name, ok := row.New["name"]; ok && name != l.db {
			continue
		}
		if v, ok := row.New["leader"]; ok && v == false {
			return false
		}
	}
	return true
}

// Transact commits ops as one transaction fenced by the lock: the server
// refuses it unless this session holds the lock at commit time.
func (l *LockSession) Transact(ctx context.Context, ops ...ovsdb.Operation) ([]ovsdb.OperationResult, error) {
	p, err := l.Prepare(ops...)
	if err != nil {
		return nil, err
	}
	return l.TransactPrepared(ctx, p)
}

// Preparer is a Transactor that can also encode a transaction ahead of
// sending it (LockSession is one).
type Preparer interface {
	ops.Transactor
	Prepare(ops ...ovsdb.Operation) (*Prepared, error)
	TransactPrepared(ctx context.Context, p *Prepared) ([]ovsdb.OperationResult, error)
}

// Commit commits a prepared transaction and checks every result, as
// Transact does.
func Commit(ctx context.Context, t Preparer, p *Prepared) ([]ovsdb.OperationResult, error) {
	res, err := t.TransactPrepared(ctx, p)
	if err != nil {
		return nil, err
	}
	if err := ops.CheckResults(res, p.ops); err != nil {
		return nil, err
	}
	return res, nil
}

// Prepared is a transaction encoded ahead of sending, so that a writer
// can encode one while the server commits the one before.
type Prepared struct {
	ops    []ovsdb.Operation
	params []byte
}

// Ops are the prepared transaction's operations.
func (p *Prepared) Ops() []ovsdb.Operation { return p.ops }

// Prepare encodes ops as a transaction fenced by the lock.
func (l *LockSession) Prepare(ops ...ovsdb.Operation) (*Prepared, error) {
	params, err := encodeTransact(l.db, l.name, ops)
	if err != nil {
		return nil, err
	}
	return &Prepared{ops: ops, params: params}, nil
}

// TransactPrepared commits a prepared transaction, as Transact does.
func (l *LockSession) TransactPrepared(ctx context.Context, p *Prepared) ([]ovsdb.OperationResult, error) {
	l.mu.Lock()
	conn, held := l.conn, l.held
	l.mu.Unlock()
	if !held || conn == nil {
		return nil, ErrNotLockHolder
	}
	var raw json.RawMessage
	if err := conn.callRaw(ctx, "transact", p.params, &raw); err != nil {
		return nil, err
	}
	res, err := decodeResults(raw)
	if err != nil {
		return nil, err
	}
	if len(res) > 0 && res[0].Error != "" {
		l.setHeld(conn, false)
		return nil, fmt.Errorf("%w: %s", ErrNotLockHolder, res[0].Error)
	}
	if len(res) == 0 {
		return nil, errors.New("empty transaction reply")
	}
	return res[1:], nil
}

// encodeTransact builds the params of a transact request: the database,
// the lock assertion (none if lock is ""), then the operations.
func encodeTransact(db, lock string, ops []ovsdb.Operation) ([]byte, error) {
	b := make([]byte, 0, 64+200*len(ops))
	b = append(b, '[')
	b = appendString(b, db)
	if lock != "" {
		b = append(b, `,{"op":"assert","lock":`...)
		b = appendString(b, lock)
		b = append(b, '}')
	}
	var err error
	for i := range ops {
		b = append(b, ',')
		if b, err = AppendOperation(b, &ops[i]); err != nil {
			return nil, fmt.Errorf("operation %d (%s on %s): %w", i, ops[i].Op, ops[i].Table, err)
		}
	}
	return append(b, ']'), nil
}
