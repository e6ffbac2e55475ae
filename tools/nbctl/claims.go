package nbctl

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"

	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/ops/jsonrpc"
	"github.com/courier-sdn/courier/schema"
	"github.com/courier-sdn/courier/schema/nbdb"
)

// An address is unique within its vxnet (a MAC, a fixed IP; a virtual IP
// may be shared by ports, never with a fixed one). courier-nbctl does not
// read a vxnet's ports to check that: each port's MAC, fixed IPs and
// virtual IPs are rows of the northbound's Address_Claim table (schema
// 1.7.0), owned by the port (Port.claims, strong references: the port's
// deletion deletes them) and unique by (vxnet, address), so the server
// refuses a clashing claim at commit, whole, as it refuses a taken name.
// The commands insert a port's claims with the port, in the same
// transaction; port-set replaces them. A virtual IP shared by several
// ports is one row they all reference: adding one reads the vxnet's
// virtual IP claims (a few rows), never its ports. After a refusal, one
// select finds the port that holds the address, for the same message a
// read of every port gave. Within one invocation, what earlier commands
// claimed is checked in memory, so a chain that claims an address twice
// is refused by name before anything is sent.
//
// Writers that do not use courier-nbctl may leave claims out: northd's
// checks stay the authority (it refuses a clashing port in its status);
// claims only let a writer be refused at once, atomically.

type claimKey struct{ vxnet, addr string }

// heldClaim is a claim this invocation's commands hold: the row (named
// if inserted here), its kind and the ports holding it (several only for
// a virtual IP).
type heldClaim struct {
	uuid, kind string
	ports      []string
}

// claimBook is what the invocation's commands claimed, and the virtual
// IP claims read from the database, by vxnet.
type claimBook struct {
	held     map[claimKey]*heldClaim
	byPort   map[string][]claimKey
	inserted map[claimKey]string          // kind of each claim row inserted
	dbVIPs   map[string]map[string]string // vxnet UUID -> VIP -> claim row
	guarded  map[string]bool              // claim rows read, with a wait
}

// newClaimBook makes a book for about ports ports (two claims each,
// sized up front: growing the maps cost a chain of thousands of
// port-adds more than filling them).
func newClaimBook(ports int) *claimBook {
	return &claimBook{held: make(map[claimKey]*heldClaim, 2*ports), byPort: make(map[string][]claimKey, ports),
		inserted: make(map[claimKey]string, 2*ports), dbVIPs: map[string]map[string]string{}, guarded: map[string]bool{}}
}

// errClaimRace: two writers added the same new virtual IP at once; the
// loser reads again, finds the winner's row and shares it.
var errClaimRace = errors.New("a virtual IP was claimed meanwhile")

// claimPort gives port p (in vx) the claims of its MAC, fixed IPs and
// virtual IPs, replacing what it held: the rows it referenced are
// garbage-collected by the server at commit unless referenced again.
func (st *state) claimPort(vx *nbdb.Vxnet, p *nbdb.Port) error {
	st.releasePort(vx, p.Name)
	var uuids []string
	add := func(kind, addr string) error {
		u, err := st.claim(vx, p.Name, kind, addr)
		if err == nil {
			uuids = append(uuids, u)
		}
		return err
	}
	if p.MAC != schema.Dynamic {
		if err := add(nbdb.AddressClaimKindMAC, p.MAC); err != nil {
			return err
		}
	}
	for _, ip := range p.IPs {
		if ip == schema.Dynamic {
			continue
		}
		if err := add(nbdb.AddressClaimKindIP, ip); err != nil {
			return err
		}
	}
	for _, ip := range p.VirtualIPs {
		if err := add(nbdb.AddressClaimKindVip, ip); err != nil {
			return err
		}
	}
	p.Claims = uuids
	return nil
}

