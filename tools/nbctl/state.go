package nbctl

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/netip"
	"strconv"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/northd/rules"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/ops/jsonrpc"
	"github.com/courier-sdn/courier/schema"
	"github.com/courier-sdn/courier/schema/nbdb"
	"github.com/courier-sdn/courier/tools/dbcmd"
)

// state is the northbound as the commands of one invocation see it: what
// the database held when the invocation started, plus what earlier
// commands of the same invocation did. Commands change it and append the
// operations that make the same change in the database; nothing is sent
// until every command has succeeded.
type state struct {
	ctx    context.Context
	c      client.Client
	global *nbdb.NBGlobal
	vpcs   map[string]*nbdb.VPC   // by name
	vxnets map[string]*nbdb.Vxnet // by name
	ports  map[string]*nbdb.Port  // by name
	// claims are the address claims the commands made (claims.go).
	claims *claimBook
	// touched are the ports the commands name or create, when they
	// read only the rows they name (nil: they read every row).
	touched map[string]bool
	// portByUUID holds every port read or created, current or not
	// (ports[p.Name] == p says it is).
	portByUUID map[string]*nbdb.Port
	routes     map[string]*nbdb.Route // by UUID
	// security groups and their rules, by UUID, read whole (sg.go)
	sgs     map[string]*nbdb.SecurityGroup
	sgRules map[string]*nbdb.SecurityGroupRule
	sgVPC   map[string]*nbdb.VPC // group UUID -> its VPC
	// external networks by name, EIPs by address, read whole (eip.go)
	extnets map[string]*nbdb.ExternalNetwork
	eips    map[string]*nbdb.EIP
	eipNet  map[string]*nbdb.ExternalNetwork // EIP address -> its network
	// VPCs' SNAT configurations by UUID, read whole (snat.go)
	snats map[string]*nbdb.SNAT

	vxnetVPC  map[string]*nbdb.VPC   // vxnet UUID -> its VPC
	portVxnet map[string]*nbdb.Vxnet // port UUID -> its vxnet
	routeVPC  map[string]*nbdb.VPC   // route UUID -> its VPC

	ops []ovsdb.Operation
	// rpc is the connection named rows are read on (readNamed), which
	// also carries the commit; nil when the commands read whole tables.
	rpc *jsonrpc.Conn
	// aux carries the reads of claims when the commands read whole
	// tables (rpc is nil then); dialled when first needed.
	aux *jsonrpc.Conn
	db  *dbcmd.DB // the generic commands' view, made when first needed
	// sbRemote and tls are where show --runtime reads the southbound.
	sbRemote string
	tls      *tls.Config
	named    int
	verified map[string]bool // row UUID and column pointer
	// compact, set by the bulk path (bulk.go), holds the ports added
	// without claims, encoded straight to JSON at commit (compact.go).
	compact *compactPorts
}

// loadState reads the state from sess's cache. A session lost meanwhile
// is ops.ErrNoConnection: what was read may be incomplete.
func loadState(ctx context.Context, sess *ops.Session, w *want) (*state, error) {
	rctx, cancel := sess.Context(ctx)
	defer cancel()
	st, err := readState(rctx, sess.Client, w)
	select {
	case <-sess.Done():
		err = fmt.Errorf("%w: the session ended while reading", ops.ErrNoConnection)
	default:
	}
	if err != nil {
		st.close()
		return nil, err
	}
	if st != nil {
		st.ctx = ctx // for the commands' own reads: rctx ends here
	}
	return st, err
}

// newState is an empty state for commands that read the rows w names
// (nil: whole tables), its maps sized for them.
func newState(w *want) *state {
	n := 0 // the ports the commands name or create, about one a command
	if w != nil {
		n = max(len(w.ports), w.commands)
	}
	return &state{verified: map[string]bool{}, claims: newClaimBook(n),
		vpcs:       map[string]*nbdb.VPC{},
		vxnets:     map[string]*nbdb.Vxnet{},
		ports:      make(map[string]*nbdb.Port, n),
		portByUUID: make(map[string]*nbdb.Port, n),
		routes:     map[string]*nbdb.Route{},
		vxnetVPC:   map[string]*nbdb.VPC{},
		portVxnet:  make(map[string]*nbdb.Vxnet, n),
		routeVPC:   map[string]*nbdb.VPC{},
		// A new port is its insert and its vxnet's mutation (merged at
		// commit): the chain's operations grow at most once, not log n
		// times.
		ops: make([]ovsdb.Operation, 0, 2*n+8),
	}
}

