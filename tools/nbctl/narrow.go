package nbctl

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/ops/jsonrpc"
	"github.com/courier-sdn/courier/schema"
	"github.com/courier-sdn/courier/schema/nbdb"
	"github.com/courier-sdn/courier/tools/cmdline"
)

// A one-shot command must not cost more as the database grows, nor a
// chain more than its length. The commands that name their rows
// (port-add VXNET PORT, port-del PORT, port-set PORT, port-list VXNET,
// and those that read no port at all) therefore do not monitor the Vxnet
// and Port tables, whose rows carry every port of the VPC: they select
// the vxnets and ports they name and the vxnet each named port belongs
// to, without the vxnets' port lists. They read no other port: an
// address taken is refused by the server at commit (its claim, claims.go),
// as a taken name is by the name index. Only port-list VXNET reads its
// vxnet's ports. Any command that does not name its rows (show, port-list
// with no vxnet, vxnet-add's overlap check across the VPC) reads the
// tables whole, as before.

// want is what an invocation's commands read of the Vxnet and Port
// tables: nil, everything.
type want struct {
	vxnets []string // by name
	ports  []string // by name, whole, with their vxnet
	// peers: some command lists the vxnets' ports (port-list VXNET), so
	// the vxnets are read with their port lists, and those ports whole.
	peers bool
	tls   *tls.Config // for the connection the rows are read on
	// commands is how many commands the invocation runs: what its
	// maps and operations are sized by (a chain of port-adds names no
	// port to read, but creates one a command).
	commands int
}

// peerPorts, as a key of a command's Rows, says that it reads the ports
// of the vxnets it names.
const peerPorts = "peers"

// rowsWanted merges what the commands name. It returns nil if any of
// them reads the Vxnet or Port table without naming its rows.
func rowsWanted(invs []parsed, tlsc *tls.Config) *want {
	w := &want{tls: tlsc, commands: len(invs)}
	for _, p := range invs {
		reads := slices.Contains(p.cmd.Tables, tVxnet) || slices.Contains(p.cmd.Tables, tPort)
		if !reads {
			continue
		}
		if p.cmd.Rows == nil {
			return nil
		}
		rows := p.cmd.Rows(p.inv)
		if rows == nil {
			return nil
		}
		w.vxnets = append(w.vxnets, rows[tVxnet]...)
		w.ports = append(w.ports, rows[tPort]...)
		if _, ok := rows[peerPorts]; ok {
			w.peers = true
		}
	}
	return w
}

// monitored are the tables an invocation monitors: those its commands
// read, less the two that w names rows of.
func monitored(tables map[string]bool, w *want) []client.MonitorOption {
	var out []client.MonitorOption
	for _, t := range sortedKeys(tables) {
		if w != nil && (t == tVxnet || t == tPort) {
			continue
		}
		out = append(out, client.WithTable(tableModels[t]))
	}
	return out
}

// namedPort is what a command that names one port (args[i]) reads.
func namedPort(i int) func(inv *cmdline.Invocation) map[string][]string {
	return func(inv *cmdline.Invocation) map[string][]string {
		return map[string][]string{tPort: {inv.Args[i]}}
	}
}

// portAddRows is what port-add VXNET PORT reads: the vxnet. Whether PORT
// exists elsewhere is the name index's to say at commit (see
// existsError), whether its addresses are taken the claim index's (see
// claimError), so that a chain of thousands of port-adds looks up
// neither; with --may-exist, the existing port is read to compare.
func portAddRows(inv *cmdline.Invocation) map[string][]string {
	rows := map[string][]string{tVxnet: {inv.Args[0]}}
	if inv.Has("may-exist") {
		rows[tPort] = []string{inv.Args[1]}
	}
	return rows
}

// portListRows is what port-list reads: one vxnet's ports, or all.
func portListRows(inv *cmdline.Invocation) map[string][]string {
	if len(inv.Args) == 0 {
		return nil
	}
	return map[string][]string{tVxnet: {inv.Args[0]}, peerPorts: nil}
}

