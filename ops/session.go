package ops

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
)

// SessionOptions say how to reach a database.
type SessionOptions struct {
	// Remotes are tried in order; for a clustered database with
	// LeaderOnly the session lands on the leader.
	Remotes []string
	// LeaderOnly makes the session follow the Raft leader: writers need
	// it so that a lock and the writes it fences live on one server.
	LeaderOnly bool
	// ConnectTimeout bounds connecting and the initial monitor reply.
	ConnectTimeout time.Duration
	// EchoInterval, when non-zero, probes the server; a probe that gets
	// no answer within EchoTimeout ends the session.
	EchoInterval time.Duration
	// EchoTimeout is how long a probe waits for its answer (default
	// EchoInterval). A server committing a big transaction, or sending a
	// big update that libovsdb processes before the echo's reply, answers
	// late but is alive: the central daemons wait longer than they probe.
	EchoTimeout time.Duration
	// Logger receives libovsdb's messages at debug level.
	Logger *slog.Logger
	// Tracker, when set, receives every row change the session's monitor
	// delivers, starting with the initial contents.
	Tracker *Tracker
	// Monitor lists the tables (and conditions) to monitor; empty means
	// no monitor (a write-only session).
	Monitor []client.MonitorOption
	// TLS is the client configuration for ssl: remotes (internal/pki).
	TLS *tls.Config
}

// Session is one connected libovsdb client. It never reconnects by itself:
// when the connection ends, Done is closed and the owner opens a new
// session, whose cache and tracker start from a clean initial dump.
type Session struct {
	client.Client
	done      chan struct{}
	closeOnce sync.Once
	stop      chan struct{}
	// heard is when the monitor last delivered a row (Unix nanoseconds).
	heard atomic.Int64
}

// hearing notes, for the probe, that the monitor delivered a row: a
// server sending a big update, or a client still applying one to its
// cache, answers an echo late, but is not silent.
type hearing struct{ s *Session }

func (h hearing) note()                                     { h.s.heard.Store(time.Now().UnixNano()) }
func (h hearing) OnAdd(string, model.Model)                 { h.note() }
func (h hearing) OnUpdate(string, model.Model, model.Model) { h.note() }
func (h hearing) OnDelete(string, model.Model)              { h.note() }

// Open connects, installs the tracker and starts the monitor. The returned
// session's cache holds the monitored rows when Open returns.
func Open(ctx context.Context, dbModel model.ClientDBModel, o SessionOptions) (*Session, error) {
	if len(o.Remotes) == 0 {
		return nil, errors.New("no database remote given")
	}
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = 10 * time.Second
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	lr := logr.New(&libovsdbSink{log: log, tracker: o.Tracker})
	opts := []client.Option{client.WithLogger(&lr), client.WithLeaderOnly(o.LeaderOnly)}
	if o.TLS != nil {
		opts = append(opts, client.WithTLSConfig(o.TLS))
	}
	for _, r := range o.Remotes {
		opts = append(opts, client.WithEndpoint(r))
	}
	c, err := client.NewOVSDBClient(dbModel, opts...)
	if err != nil {
		return nil, err
	}
	s := &Session{Client: c, done: make(chan struct{}), stop: make(chan struct{})}
	// Listen before connecting: libovsdb sends its disconnect notice only
	// if somebody is already waiting for it, and a connection lost while
	// the session was opening would otherwise never end the session.
	go func() {
		select {
		case <-c.DisconnectNotify():
		case <-s.stop:
		}
		close(s.done)
	}()
	cctx, cancel := context.WithTimeout(ctx, o.ConnectTimeout)
	defer cancel()
	if err := c.Connect(cctx); err != nil {
		s.Close()
		if w := wrongDatabase(err, o.Remotes[0], dbModel.Name(), o.TLS); IsWrongDatabase(w) {
			return nil, fmt.Errorf("%s: %w", o.Remotes[0], w)
		}
		return nil, fmt.Errorf("connect to %v: %w", o.Remotes, tlsRefusal(err, o.Remotes))
	}
	if o.Tracker != nil {
		c.Cache().AddEventHandler(o.Tracker)
	}
	if len(o.Monitor) > 0 && o.EchoInterval > 0 {
		c.Cache().AddEventHandler(hearing{s})
	}
	if len(o.Monitor) > 0 {
		if _, err := c.Monitor(cctx, c.NewMonitor(o.Monitor...)); err != nil {
			s.Close()
			return nil, fmt.Errorf("monitor %s: %w", dbModel.Name(), err)
		}
	}
	if o.EchoTimeout <= 0 {
		o.EchoTimeout = o.EchoInterval
	}
	if o.EchoInterval > 0 {
		go s.probe(o.EchoInterval, o.EchoTimeout, log)
	}
	return s, nil
}

