package nbctl

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync/atomic"
	"time"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/ops/jsonrpc"
	"github.com/courier-sdn/courier/schema"
	"github.com/courier-sdn/courier/schema/nbdb"
)

// The bulk path. A chain of port-adds (a bulk load sends thousands in
// one invocation) needs no table monitored: it reads the vxnets it
// names, their claims, the NB_Global row and the VPCs (for the
// fingerprint of an unanswered commit, retry.go), all by select, and
// commits on the same connection. Opening a libovsdb session for it (its
// schema fetched and parsed, the client's model checked, the VPC and
// NB_Global tables monitored) cost the client a fifth of such a chain's
// CPU and the server a tenth more than the chain's own work. So such a
// chain runs on a plain JSON-RPC connection: the same state, the same
// commands (cmdPortAdd), the same transaction, the same errors; only
// the loading differs. --wait opens a session after the commit, for
// NB_Global alone.
//
// Anything the bulk path does not know how to do on its own (no server
// answers, none is the leader, the server serves no northbound, a read
// fails) is left to the general path, from its start: nothing was sent.
// A commit that goes unanswered is handed to it as an attempt that may
// have committed, as its own would be.

// errNoBulk: the bulk path cannot run; the general path runs instead.
var errNoBulk = errors.New("no bulk path")

// bulkOff, for tests, sends every chain through the general path;
// bulkCommits counts the chains the bulk path committed.
var (
	bulkOff     bool
	bulkCommits atomic.Int64
)

// bulkChain says whether invs take the bulk path: port-adds only (any
// flags), reading the rows they name.
func bulkChain(invs []parsed, w *want) bool {
	if bulkOff || w == nil || len(invs) == 0 {
		return false
	}
	for _, p := range invs {
		if p.cmd.Name != "port-add" {
			return false
		}
	}
	return true
}

// tryBulk is try, on a connection of its own: it reads and runs the
// commands, and commits. An error wrapping errNoBulk says that nothing
// was sent and the general path should run.
func (c *conn) tryBulk(ctx context.Context, invs []parsed, wait bool) (*attempt, error) {
	st := newState(c.want)
	st.ctx, st.sbRemote, st.tls = ctx, c.o.SB, c.o.TLS
	st.compact = newCompactPorts(len(invs))
	st.ops = nil // sized for a port's operations; a compact port has none
	defer st.close()
	// The reads are bounded as a session's connect is: a server that
	// accepts and never answers sends the chain to the general path.
	rctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	if err := c.readBulk(rctx, st); err != nil {
		return nil, fmt.Errorf("%w: %v", errNoBulk, err)
	}
	a := &attempt{out: c.output(), before: st.fingerprint(st.touched)}
	cfg, err := execute(ctx, nil, st, invs, wait, a.out)
	a.cfg = cfg
	if err != nil { // only an attempt that may have committed is read back
		a.after = st.fingerprint(st.touched)
		return a, err
	}
	bulkCommits.Add(1)
	return a, nil
}

// connectTimeout bounds the bulk path's connecting and reading.
const connectTimeout = 10 * time.Second

// readBulk connects st to the first remote that answers and reads what
// the commands need. The check that the server serves the northbound
// and leads its cluster (serves), the roots (readRoots) and the named
// rows (readNamed) are sent together, each request on its own, so that
// they cost one round trip rather than three: on a busy machine every
// round trip waits to be scheduled, twice. If the check fails the rows
// read are dropped, and the general path, which finds the leader among
// the remotes, runs instead.
func (c *conn) readBulk(ctx context.Context, st *state) error {
	last := errors.New("no remote")
	for _, r := range c.remotes {
		conn, err := dialCtx(ctx, r, c.o.TLS)
		if err == nil {
			st.rpc = conn
			break
		}
		last = fmt.Errorf("%s: %w", r, err)
	}
	if st.rpc == nil {
		return last
	}
	checked, rooted := make(chan error, 1), make(chan error, 1)
	roots := newState(nil)
	go func() { checked <- serves(ctx, st.rpc, c.o.LeaderOnly) }()
	go func() { rooted <- roots.readRoots(ctx, st.rpc) }()
	nerr := st.readNamed(ctx, c.want)
	if err := errors.Join(<-checked, <-rooted, nerr); err != nil {
		return err
	}
	st.global, st.vpcs = roots.global, roots.vpcs
	st.link(slices.Collect(maps.Values(st.vxnets))) // the vxnets' VPCs, now read
	return nil
}

// dialCtx is jsonrpc.Dial, given up on when ctx ends.
func dialCtx(ctx context.Context, remote string, tlsc *tls.Config) (*jsonrpc.Conn, error) {
	type dialled struct {
		c   *jsonrpc.Conn
		err error
	}
	ch := make(chan dialled, 1)
	go func() {
		c, err := jsonrpc.Dial(remote, tlsc)
		ch <- dialled{c, err}
	}()
	select {
	case d := <-ch:
		return d.c, d.err
	case <-ctx.Done():
		go func() {
			if d := <-ch; d.c != nil {
				d.c.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

// serves checks, in the server's _Server database, that it serves the
// northbound and, if clustered and leaderOnly, leads the cluster (as
// libovsdb checks for a session).
func serves(ctx context.Context, conn *jsonrpc.Conn, leaderOnly bool) error {
	var res []struct {
		Rows []struct {
			Model  string `json:"model"`
			Leader bool   `json:"leader"`
		} `json:"rows"`
		Error string `json:"error"`
	}
	sel := map[string]any{"op": "select", "table": "Database", "columns": []string{"model", "leader"},
		"where": [][]any{{"name", "==", schema.NBName}}}
	if err := conn.Call(ctx, "transact", []any{"_Server", sel}, &res); err != nil {
		return err
	}
	switch {
	case len(res) != 1 || res[0].Error != "":
		return fmt.Errorf("reading _Server: %v", res)
	case len(res[0].Rows) != 1:
		return fmt.Errorf("the server has no database %s", schema.NBName)
	case leaderOnly && res[0].Rows[0].Model == "clustered" && !res[0].Rows[0].Leader:
		return errors.New("not the cluster leader")
	}
	return nil
}

// readRoots reads the NB_Global row (for --wait) and the VPCs with their
// vxnets (which the fingerprint describes), in one round trip.
func (st *state) readRoots(ctx context.Context, conn *jsonrpc.Conn) error {
	gDec, err := jsonrpc.NewRowDecoder(&nbdb.NBGlobal{})
	if err != nil {
		return err
	}
	vDec, err := jsonrpc.NewRowDecoder(&nbdb.VPC{})
	if err != nil {
		return err
	}
	res, err := jsonrpc.Selects(ctx, conn, schema.NBName, []ovsdb.Operation{
		{Op: ovsdb.OperationSelect, Table: tNB, Where: []ovsdb.Condition{}, Columns: []string{"_uuid", "nb_cfg"}},
		{Op: ovsdb.OperationSelect, Table: tVPC, Where: []ovsdb.Condition{}, Columns: []string{"_uuid", "name", "vxnets"}},
	}, []*jsonrpc.RowDecoder{gDec, vDec})
	if err != nil {
		return err
	}
	if len(res[0]) > 0 {
		st.global = res[0][0].(*nbdb.NBGlobal)
	}
	for _, m := range res[1] {
		vpc := m.(*nbdb.VPC)
		st.vpcs[vpc.Name] = vpc
	}
	return nil
}
