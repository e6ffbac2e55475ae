package jsonrpc

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/ops"
)

// rpcConn is a minimal OVSDB JSON-RPC 1.0 connection (RFC 7047 §4): calls
// with replies matched by id, server notifications handed to a callback,
// and the server's echo requests answered. It exists for what libovsdb
// does not offer: locks, and monitors that choose what they report or
// must hand over whole updates (Watch).
type rpcConn struct {
	conn    net.Conn
	wmu     sync.Mutex
	enc     *json.Encoder
	mu      sync.Mutex
	nextID  uint64
	pending map[uint64]chan rpcReply
	notify  func(method string, params json.RawMessage)
	done    chan struct{}
	err     error
	// answered: a reply came; a TLS server that refuses the client's
	// certificate closes the connection before any.
	answered atomic.Bool
	// received is when bytes last arrived (Unix nanoseconds): a server
	// busy sending a large message, or any message, is alive.
	received atomic.Int64
}

type rpcReply struct {
	result json.RawMessage
	err    json.RawMessage
}

type rpcMessage struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method,omitempty"`
	Params json.RawMessage `json:"params,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  json.RawMessage `json:"error,omitempty"`
}

// dial opens a connection to one active remote (ops.DialRemote).
func dial(remote string, tlsc *tls.Config) (net.Conn, error) { return ops.DialRemote(remote, tlsc) }

func dialRPC(remote string, tlsc *tls.Config, notify func(string, json.RawMessage)) (*rpcConn, error) {
	c, err := dial(remote, tlsc)
	if err != nil {
		return nil, err
	}
	return newRPCConn(c, notify), nil
}

// newRPCConn runs the protocol over c, which it owns from here on.
func newRPCConn(c net.Conn, notify func(string, json.RawMessage)) *rpcConn {
	r := &rpcConn{conn: c, enc: json.NewEncoder(c), pending: map[uint64]chan rpcReply{},
		notify: notify, done: make(chan struct{})}
	r.received.Store(time.Now().UnixNano())
	go r.read()
	return r
}

func (r *rpcConn) read() {
	var err error
	fr := &framer{}
	in := receiptReader{r}
	for {
		var msg []byte
		if msg, err = fr.next(in); err != nil {
			break
		}
		var m rpcMessage
		if err = m.parse(msg); err != nil {
			break
		}
		isNullID := len(m.ID) == 0 || string(m.ID) == "null"
		switch {
		case m.Method == "echo" && !isNullID:
			r.write(map[string]any{"id": m.ID, "result": m.Params, "error": nil})
		case m.Method != "":
			if r.notify != nil {
				r.notify(m.Method, m.Params)
			}
		default:
			var id uint64
			if json.Unmarshal(m.ID, &id) != nil {
				continue
			}
			r.answered.Store(true)
			r.mu.Lock()
			ch := r.pending[id]
			delete(r.pending, id)
			r.mu.Unlock()
			if ch != nil {
				ch <- rpcReply{result: m.Result, err: m.Error}
			}
		}
	}
	r.mu.Lock()
	r.err = err
	for id, ch := range r.pending {
		close(ch)
		delete(r.pending, id)
	}
	r.mu.Unlock()
	r.conn.Close()
	close(r.done)
}

// receiptReader reads the connection and notes when bytes arrive.
type receiptReader struct{ r *rpcConn }

func (t receiptReader) Read(b []byte) (int, error) {
	n, err := t.r.conn.Read(b)
	if n > 0 {
		t.r.received.Store(time.Now().UnixNano())
	}
	return n, err
}

// silentFor is how long nothing has arrived from the server.
func (r *rpcConn) silentFor(now time.Time) time.Duration {
	return now.Sub(time.Unix(0, r.received.Load()))
}

// parse reads one message's members; the raw values are slices of msg.
func (m *rpcMessage) parse(msg []byte) error {
	s := &scanner{b: msg}
	return s.object(func(key []byte) error {
		switch string(key) {
		case "method":
			if s.peek() == 'n' {
				_, err := s.skip()
				return err
			}
			method, err := s.str()
			m.Method = method
			return err
		}
		v, err := s.skip()
		switch string(key) {
		case "id":
			m.ID = v
		case "params":
			m.Params = v
		case "result":
			m.Result = v
		case "error":
			m.Error = v
		}
		return err
	})
}

// framer cuts the byte stream of a connection into JSON-RPC messages
// (top-level JSON objects) by counting brackets outside strings, in one
// pass over each byte: encoding/json's Decoder validated and copied a
// 15 MB monitor update in ~0.25 s before anybody could read it.
type framer struct {
	buf     []byte
	scanned int // buf[:scanned] holds no complete message
	depth   int
	inStr   bool
	esc     bool
}

// next returns the next message; it stays valid after later calls.
func (f *framer) next(r io.Reader) ([]byte, error) {
	for {
		if end, err := f.scan(); err != nil {
			return nil, err
		} else if end > 0 {
			msg := bytes.TrimLeft(f.buf[:end], " \t\r\n")
			rest := f.buf[end:]
			f.buf = append(make([]byte, 0, max(64<<10, 2*len(rest))), rest...)
			f.scanned = 0
			return msg, nil
		}
		if len(f.buf) == cap(f.buf) {
			f.buf = append(make([]byte, 0, max(64<<10, 2*cap(f.buf))), f.buf...)
		}
		n, err := r.Read(f.buf[len(f.buf):cap(f.buf)])
		f.buf = f.buf[:len(f.buf)+n]
		if n == 0 && err != nil {
			return nil, err
		}
	}
}

// scan continues where it stopped and returns the end of the first
// complete message, or 0.
func (f *framer) scan() (int, error) {
	b, depth, inStr, esc := f.buf, f.depth, f.inStr, f.esc
	defer func() { f.depth, f.inStr, f.esc = depth, inStr, esc }()
	for i := f.scanned; i < len(b); i++ {
		c := b[i]
		if inStr {
			if esc {
				esc = false
				continue
			}
			// Most of a message is the inside of strings: find its end
			// a word at a time.
			j := bytes.IndexAny(b[i:], `"\`)
			if j < 0 {
				i = len(b) - 1
				continue
			}
			i += j
			if b[i] == '\\' {
				esc = true
			} else {
				inStr = false
			}
			continue
		}
		switch c {
		case '"':
			inStr = true
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				f.scanned = 0
				return i + 1, nil
			}
		case ' ', '\n', '\r', '\t':
		default:
			if depth == 0 {
				return 0, fmt.Errorf("unexpected %q between messages", c)
			}
		}
	}
	f.scanned = len(b)
	return 0, nil
}