// OpenRetrying is Open tried again, with b's waits in between, until it
// succeeds or ctx ends: for a tool that should wait out a server restart
// or a Raft election (no leader to land on) instead of failing at once.
// Each attempt starts from the next remote, so that a member that hangs
// is not always the one tried first. failed, if not nil, hears of each
// failed attempt. The error returned when ctx ends is the last one that
// ctx's end did not cause.
func OpenRetrying(ctx context.Context, dbModel model.ClientDBModel, o SessionOptions, b *Backoff, failed func(error)) (*Session, error) {
	remotes := o.Remotes
	var last error
	for i := 0; ; i++ {
		if len(remotes) > 0 {
			o.Remotes = append(slices.Clone(remotes[i%len(remotes):]), remotes[:i%len(remotes)]...)
		}
		s, err := Open(ctx, dbModel, o)
		if err == nil {
			return s, nil
		}
		if ctx.Err() != nil && last != nil {
			return nil, last
		}
		if untrusted(err) || IsWrongDatabase(err) {
			return nil, err // no retry makes the ends trust each other, or serves another database
		}
		// An attempt cut short by the deadline says less than the one
		// before it (a refused certificate, say): keep that one.
		if last == nil || !isTimeout(err) {
			last = err
		}
		if failed != nil {
			failed(err)
		}
		t := time.NewTimer(b.Next())
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, last
		case <-t.C:
		}
	}
}

// Context returns a context that ends with the session (or parent).
// libovsdb's cache reads (List, Get) wait for a lost connection to come
// back until their context ends, which for a session that never
// reconnects means until the caller's deadline; read with this context,
// and check Done afterwards, so that a lost session fails fast.
func (s *Session) Context(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	go func() {
		select {
		case <-s.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// Done is closed when the session has ended.
func (s *Session) Done() <-chan struct{} { return s.done }

// Close ends the session.
func (s *Session) Close() {
	s.closeOnce.Do(func() {
		close(s.stop)
		s.Client.Close()
	})
}

func (s *Session) probe(every, timeout time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			err := s.Echo(ctx)
			cancel()
			if err != nil && s.heardWithin(timeout) {
				log.Debug("echo unanswered, but the monitor delivers rows; keeping the session",
					"endpoint", s.CurrentEndpoint(), "err", err)
				continue
			}
			if err != nil {
				log.Warn("database did not answer the echo probe; ending session",
					"endpoint", s.CurrentEndpoint(), "err", err)
				s.Close()
				return
			}
		}
	}
}

// heardWithin: the monitor delivered a row less than d ago.
func (s *Session) heardWithin(d time.Duration) bool {
	return time.Since(time.Unix(0, s.heard.Load())) < d
}

// libovsdbSink forwards libovsdb's logr messages to slog at debug level,
// and tells the tracker when libovsdb drops a cache event: its event queue
// is bounded and says so only in a log line.
type libovsdbSink struct {
	log     *slog.Logger
	tracker *Tracker
	kv      []any
	name    string
}

const droppedEventMsg = "dropping event because event buffer is full"

func (s *libovsdbSink) Init(logr.RuntimeInfo) {}
func (s *libovsdbSink) Enabled(level int) bool {
	return level <= 2 && s.log.Enabled(context.Background(), slog.LevelDebug) || level == 0
}
func (s *libovsdbSink) Info(level int, msg string, kv ...any) {
	if msg == droppedEventMsg && s.tracker != nil {
		s.tracker.markOverflow()
	}
	s.log.Debug(msg, append(append([]any{"component", "libovsdb" + s.name}, s.kv...), kv...)...)
}
func (s *libovsdbSink) Error(err error, msg string, kv ...any) {
	s.log.Debug(msg, append(append([]any{"component", "libovsdb" + s.name, "err", err}, s.kv...), kv...)...)
}
func (s *libovsdbSink) WithValues(kv ...any) logr.LogSink {
	c := *s
	c.kv = append(append([]any{}, s.kv...), kv...)
	return &c
}
func (s *libovsdbSink) WithName(name string) logr.LogSink {
	c := *s
	c.name = s.name + "/" + name
	return &c
}

// isTimeout: err is a deadline's, not the server's answer.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}