func readState(ctx context.Context, c client.Client, w *want) (*state, error) {
	st := newState(w)
	st.c = c
	globals, err := ops.List[nbdb.NBGlobal](ctx, c, nil)
	if err != nil {
		return nil, err
	}
	if len(globals) > 0 {
		st.global = globals[0]
	}
	vpcs, err := ops.List[nbdb.VPC](ctx, c, nil)
	if err != nil {
		return nil, err
	}
	routes, err := ops.List[nbdb.Route](ctx, c, nil)
	if err != nil {
		return nil, err
	}
	for _, r := range routes {
		st.routes[r.UUID] = r
	}
	for _, vpc := range vpcs {
		st.vpcs[vpc.Name] = vpc
		for _, u := range vpc.Routes {
			st.routeVPC[u] = vpc
		}
	}
	if err := st.readGroups(ctx); err != nil {
		return nil, err
	}
	if err := st.readExtnets(ctx); err != nil {
		return nil, err
	}
	if err := st.readSNATs(ctx); err != nil {
		return nil, err
	}
	if w != nil {
		return st, st.readNamed(ctx, w)
	}
	vxnets, err := ops.List[nbdb.Vxnet](ctx, c, nil)
	if err != nil {
		return nil, err
	}
	ports, err := ops.List[nbdb.Port](ctx, c, nil)
	if err != nil {
		return nil, err
	}
	for _, v := range vxnets {
		st.vxnets[v.Name] = v
	}
	for _, p := range ports {
		st.ports[p.Name] = p
		st.portByUUID[p.UUID] = p
	}
	st.link(vxnets)
	return st, nil
}

// close ends the connection the rows were read on, if any.
func (st *state) close() {
	if st == nil {
		return
	}
	for _, c := range []**jsonrpc.Conn{&st.rpc, &st.aux} {
		if *c != nil {
			(*c).Close()
			*c = nil
		}
	}
}

// transactor is what commits the commands' operations: the connection
// the rows were read on, whose encoding costs a fraction of libovsdb's
// for a chain of thousands of commands; else the connection claims were
// read on (libovsdb's encoding drops a wait's empty rows, which a guard
// of a vxnet without claims has); else the session.
func (st *state) transactor(sess *ops.Session) ops.Transactor {
	switch {
	case st.rpc != nil:
		return st.rpc.Transactor(schema.NBName)
	case st.aux != nil:
		return st.aux.Transactor(schema.NBName)
	}
	return sess.Client
}

// link records which VPC each vxnet belongs to, and which vxnet each
// port.
func (st *state) link(vxnets []*nbdb.Vxnet) {
	for _, vpc := range st.vpcs {
		for _, u := range vpc.Vxnets {
			st.vxnetVPC[u] = vpc
		}
	}
	for _, v := range vxnets {
		for _, u := range v.Ports {
			st.portVxnet[u] = v
		}
	}
}

// generic is the generic commands' view of the northbound (tools/dbcmd),
// sharing this invocation's transaction.
func (st *state) generic() (*dbcmd.DB, error) {
	if st.db == nil {
		s, err := Schema()
		if err != nil {
			return nil, err
		}
		st.db = dbcmd.New(st.ctx, s, st.c, &st.ops)
		st.db.Pending = st.pending
	}
	return st.db, nil
}

// pending finds a row that a command of this invocation creates, for
// the generic commands ("vpc-add x -- set VPC x external_ids:k=v").
func (st *state) pending(table, name string) (string, bool) {
	var u string
	switch table {
	case tVPC:
		if v := st.vpcs[name]; v != nil {
			u = v.UUID
		}
	case tVxnet:
		if v := st.vxnets[name]; v != nil {
			u = v.UUID
		}
	case tPort:
		if p := st.ports[name]; p != nil {
			u = p.UUID
		}
	}
	return u, u != "" && ovsdb.IsNamedUUID(u)
}

// Schema is the northbound's schema as the generic commands read it.
func Schema() (*dbcmd.Schema, error) {
	return dbcmd.ParseSchema(schema.NB, nil)
}

// newName returns a fresh named-UUID for a row inserted by this invocation.
func (st *state) newName(prefix string) string {
	st.named++
	return prefix + strconv.Itoa(st.named)
}

func (st *state) add(ops []ovsdb.Operation, err error) error {
	if err != nil {
		return err
	}
	st.ops = append(st.ops, ops...)
	return nil
}

// insertInto creates child (named uuid in this transaction) and adds it
// to the parent's set of references, in memory and in the transaction.
func (st *state) insertInto(parent model.Model, set *[]string, child model.Model, uuid string) error {
	if err := st.add(st.c.Create(child)); err != nil {
		return err
	}
	*set = append(*set, uuid)
	return st.add(ops.ByUUID(st.c, parent).Mutate(parent, model.Mutation{
		Field: set, Mutator: ovsdb.MutateOperationInsert, Value: []string{uuid}}))
}