// readNamed fills st's vxnets and ports from the rows w names, in at
// most four round trips on a connection of its own to the server the
// session uses (the rows are decoded straight from the reply, not through
// libovsdb's generic rows; the transaction is committed on it too): the
// named rows; which vxnet holds each named port; those vxnets; and, for
// port-list VXNET, the ports of every vxnet read. The vxnets are read
// without their port lists unless those ports are listed: a list is what
// grows with the vxnet.
func (st *state) readNamed(ctx context.Context, w *want) error {
	if st.rpc == nil { // the bulk path (bulk.go) dialled it already
		conn, err := jsonrpc.Dial(st.c.CurrentEndpoint(), w.tls)
		if err != nil {
			return err
		}
		st.rpc = conn // the commit goes on it too (execute)
	}
	conn := st.rpc
	vxDec, err := jsonrpc.NewRowDecoder(&nbdb.Vxnet{})
	if err != nil {
		return err
	}
	pDec, err := jsonrpc.NewRowDecoder(&nbdb.Port{})
	if err != nil {
		return err
	}
	r := &reader{ctx: ctx, conn: conn, vxCols: vxnetColumns}
	if w.peers {
		r.vxCols = nil
	}
	st.touched = make(map[string]bool, len(w.ports))
	for _, n := range w.ports {
		st.touched[n] = true
	}
	if err := r.namedPorts(dedup(w.ports), pDec); err != nil {
		return err
	}
	vxNames := dedup(w.vxnets)
	wanted := map[string]bool{} // by name, when the whole table is read
	if len(vxNames) >= vxnetsScanAt {
		for _, n := range vxNames {
			wanted[n] = true
		}
		r.addVxnet(ovsdb.Operation{Op: ovsdb.OperationSelect, Table: tVxnet, Where: []ovsdb.Condition{}}, vxDec)
	} else {
		for _, n := range vxNames {
			r.addVxnet(selectWhere(tVxnet, "name", ovsdb.ConditionEqual, n), vxDec)
		}
	}
	found, err := r.run()
	if err != nil {
		return err
	}
	vxnets := map[string]*nbdb.Vxnet{}
	var named []*nbdb.Port
	for _, m := range found {
		switch row := m.(type) {
		case *nbdb.Vxnet:
			if len(wanted) > 0 && !wanted[row.Name] {
				continue
			}
			vxnets[row.UUID] = row
		case *nbdb.Port:
			named = append(named, row)
		}
	}
	holder, err := r.vxnetsOf(named, vxnets, vxDec)
	if err != nil {
		return err
	}
	var peers []model.Model
	if w.peers {
		if peers, err = r.peers(vxnets, pDec); err != nil {
			return err
		}
	}
	if err := st.prefetchClaims(r, vxnets); err != nil {
		return err
	}
	for _, vx := range vxnets {
		st.vxnets[vx.Name] = vx
	}
	for _, m := range append(peers, asModels(named)...) { // a named port whole
		p := m.(*nbdb.Port)
		st.ports[p.Name] = p
		st.portByUUID[p.UUID] = p
	}
	st.link(slices.Collect(maps.Values(vxnets)))
	for p, vx := range holder {
		st.portVxnet[p] = vxnets[vx]
	}
	return nil
}

// vxnetsScanAt is how many vxnets named make one select of the Vxnet
// table (without its port lists) cheaper than a select by name for each,
// which ovsdb-server answers with a scan of the table.
var vxnetsScanAt = 64

// claimsScanAt is how many vxnets read make one select of the whole
// Address_Claim table (the claims of the few ports that claim, in every
// vxnet) cheaper than a select for each vxnet and, at commit, a wait for
// each: five hundred more operations for a chain over 253 vxnets cost
// the server a fifth more than its port inserts.
var claimsScanAt = 16

// prefetchClaims reads the claim rows of every vxnet read, in one round
// trip: a select each, or, from claimsScanAt vxnets on, one of the table
// (a port-add checks its IP against its vxnet's claims).
func (st *state) prefetchClaims(r *reader, vxnets map[string]*nbdb.Vxnet) error {
	if len(vxnets) == 0 {
		return nil
	}
	dec, err := jsonrpc.NewRowDecoder(&nbdb.AddressClaim{})
	if err != nil {
		return err
	}
	var order []string
	b := st.claims
	if len(vxnets) >= claimsScanAt {
		b.whole = []ovsdb.Row{}
		r.add(ovsdb.Operation{Op: ovsdb.OperationSelect, Table: nbdb.AddressClaimTable, Where: []ovsdb.Condition{}}, dec)
	} else {
		for u := range vxnets {
			order = append(order, u)
			r.add(claimsOf(u), dec)
		}
	}
	res, err := r.runEach()
	if err != nil {
		return err
	}
	for u := range vxnets {
		b.dbClaims[u] = map[string]*nbdb.AddressClaim{}
	}
	for i, rows := range res {
		for _, row := range rows {
			c := row.(*nbdb.AddressClaim)
			if b.whole != nil {
				b.whole = append(b.whole, ovsdb.Row{"vxnet": ovsdb.UUID{GoUUID: c.Vxnet}, "address": c.Address})
			} else {
				c.Vxnet = order[i]
			}
			if m := b.dbClaims[c.Vxnet]; m != nil {
				m[c.Address] = c
			}
		}
	}
	return nil
}

