package guest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"time"
)

// QMP is a session on QEMU's monitor protocol: JSON lines over its unix
// socket. Plain JSON rather than a library: migration needs three
// commands (qmp_capabilities, migrate, query-migrate).
type QMP struct {
	c net.Conn
	r *bufio.Reader
	// events QEMU sent while a command was awaited, in order
	events []Event
}

// Event is a QMP event: its name and when QEMU sent it (QEMU's
// wall clock, microseconds).
type Event struct {
	Name string
	At   time.Time
}

// DialQMP connects to a QMP socket and leaves capabilities negotiation.
func DialQMP(ctx context.Context, path string) (*QMP, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("QMP %s: %w", path, err)
	}
	q := &QMP{c: c, r: bufio.NewReader(c)}
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if _, err := q.r.ReadBytes('\n'); err != nil { // the greeting
		c.Close()
		return nil, fmt.Errorf("QMP %s: greeting: %w", path, err)
	}
	if _, err := q.Do("qmp_capabilities", nil); err != nil {
		c.Close()
		return nil, err
	}
	return q, nil
}

// Do runs a command and returns its "return" value. Events that arrive
// meanwhile are skipped.
func (q *QMP) Do(cmd string, args any) (json.RawMessage, error) {
	req := map[string]any{"execute": cmd}
	if args != nil {
		req["arguments"] = args
	}
	b, _ := json.Marshal(req)
	if _, err := q.c.Write(append(b, '\n')); err != nil {
		return nil, fmt.Errorf("QMP %s: %w", cmd, err)
	}
	for {
		line, err := q.r.ReadBytes('\n')
		if err != nil {
			return nil, fmt.Errorf("QMP %s: %w", cmd, err)
		}
		var resp reply
		if err := json.Unmarshal(line, &resp); err != nil {
			return nil, fmt.Errorf("QMP %s: %w", cmd, err)
		}
		if resp.Event != "" {
			q.events = append(q.events, resp.event())
			continue
		}
		if resp.Error != nil {
			return nil, fmt.Errorf("QMP %s: %s: %s", cmd, resp.Error.Class, resp.Error.Desc)
		}
		return resp.Return, nil
	}
}

// reply is one line from QEMU: a command's answer or an event.
type reply struct {
	Return json.RawMessage `json:"return"`
	Error  *struct {
		Class, Desc string
	} `json:"error"`
	Event     string `json:"event"`
	Timestamp struct {
		Seconds      int64 `json:"seconds"`
		Microseconds int64 `json:"microseconds"`
	} `json:"timestamp"`
}

func (r *reply) event() Event {
	return Event{Name: r.Event, At: time.Unix(r.Timestamp.Seconds, r.Timestamp.Microseconds*1000)}
}

// Events returns the events read so far and forgets them.
func (q *QMP) Events() []Event {
	ev := q.events
	q.events = nil
	return ev
}

// WaitEvent reads until QEMU sends the event name (or has sent it
// already) and returns it.
func (q *QMP) WaitEvent(ctx context.Context, name string) (Event, error) {
	for i, e := range q.events {
		if e.Name == name {
			q.events = q.events[i+1:]
			return e, nil
		}
	}
	q.events = nil
	if dl, ok := ctx.Deadline(); ok {
		q.c.SetReadDeadline(dl)
		defer q.c.SetReadDeadline(time.Time{})
	}
	for {
		line, err := q.r.ReadBytes('\n')
		if err != nil {
			return Event{}, fmt.Errorf("QMP: waiting for %s: %w", name, err)
		}
		var r reply
		if err := json.Unmarshal(line, &r); err == nil && r.Event == name {
			return r.event(), nil
		}
	}
}

// Close ends the session.
func (q *QMP) Close() error { return q.c.Close() }

// Migrate live-migrates the guest to uri (tcp:HOST:PORT, where a QEMU
// started with -incoming waits) and returns once the migration has
// completed: the source is paused then, the destination running. It
// returns the downtime QEMU reports (the guest paused, in ms).
func (q *QMP) Migrate(ctx context.Context, uri string) (int64, error) {
	if _, err := q.Do("migrate", map[string]any{"uri": uri}); err != nil {
		return 0, err
	}
	for {
		raw, err := q.Do("query-migrate", nil)
		if err != nil {
			return 0, err
		}
		var st struct {
			Status   string `json:"status"`
			Downtime int64  `json:"downtime"`
			Error    string `json:"error-desc"`
		}
		if err := json.Unmarshal(raw, &st); err != nil {
			return 0, err
		}
		switch st.Status {
		case "completed":
			return st.Downtime, nil
		case "failed", "cancelled":
			return 0, fmt.Errorf("migration to %s %s: %s", uri, st.Status, st.Error)
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("migration to %s: %w", uri, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}