// claim returns the claim row for port's addr in vx: a new row, or the
// virtual IP row other ports share. It refuses what an earlier command
// of the invocation holds.
func (st *state) claim(vx *nbdb.Vxnet, port, kind, addr string) (string, error) {
	b, k := st.claims, claimKey{vx.UUID, addr}
	if h := b.held[k]; h != nil && len(h.ports) > 0 {
		if kind == nbdb.AddressClaimKindVip && h.kind == kind {
			h.ports = append(h.ports, port)
			b.byPort[port] = append(b.byPort[port], k)
			return h.uuid, nil
		}
		return "", clashError(kind, h.kind, addr, h.ports[len(h.ports)-1], vx.Name)
	}
	h := &heldClaim{kind: kind, ports: []string{port}}
	if kind == nbdb.AddressClaimKindVip {
		vips, err := st.vipClaims(vx)
		if err != nil {
			return "", err
		}
		h.uuid = vips[addr]
	}
	if h.uuid != "" {
		st.guardClaim(h.uuid)
	} else {
		h.uuid = st.newName("claim")
		b.inserted[k] = kind
		st.ops = append(st.ops, ovsdb.Operation{Op: ovsdb.OperationInsert, Table: nbdb.AddressClaimTable, UUIDName: h.uuid,
			Row: ovsdb.Row{"vxnet": ovsdb.UUID{GoUUID: vx.UUID}, "address": addr, "kind": kind}})
	}
	b.held[k] = h
	b.byPort[port] = append(b.byPort[port], k)
	return h.uuid, nil
}

// releasePort forgets what port holds in this invocation.
func (st *state) releasePort(vx *nbdb.Vxnet, port string) {
	b := st.claims
	for _, k := range b.byPort[port] {
		if h := b.held[k]; h != nil {
			if i := slices.Index(h.ports, port); i >= 0 {
				h.ports = slices.Delete(h.ports, i, i+1)
			}
			if len(h.ports) == 0 {
				delete(b.held, k) // a row inserted here, unreferenced, is collected
			}
		}
	}
	delete(b.byPort, port)
}

// clashError is the refusal of a claim of kind mine on addr, held by
// holder with a claim of kind theirs.
func clashError(mine, theirs, addr, holder, vxnet string) error {
	switch {
	case mine == nbdb.AddressClaimKindMAC:
		return fmt.Errorf("MAC %s is already used by port %s in vxnet %s", addr, holder, vxnet)
	case mine == nbdb.AddressClaimKindIP && theirs == nbdb.AddressClaimKindVip:
		return fmt.Errorf("IP %s is a virtual IP of another port in vxnet %s", addr, vxnet)
	case mine == nbdb.AddressClaimKindIP:
		return fmt.Errorf("IP %s is already used by port %s in vxnet %s", addr, holder, vxnet)
	case theirs == nbdb.AddressClaimKindVip:
		return fmt.Errorf("%w: virtual IP %s in vxnet %s", errClaimRace, addr, vxnet)
	default:
		return fmt.Errorf("virtual IP %s is the fixed IP of port %s in vxnet %s", addr, holder, vxnet)
	}
}

// vipClaims reads, once per vxnet, the virtual IP claims the database
// holds in it: the rows a port adding one of them shares.
func (st *state) vipClaims(vx *nbdb.Vxnet) (map[string]string, error) {
	if m, ok := st.claims.dbVIPs[vx.UUID]; ok {
		return m, nil
	}
	m := map[string]string{}
	st.claims.dbVIPs[vx.UUID] = m
	if ovsdb.IsNamedUUID(vx.UUID) {
		return m, nil // created by this invocation
	}
	op := ovsdb.Operation{Op: ovsdb.OperationSelect, Table: nbdb.AddressClaimTable, Where: []ovsdb.Condition{
		{Column: "vxnet", Function: ovsdb.ConditionEqual, Value: ovsdb.UUID{GoUUID: vx.UUID}},
		{Column: "kind", Function: ovsdb.ConditionEqual, Value: nbdb.AddressClaimKindVip}}}
	rows, err := st.auxSelect(op, &nbdb.AddressClaim{})
	if err != nil {
		return nil, err
	}
	for _, r := range rows {
		c := r.(*nbdb.AddressClaim)
		m[c.Address] = c.UUID
	}
	return m, nil
}

