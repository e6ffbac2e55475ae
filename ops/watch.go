package ops

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
)

// Watch is a monitor of one table on a connection of its own, for what
// libovsdb's monitors cannot ask for: a choice of which kinds of change
// the server reports (RFC 7047 §4.1.5, "select"). A writer that owns a
// table's rows can skip the echo of its own inserts, which at 64,000 rows
// is most of ovsdb-server's work in a bulk write, and still hear at once
// when somebody else deletes or renames one.
type Watch struct {
	conn *rpcConn
}

// WatchedRow is one reported change. Old is nil for an insert (or an
// initial row), New is nil for a delete; for a modify, Old holds the
// previous values of the columns that changed and New all the watched
// columns.
type WatchedRow struct {
	UUID     string
	Old, New map[string]json.RawMessage
}

// WatchSpec says what to watch.
type WatchSpec struct {
	DB, Table string
	Columns   []string
	// Which changes the server reports; each is sent explicitly, since
	// RFC 7047 defaults an absent one to true.
	Initial, Insert, Delete, Modify bool
}

type watchRowUpdate struct {
	Old map[string]json.RawMessage `json:"old"`
	New map[string]json.RawMessage `json:"new"`
}

// StartWatch opens the monitor on remote and returns once the server has
// accepted it. deliver is called with the initial rows (if selected)
// before StartWatch returns, then with every update in the order the
// server sent them, from one goroutine; it must not block for long.
func StartWatch(ctx context.Context, remote string, spec WatchSpec, deliver func([]WatchedRow), log *slog.Logger) (*Watch, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w := &Watch{}
	const id = "courier-watch"
	ready := make(chan struct{})
	decode := func(raw json.RawMessage) []WatchedRow {
		var upd map[string]map[string]watchRowUpdate
		if err := json.Unmarshal(raw, &upd); err != nil {
			// The connection is useless if its updates cannot be read;
			// closing it makes the owner start over.
			log.Warn("unreadable update from the database; closing the watch", "table", spec.Table, "err", err)
			w.conn.Close()
			return nil
		}
		rows := make([]WatchedRow, 0, len(upd[spec.Table]))
		for u, r := range upd[spec.Table] {
			rows = append(rows, WatchedRow{UUID: u, Old: r.Old, New: r.New})
		}
		return rows
	}
	notify := func(method string, params json.RawMessage) {
		if method != "update" {
			return
		}
		<-ready
		var p []json.RawMessage
		if err := json.Unmarshal(params, &p); err != nil || len(p) != 2 {
			log.Warn("malformed update notification; closing the watch", "table", spec.Table)
			w.conn.Close()
			return
		}
		if rows := decode(p[1]); len(rows) > 0 {
			deliver(rows)
		}
	}
	conn, err := dialRPC(remote, notify)
	if err != nil {
		return nil, err
	}
	w.conn = conn
	sel := map[string]bool{"initial": spec.Initial, "insert": spec.Insert, "delete": spec.Delete, "modify": spec.Modify}
	req := map[string]any{spec.Table: map[string]any{"columns": spec.Columns, "select": sel}}
	var initial json.RawMessage
	if err := conn.call(ctx, "monitor", []any{spec.DB, id, req}, &initial); err != nil {
		close(ready)
		conn.Close()
		return nil, fmt.Errorf("monitor %s: %w", spec.Table, err)
	}
	if rows := decode(initial); len(rows) > 0 {
		deliver(rows)
	}
	close(ready)
	return w, nil
}

// Done is closed when the connection ends; nothing is reported after it.
func (w *Watch) Done() <-chan struct{} { return w.conn.done }

// Close ends the watch.
func (w *Watch) Close() { w.conn.Close() }