func (r *rpcConn) write(v any) error {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	return r.enc.Encode(v)
}

// call sends a request and decodes its result into out (if non-nil).
func (r *rpcConn) call(ctx context.Context, method string, params any, out any) error {
	p, err := json.Marshal(params)
	if err != nil {
		return err
	}
	return r.callRaw(ctx, method, p, out)
}

// callRaw is call with the params already encoded as a JSON array.
func (r *rpcConn) callRaw(ctx context.Context, method string, params []byte, out any) error {
	ch := make(chan rpcReply, 1)
	r.mu.Lock()
	if r.err != nil || r.isClosed() {
		r.mu.Unlock()
		return r.lost(nil)
	}
	r.nextID++
	id := r.nextID
	r.pending[id] = ch
	r.mu.Unlock()
	msg := make([]byte, 0, len(params)+64)
	msg = append(msg, `{"id":`...)
	msg = strconv.AppendUint(msg, id, 10)
	msg = append(msg, `,"method":`...)
	msg = appendString(msg, method)
	msg = append(msg, `,"params":`...)
	msg = append(msg, params...)
	msg = append(msg, "}\n"...)
	r.wmu.Lock()
	_, err := r.conn.Write(msg)
	r.wmu.Unlock()
	if err != nil {
		r.Close()
		return r.lost(err)
	}
	select {
	case <-ctx.Done():
		r.mu.Lock()
		delete(r.pending, id)
		r.mu.Unlock()
		return ctx.Err()
	case rep, ok := <-ch:
		if !ok {
			return r.lost(nil)
		}
		if len(rep.err) > 0 && string(rep.err) != "null" {
			return fmt.Errorf("%s: %s", method, rep.err)
		}
		switch o := out.(type) {
		case nil:
			return nil
		case *json.RawMessage:
			*o = rep.result // a slice of its own message, which nobody reuses
			return nil
		default:
			return json.Unmarshal(rep.result, out)
		}
	}
}