// vxnetColumns are the Vxnet columns read for commands that do not list
// a vxnet's ports: all but ports.
var vxnetColumns = func() []string {
	var cols []string
	t := reflect.TypeOf(nbdb.Vxnet{})
	for i := 0; i < t.NumField(); i++ {
		if c := t.Field(i).Tag.Get("ovsdb"); c != "" && c != "ports" {
			cols = append(cols, c)
		}
	}
	return cols
}()

// namesScanAt is how many named ports make one pass over the Port
// table's names cheaper than a select by name for each: ovsdb-server
// scans the table for every select by a column other than _uuid, so a
// chain of thousands of port-sets would scan it thousands of times.
var namesScanAt = 256

// namedPorts queues the selects of the ports named: by name each, or,
// for many, by UUID each, found in one pass over the table's names.
func (r *reader) namedPorts(names []string, dec *jsonrpc.RowDecoder) error {
	if len(names) < namesScanAt {
		for _, n := range names {
			r.add(selectWhere(tPort, "name", ovsdb.ConditionEqual, n), dec)
		}
		portScans.Add(int64(len(names)))
		return nil
	}
	portScans.Add(1)
	r.add(ovsdb.Operation{Op: ovsdb.OperationSelect, Table: tPort, Where: []ovsdb.Condition{}, Columns: []string{"_uuid", "name"}}, dec)
	all, err := r.run() // nothing else is queued yet (readNamed)
	if err != nil {
		return err
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	for _, m := range all {
		if p := m.(*nbdb.Port); want[p.Name] {
			r.add(selectWhere(tPort, "_uuid", ovsdb.ConditionEqual, ovsdb.UUID{GoUUID: p.UUID}), dec)
		}
	}
	return nil
}

// vxnetsOf finds the vxnet of each named port (its UUID only, by the
// port set that includes it) and adds each vxnet not read yet to vxnets,
// read once. It returns which vxnet holds each port, by UUID.
func (r *reader) vxnetsOf(named []*nbdb.Port, vxnets map[string]*nbdb.Vxnet, dec *jsonrpc.RowDecoder) (map[string]string, error) {
	for _, p := range named {
		op := selectWhere(tVxnet, "ports", ovsdb.ConditionIncludes, ovsdb.OvsSet{GoSet: []any{ovsdb.UUID{GoUUID: p.UUID}}})
		op.Columns = []string{"_uuid"}
		r.add(op, dec)
	}
	which, err := r.runEach()
	if err != nil {
		return nil, err
	}
	holder := map[string]string{}
	queued := map[string]bool{}
	for i, rows := range which {
		for _, m := range rows {
			u := m.(*nbdb.Vxnet).UUID
			holder[named[i].UUID] = u
			if vxnets[u] == nil && !queued[u] {
				queued[u] = true
				r.addVxnet(selectWhere(tVxnet, "_uuid", ovsdb.ConditionEqual, ovsdb.UUID{GoUUID: u}), dec)
			}
		}
	}
	more, err := r.run()
	if err != nil {
		return nil, err
	}
	for _, m := range more {
		vx := m.(*nbdb.Vxnet)
		vxnets[vx.UUID] = vx
	}
	return holder, nil
}

// wholeTableAt is how many ports of the vxnets listed make one select of
// the whole Port table cheaper than a select by UUID for each.
var wholeTableAt = 4096

// peers reads every port of vxnets, by UUID (an index lookup each), or,
// for many, as one select of the table.
func (r *reader) peers(vxnets map[string]*nbdb.Vxnet, dec *jsonrpc.RowDecoder) ([]model.Model, error) {
	want := map[string]bool{}
	for _, vx := range vxnets {
		for _, u := range vx.Ports {
			want[u] = true
		}
	}
	if len(want) < wholeTableAt {
		for u := range want {
			r.add(selectWhere(tPort, "_uuid", ovsdb.ConditionEqual, ovsdb.UUID{GoUUID: u}), dec)
		}
		return r.run()
	}
	r.add(ovsdb.Operation{Op: ovsdb.OperationSelect, Table: tPort, Where: []ovsdb.Condition{}}, dec)
	all, err := r.run()
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, m := range all {
		if want[m.(*nbdb.Port).UUID] {
			out = append(out, m)
		}
	}
	return out, nil
}

// For tests: the rows read by name, the ports named in the vxnet rows
// read, the passes over the Port table to find ports by name and the
// operations committed, so far.
var rowsRead, portRefsRead, portScans, opsCommitted atomic.Int64

// beforeCommit, for tests, runs once between an invocation's reads and
// its commit: another writer's change lands in between.
var beforeCommit atomic.Pointer[func()]

// reader batches selects into one transaction.
type reader struct {
	ctx    context.Context
	conn   *jsonrpc.Conn
	q      []ovsdb.Operation
	decs   []*jsonrpc.RowDecoder
	vxCols []string // the Vxnet columns read whole (nil: all)
}

func (r *reader) add(op ovsdb.Operation, dec *jsonrpc.RowDecoder) {
	r.q, r.decs = append(r.q, op), append(r.decs, dec)
}

// addVxnet adds a select of vxnet rows, with the columns r reads.
func (r *reader) addVxnet(op ovsdb.Operation, dec *jsonrpc.RowDecoder) {
	op.Columns = r.vxCols
	r.add(op, dec)
}

// run sends the selects added since the last run and returns every row.
func (r *reader) run() ([]model.Model, error) {
	res, err := r.runEach()
	var out []model.Model
	for _, rows := range res {
		out = append(out, rows...)
	}
	return out, err
}

// runEach sends the selects added since the last run and returns each
// one's rows.
func (r *reader) runEach() ([][]model.Model, error) {
	res, err := jsonrpc.Selects(r.ctx, r.conn, schema.NBName, r.q, r.decs)
	r.q, r.decs = r.q[:0], r.decs[:0]
	var refused *jsonrpc.SelectError
	if errors.As(err, &refused) {
		return nil, fmt.Errorf("reading rows: %w", err)
	}
	if err != nil { // lost, or never answered: read again
		return nil, fmt.Errorf("%w: reading rows: %v", ops.ErrNoConnection, err)
	}
	for _, rows := range res {
		rowsRead.Add(int64(len(rows)))
		for _, m := range rows {
			if vx, ok := m.(*nbdb.Vxnet); ok {
				portRefsRead.Add(int64(len(vx.Ports)))
			}
		}
	}
	return res, nil
}

func selectWhere(table, col string, fn ovsdb.ConditionFunction, v any) ovsdb.Operation {
	return ovsdb.Operation{Op: ovsdb.OperationSelect, Table: table,
		Where: []ovsdb.Condition{{Column: col, Function: fn, Value: v}}}
}

func dedup(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}

func asModels[T model.Model](s []T) []model.Model {
	out := make([]model.Model, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// indexClash matches the commit error of a row inserted with a name that
// another row has (OVSDB's index check).
var indexClash = lazyRegexp(`"(\w+)" table to have identical values \((.*?)\) for index on column "name"`)

// lazyRegexp compiles pattern when first used: the refusals' patterns
// are needed only after a refusal, and compiling them at start cost
// every invocation.
func lazyRegexp(pattern string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(pattern) })
}

// existsError turns the name index's refusal of a new row into the error
// the command would have given had it read the row: the commit is
// refused whole, nothing was written.
func existsError(err error) error {
	var te *ops.TxnError
	if !errors.As(err, &te) || te.Err != "constraint violation" {
		return err
	}
	m := indexClash().FindStringSubmatch(te.Details)
	if m == nil {
		return err
	}
	name := m[2]
	if n, uerr := strconv.Unquote(name); uerr == nil {
		name = n
	}
	return fmt.Errorf("%s %s already exists", strings.ToLower(m[1]), name)
}
