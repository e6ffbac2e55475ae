package jsonrpc

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
)

// Watch is a monitor (RFC 7047 §4.1.5) on a connection of its own, for
// what libovsdb's monitors cannot do:
//
//   - choose which kinds of change the server reports ("select"). A writer
//     that owns a table's rows can skip the echo of its own inserts, which
//     at 64,000 rows is most of ovsdb-server's work in a bulk write, and
//     still hear at once when somebody else deletes or renames one;
//   - hand over each update whole. ovsdb-server sends the changes of one
//     transaction in one update (several transactions may share one,
//     none is split), and a Watch delivers an update in one call, so a
//     consumer never sees half a transaction. libovsdb hands its event
//     handlers the rows of an update one by one;
//   - decode rows cheaply: rows arrive as raw JSON, for a RowDecoder.
type Watch struct {
	conn *rpcConn
}

// WatchedRow is one reported change. Old, New and Diff are JSON objects
// of columns, nil when absent. An insert (or an initial row) has New; a
// delete is Deleted, with Old (the row) unless the watch reports diffs;
// a modify has, without diffs, Old (the previous values of the columns
// that changed) and New (all the watched columns), and with diffs only
// Diff (RowDecoder.ApplyDiff).
type WatchedRow struct {
	Table, UUID    string
	Old, New, Diff []byte
	Deleted        bool
}

// WatchSpec says what to watch.
type WatchSpec struct {
	DB     string
	Tables []WatchTable
	// Diffs makes the watch a monitor_cond (the "update2" extension that
	// ovsdb-server and libovsdb use): an insert carries only the columns
	// that are not default, a modify only what changed (a set's
	// toggled members, a map's changed pairs), a delete nothing. Without
	// it, a modify carries the whole row: every member of a big set each
	// time one is added.
	Diffs bool
	// TLS is the client configuration for an ssl: remote.
	TLS *tls.Config
}

// WatchTable is one watched table.
type WatchTable struct {
	Name string
	// Columns to report; empty means all.
	Columns []string
	// Which changes the server reports; each is sent explicitly, since
	// RFC 7047 defaults an absent one to true.
	Initial, Insert, Delete, Modify bool
}

// StartWatch opens the monitor on remote and returns once the server has
// accepted it. deliver is called with the initial rows (if selected)
// before StartWatch returns, then with each update, in the order the
// server sent them, from one goroutine; it must not block for long. If it
// returns an error, the watch ends (StartWatch returns the error, or Done
// is closed).
func StartWatch(ctx context.Context, remote string, spec WatchSpec, deliver func([]WatchedRow) error, log *slog.Logger) (*Watch, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w := &Watch{}
	const id = "courier-watch"
	ready := make(chan struct{})
	method, update := "monitor", "update"
	if spec.Diffs {
		method, update = "monitor_cond", "update2"
	}
	notify := func(m string, params json.RawMessage) {
		if m != update {
			return
		}
		<-ready
		rows, err := parseUpdateNotification(params)
		if err == nil && len(rows) > 0 {
			err = deliver(rows)
		}
		if err != nil {
			// The connection is useless if its updates cannot be read;
			// closing it makes the owner start over.
			log.Warn("unreadable update from the database; closing the watch", "db", spec.DB, "err", err)
			w.conn.Close()
		}
	}
	conn, err := dialRPC(remote, spec.TLS, notify)
	if err != nil {
		return nil, err
	}
	w.conn = conn
	req := map[string]any{}
	for _, t := range spec.Tables {
		sel := map[string]bool{"initial": t.Initial, "insert": t.Insert, "delete": t.Delete, "modify": t.Modify}
		r := map[string]any{"select": sel}
		if len(t.Columns) > 0 {
			r["columns"] = t.Columns
		}
		if spec.Diffs {
			req[t.Name] = []any{r} // monitor_cond takes a list per table
		} else {
			req[t.Name] = r
		}
	}
	var initial json.RawMessage
	if err := conn.call(ctx, method, []any{spec.DB, id, req}, &initial); err != nil {
		close(ready)
		conn.Close()
		return nil, fmt.Errorf("monitor %s: %w", spec.DB, err)
	}
	rows, err := parseTableUpdates(&scanner{b: initial})
	if err == nil && len(rows) > 0 {
		err = deliver(rows)
	}
	if err != nil {
		close(ready)
		conn.Close()
		return nil, fmt.Errorf("monitor %s: initial contents: %w", spec.DB, err)
	}
	close(ready)
	return w, nil
}

// parseUpdateNotification reads the params of an "update" notification:
// [monitor id, table updates].
func parseUpdateNotification(params []byte) ([]WatchedRow, error) {
	s := &scanner{b: params}
	var rows []WatchedRow
	n := 0
	err := s.array(func() error {
		n++
		if n != 2 {
			_, err := s.skip()
			return err
		}
		var err error
		rows, err = parseTableUpdates(s)
		return err
	})
	if err == nil && n != 2 {
		err = fmt.Errorf("update has %d params, want 2", n)
	}
	return rows, err
}

// parseTableUpdates reads {table: {uuid: update}}, where an update is
// {"old": row, "new": row} (RFC 7047) or one of {"initial": row},
// {"insert": row}, {"modify": diff}, {"delete": null} (update2).
func parseTableUpdates(s *scanner) ([]WatchedRow, error) {
	var rows []WatchedRow
	err := s.object(func(table []byte) error {
		t := string(table)
		return s.object(func(uuid []byte) error {
			r := WatchedRow{Table: t, UUID: string(uuid)}
			err := s.object(func(key []byte) error {
				v, err := s.skip()
				switch string(key) {
				case "old":
					r.Old = v
				case "new", "initial", "insert":
					r.New = v
				case "modify":
					r.Diff = v
				case "delete":
					r.Deleted = true
				}
				return err
			})
			if r.Old != nil && r.New == nil {
				r.Deleted = true
			}
			rows = append(rows, r)
			return err
		})
	})
	return rows, err
}

// Done is closed when the connection ends; nothing is reported after it.
func (w *Watch) Done() <-chan struct{} { return w.conn.done }

// Close ends the watch.
func (w *Watch) Close() { w.conn.Close() }
