package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"
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

func dialRPC(remote string, notify func(string, json.RawMessage)) (*rpcConn, error) {
	c, err := Dial(remote)
	if err != nil {
		return nil, err
	}
	r := &rpcConn{conn: c, enc: json.NewEncoder(c), pending: map[uint64]chan rpcReply{},
		notify: notify, done: make(chan struct{})}
	go r.read()
	return r, nil
}

func (r *rpcConn) read() {
	dec := json.NewDecoder(r.conn)
	var err error
	for {
		var m rpcMessage
		if err = dec.Decode(&m); err != nil {
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
	close(r.done)
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
		return ErrNoConnection
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
		return fmt.Errorf("%w: %v", ErrNoConnection, err)
	}
	select {
	case <-ctx.Done():
		r.mu.Lock()
		delete(r.pending, id)
		r.mu.Unlock()
		return ctx.Err()
	case rep, ok := <-ch:
		if !ok {
			return ErrNoConnection
		}
		if len(rep.err) > 0 && string(rep.err) != "null" {
			return fmt.Errorf("%s: %s", method, rep.err)
		}
		if out != nil {
			return json.Unmarshal(rep.result, out)
		}
		return nil
	}
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

// RawConn is a plain JSON-RPC session for one-off requests that libovsdb
// cannot make or that do not need a model (initializing global rows,
// querying _Server).
type RawConn struct{ c *rpcConn }

// RawDial opens a RawConn to one unix or tcp remote.
func RawDial(remote string) (*RawConn, error) {
	c, err := dialRPC(remote, nil)
	if err != nil {
		return nil, err
	}
	return &RawConn{c: c}, nil
}

// Call sends one request and decodes its result into out.
func (r *RawConn) Call(ctx context.Context, method string, params any, out any) error {
	return r.c.call(ctx, method, params, out)
}

// Close ends the session.
func (r *RawConn) Close() { r.c.Close() }

// EnsureGlobalRow inserts the single row of a global table (NB_Global,
// SB_Global) if it is missing, as "ovn-nbctl init" does. The tables allow
// one row, so a concurrent second insert fails harmlessly.
func EnsureGlobalRow(ctx context.Context, remotes []string, db, table string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var last error
	for _, remote := range remotes {
		if last = ensureGlobalRow(ctx, remote, db, table); last == nil {
			return nil
		}
	}
	return last
}

func ensureGlobalRow(ctx context.Context, remote, db, table string) error {
	conn, err := RawDial(remote)
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