// verify makes the transaction fail, with a "wait" operation that times
// out at once, if the column that field points into has changed in the
// database since it was read. A command that inserts into or deletes from
// a set calls it before changing the set: it decided from what the set
// held (no route for this prefix yet, no port with this address), and
// the transaction must not commit if another one changed the set
// meanwhile. The caller then reads again and runs the commands again, as
// ovn-nbctl does after its "verify" fails. Rows this invocation inserted,
// and columns already verified, need no check.
func (st *state) verify(m model.Model, uuid string, field any) error {
	key := fmt.Sprintf("%s/%p", uuid, field)
	if ovsdb.IsNamedUUID(uuid) || st.verified[key] {
		return nil
	}
	st.verified[key] = true
	now := 0
	return st.add(ops.ByUUID(st.c, m).Wait(ovsdb.WaitConditionEqual, &now, m, field))
}

func (st *state) vpc(name string) (*nbdb.VPC, error) {
	if v := st.vpcs[name]; v != nil {
		return v, nil
	}
	return nil, fmt.Errorf("no VPC named %q", name)
}

func (st *state) vxnet(name string) (*nbdb.Vxnet, error) {
	if v := st.vxnets[name]; v != nil {
		return v, nil
	}
	return nil, fmt.Errorf("no vxnet named %q", name)
}

func (st *state) port(name string) (*nbdb.Port, error) {
	if p := st.ports[name]; p != nil {
		return p, nil
	}
	return nil, fmt.Errorf("no port named %q", name)
}

// vxnetsOf lists a VPC's vxnets.
func (st *state) vxnetsOf(vpc *nbdb.VPC) []*nbdb.Vxnet {
	var out []*nbdb.Vxnet
	for _, v := range st.vxnets {
		if st.vxnetVPC[v.UUID] == vpc {
			out = append(out, v)
		}
	}
	return out
}

// portsOf lists a vxnet's ports, from its own list: what it costs grows
// with the vxnet, not with the VPC (a bulk load of thousands of ports
// stays linear).
func (st *state) portsOf(vx *nbdb.Vxnet) []*nbdb.Port {
	var out []*nbdb.Port
	for _, u := range vx.Ports {
		if p := st.portByUUID[u]; p != nil && st.ports[p.Name] == p && st.portVxnet[u] == vx {
			out = append(out, p)
		}
	}
	return out
}

// vniOf is the VNI a vxnet holds: the requested one, else what northd
// allocated and recorded in its status.
func vniOf(vx *nbdb.Vxnet) int {
	if vx.Vni != nil {
		return *vx.Vni
	}
	if n, err := strconv.Atoi(vx.Status["vni"]); err == nil {
		return n
	}
	return 0
}

// gatewayOf returns a vxnet's CIDR and gateway as recorded in the NB.
func gatewayOf(vx *nbdb.Vxnet) (netip.Prefix, netip.Addr, error) {
	p, err := rules.ParseCIDR(vx.Cidr)
	if err != nil {
		return p, netip.Addr{}, err
	}
	gw := rules.DefaultGateway(p)
	if vx.Gateway != nil {
		if gw, err = rules.ParseIP(*vx.Gateway); err != nil {
			return p, gw, err
		}
	}
	return p, gw, nil
}

// statusText is what the list commands print for a row's status.
func statusText(s map[string]string) string {
	switch {
	case s["state"] == "error":
		return "error: " + s["error"]
	case s["state"] != "":
		// an accepted row's problems that do not refuse it
		text := s["state"]
		for _, k := range []string{"dhcp_error", "exclude_ips_error"} {
			if s[k] != "" {
				text += "; " + s[k]
			}
		}
		return text
	default:
		return "pending"
	}
}

// portWhere is a port's runtime state as southd reports it in the
// northbound (Port.up and .chassis): "up on hv2" once its chassis has
// programmed it, "down on hv2" while bound but not (or no longer) up,
// "unbound" while no chassis holds it, "" before its binding exists.
func portWhere(p *nbdb.Port) string {
	switch {
	case p.Up != nil && *p.Up && p.Chassis != nil:
		return "up on " + *p.Chassis
	case p.Chassis != nil:
		return "down on " + *p.Chassis
	case p.Up != nil:
		return "unbound"
	}
	return ""
}

// portStatus is port-list's STATUS: an error, else where it runs.
func portStatus(p *nbdb.Port) string {
	if w := portWhere(p); w != "" && p.Status["state"] != "error" {
		return w
	}
	return statusText(p.Status)
}