// guardClaim makes the commit wait for a claim row read from the
// database to be still there (not collected when its last holder let
// go meanwhile): a reference to a deleted row would be refused.
func (st *state) guardClaim(u string) {
	if st.claims.guarded[u] {
		return
	}
	st.claims.guarded[u] = true
	timeout := 0
	st.ops = append(st.ops, ovsdb.Operation{Op: ovsdb.OperationWait, Table: nbdb.AddressClaimTable, Timeout: &timeout,
		Where: ops.WhereUUID(u), Columns: []string{"kind"}, Until: string(ovsdb.WaitConditionEqual),
		Rows: []ovsdb.Row{{"kind": nbdb.AddressClaimKindVip}}})
}

// auxSelect runs one select on the connection the rows were read on, or
// on one of its own when the invocation read whole tables.
func (st *state) auxSelect(op ovsdb.Operation, m model.Model) ([]model.Model, error) {
	conn := st.rpc
	if conn == nil {
		if st.aux == nil {
			c, err := jsonrpc.Dial(st.c.CurrentEndpoint(), st.tls)
			if err != nil {
				return nil, fmt.Errorf("%w: %v", ops.ErrNoConnection, err)
			}
			st.aux = c
		}
		conn = st.aux
	}
	dec, err := jsonrpc.NewRowDecoder(m)
	if err != nil {
		return nil, err
	}
	r := &reader{ctx: st.ctx, conn: conn}
	r.add(op, dec)
	return r.run()
}

// claimClash matches the claim index's refusal; existedRow the row that
// holds the address.
var (
	claimClash = regexp.MustCompile(`"Address_Claim" table to have identical values \(([0-9a-f-]+) and "(.*?)"\) for index on columns "vxnet" and "address"`)
	existedRow = regexp.MustCompile(`with UUID ([0-9a-f-]+), existed in the database`)
)

// claimError turns the claim index's refusal of a commit into the error
// a command gives for a taken address, naming the port that holds it
// (read after the refusal). Nothing was written.
func (st *state) claimError(ctx context.Context, err error) error {
	var te *ops.TxnError
	if !errors.As(err, &te) || te.Err != "constraint violation" {
		return err
	}
	m := claimClash.FindStringSubmatch(te.Details)
	if m == nil {
		return err
	}
	vxUUID, addr := m[1], m[2]
	vxName := vxUUID
	for _, vx := range st.vxnets {
		if vx.UUID == vxUUID {
			vxName = vx.Name
		}
	}
	mine := st.claims.inserted[claimKey{vxUUID, addr}]
	e := existedRow.FindStringSubmatch(te.Details)
	if mine == "" || e == nil {
		return fmt.Errorf("address %s is already claimed in vxnet %s", addr, vxName)
	}
	holder, theirs := st.claimHolder(ctx, e[1], addr)
	if holder == "" {
		return fmt.Errorf("address %s is already claimed in vxnet %s", addr, vxName)
	}
	return clashError(mine, theirs, addr, holder, vxName)
}

// claimHolder is the port that references claim row u, and the kind of
// address addr is to it.
func (st *state) claimHolder(ctx context.Context, u, addr string) (string, string) {
	op := selectWhere(tPort, "claims", ovsdb.ConditionIncludes, ovsdb.OvsSet{GoSet: []any{ovsdb.UUID{GoUUID: u}}})
	op.Columns = []string{"_uuid", "name", "mac", "ips", "virtual_ips"}
	st.ctx = ctx
	rows, err := st.auxSelect(op, &nbdb.Port{})
	if err != nil || len(rows) == 0 {
		return "", ""
	}
	p := rows[0].(*nbdb.Port)
	switch {
	case p.MAC == addr:
		return p.Name, nbdb.AddressClaimKindMAC
	case slices.Contains(p.VirtualIPs, addr) && !slices.Contains(p.IPs, addr):
		return p.Name, nbdb.AddressClaimKindVip
	}
	return p.Name, nbdb.AddressClaimKindIP
}