// lost is ops.ErrNoConnection with its cause, and the likely reason when a
// TLS server closed the connection before answering anything.
func (r *rpcConn) lost(cause error) error {
	err := ops.ErrNoConnection
	if cause != nil {
		err = fmt.Errorf("%w: %v", ops.ErrNoConnection, cause)
	}
	if _, isTLS := r.conn.(*tls.Conn); isTLS && !r.answered.Load() {
		return fmt.Errorf("%w (%w)", err, ops.ErrTLSRefused)
	}
	return err
}

func (r *rpcConn) isClosed() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// Close ends the connection; the server releases every lock it held.
func (r *rpcConn) Close() { r.conn.Close() }

var errNotLeader = errors.New("server is not the cluster leader")

// Conn is a plain JSON-RPC session for one-off requests that libovsdb
// cannot make or that do not need a model (initializing global rows,
// querying _Server).
type Conn struct{ c *rpcConn }

// Dial opens a Conn to one remote (tlsc for ssl:).
func Dial(remote string, tlsc *tls.Config) (*Conn, error) {
	c, err := dialRPC(remote, tlsc, nil)
	if err != nil {
		return nil, err
	}
	return &Conn{c: c}, nil
}

// Call sends one request and decodes its result into out.
func (r *Conn) Call(ctx context.Context, method string, params any, out any) error {
	return r.c.call(ctx, method, params, out)
}

// CallRaw is Call with the params already encoded as a JSON array.
func (r *Conn) CallRaw(ctx context.Context, method string, params []byte, out any) error {
	return r.c.callRaw(ctx, method, params, out)
}

// Close ends the session.
func (r *Conn) Close() { r.c.Close() }

// EnsureGlobalRow inserts the single row of a global table (NB_Global,
// SB_Global) if it is missing, as "ovn-nbctl init" does. The tables allow
// one row, so a concurrent second insert fails harmlessly.
func EnsureGlobalRow(ctx context.Context, remotes []string, tlsc *tls.Config, db, table string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var last error
	for _, remote := range remotes {
		if last = ensureGlobalRow(ctx, remote, tlsc, db, table); last == nil {
			return nil
		}
	}
	return last
}

func ensureGlobalRow(ctx context.Context, remote string, tlsc *tls.Config, db, table string) error {
	conn, err := Dial(remote, tlsc)
	if err != nil {
		return err
	}
	defer conn.Close()
	var res []struct {
		Rows  []map[string]any `json:"rows"`
		Error string           `json:"error"`
	}
	if err := conn.Call(ctx, "transact", []any{db,
		map[string]any{"op": "select", "table": table, "where": []any{}, "columns": []string{"_uuid"}}}, &res); err != nil {
		return err
	}
	if len(res) == 1 && res[0].Error != "" {
		return fmt.Errorf("select %s: %s", table, res[0].Error)
	}
	if len(res) == 1 && len(res[0].Rows) > 0 {
		return nil
	}
	res = nil
	if err := conn.Call(ctx, "transact", []any{db,
		map[string]any{"op": "insert", "table": table, "row": map[string]any{}}}, &res); err != nil {
		return err
	}
	for _, r := range res {
		if r.Error != "" && r.Error != "constraint violation" {
			return fmt.Errorf("insert %s: %s", table, r.Error)
		}
	}
	return nil
}

// Transactor commits transactions on database db over r, encoded by
// AppendOperation rather than libovsdb's MarshalJSON: for a writer whose
// transactions carry thousands of operations or large sets (a chain of
// courier-nbctl commands). A lost connection is ops.ErrNoConnection.
func (r *Conn) Transactor(db string) ops.Transactor { return connTxn{r.c, db} }

type connTxn struct {
	c  *rpcConn
	db string
}

func (t connTxn) Transact(ctx context.Context, txn ...ovsdb.Operation) ([]ovsdb.OperationResult, error) {
	params, err := encodeTransact(t.db, "", txn)
	if err != nil {
		return nil, err
	}
	var raw json.RawMessage
	if err := t.c.callRaw(ctx, "transact", params, &raw); err != nil {
		return nil, err
	}
	return decodeResults(raw)
}
