package nbctl

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/ops/jsonrpc"
	"github.com/courier-sdn/courier/schema"
	"github.com/courier-sdn/courier/schema/nbdb"
)

// An address is unique within its vxnet (a MAC, a fixed IP; a virtual IP
// may be shared by ports, never with a fixed one). courier-nbctl does not
// read a vxnet's ports to check that: the server refuses a clash at
// commit, whole, as it refuses a taken name. Since schema 1.8.0 a port's
// MAC and, for a port with one fixed IP and no virtual IP (almost every
// port), its IP are keys of the Port row itself (mac_key, ip_key, each
// under a unique index; schema/portkeys.go), so such a port writes one
// row. The addresses of the rare other ports (several fixed IPs, virtual
// IPs) are rows of the Address_Claim table, owned by the port
// (Port.claims, strong references: the port's deletion deletes them) and
// unique by (vxnet, address). The two are checked against each other by
// waits in the same transaction: a keyed IP by the vxnet's claim rows
// being those read (a few rows, read once a vxnet, for a whole chain), a
// claimed address by no Port holding its key (a scan of the Port table,
// for the rare port that claims). A virtual IP shared by several ports
// is one claim row they all reference. After a refusal, one select finds
// the port that holds the address, for the same message a read of every
// port gave. Within one invocation, what earlier commands hold is
// checked in memory, so a chain that takes an address twice is refused
// by name before anything is sent.
//
// Writers that do not use courier-nbctl or nbclient must fill the keys
// (a port's own scope, a fresh UUID, if they want no check); northd's
// checks stay the authority for what the keys and claims do not cover.

type claimKey struct{ vxnet, addr string }

// heldClaim is an address this invocation's commands hold: by a claim
// row (uuid, named if inserted here) or by a Port key (uuid empty), its
// kind and the ports holding it (several only for a virtual IP).
type heldClaim struct {
	uuid, kind string
	ports      []string
}

// claimBook is what the invocation's commands hold, and the claims read
// from the database, by vxnet.
type claimBook struct {
	held     map[claimKey]*heldClaim
	byPort   map[string][]claimKey
	inserted map[claimKey]string                      // kind of each claim row inserted
	dbClaims map[string]map[string]*nbdb.AddressClaim // vxnet UUID -> address -> claim row
	guarded  map[string]bool                          // claim rows and vxnets the commit waits on
	fixed    map[string]string                        // named UUID -> the UUID given at insert (fixUUID)
	whole    []ovsdb.Row                              // the whole table's claims as read, if it was (prefetchClaims)
	guards   []ovsdb.Operation                        // those waits, sent first
	checks   []ovsdb.Operation                        // waits sent last (unkeyed)
}

// newClaimBook makes a book for about ports ports (two addresses each,
// sized up front: growing the maps cost a chain of thousands of
// port-adds more than filling them).
func newClaimBook(ports int) *claimBook {
	return &claimBook{held: make(map[claimKey]*heldClaim, 2*ports), byPort: make(map[string][]claimKey, ports),
		inserted: map[claimKey]string{}, dbClaims: map[string]map[string]*nbdb.AddressClaim{}, guarded: map[string]bool{}, fixed: map[string]string{}}
}

// fixUUID gives the row inserted as named its UUID now, rather than at
// commit: the keys of the ports added to a new vxnet in the same
// invocation name the vxnet by UUID, in a string the server does not
// rewrite.
func (st *state) fixUUID(named string) {
	for i := range st.ops {
		if op := &st.ops[i]; op.Op == ovsdb.OperationInsert && op.UUIDName == named {
			op.UUID = schema.NewScope()
			st.claims.fixed[named] = op.UUID
		}
	}
}

// keyUUID is the UUID vx's keys name: its own, or the one fixed for it.
func (st *state) keyUUID(vx *nbdb.Vxnet) string {
	if u := st.claims.fixed[vx.UUID]; u != "" {
		return u
	}
	return vx.UUID
}

// errClaimRace: two writers added the same new virtual IP at once; the
// loser reads again, finds the winner's row and shares it.
var errClaimRace = errors.New("a virtual IP was claimed meanwhile")

// claimPort gives port p (in vx) the keys of its MAC and IP and the
// claims of its other addresses, replacing what it held: the claim rows
// it referenced are garbage-collected by the server at commit unless
// referenced again.
func (st *state) claimPort(vx *nbdb.Vxnet, p *nbdb.Port) error {
	var own map[string]bool // the claim rows it held (a new port: none)
	for _, u := range p.Claims {
		if own == nil {
			own = map[string]bool{}
		}
		own[u] = true
	}
	st.releasePort(vx, p.Name)
	schema.SetPortKeys(st.keyUUID(vx), p)
	if p.MAC != schema.Dynamic {
		if _, err := st.hold(vx, p.Name, nbdb.AddressClaimKindMAC, p.MAC); err != nil {
			return err
		}
	}
	if ip, ok := schema.KeyedIP(p); ok {
		if err := st.keyIP(vx, p.Name, ip, own); err != nil {
			return err
		}
	}
	var uuids []string
	ips, vips := schema.ClaimedAddresses(p)
	for i, addr := range append(ips, vips...) {
		kind := nbdb.AddressClaimKindIP
		if i >= len(ips) {
			kind = nbdb.AddressClaimKindVip
		}
		u, err := st.claim(vx, p.Name, kind, addr)
		if err != nil {
			return err
		}
		if err := st.unkeyed(vx, kind, addr); err != nil {
			return err
		}
		uuids = append(uuids, u)
	}
	p.Claims = uuids
	return nil
}

// keyIP holds ip for port in vx by the port's ip_key: refused if an
// earlier command holds it, or a claim row of the vxnet other than the
// port's own (own) does; the commit waits for the vxnet's claims to be
// those read.
func (st *state) keyIP(vx *nbdb.Vxnet, port, ip string, own map[string]bool) error {
	if _, err := st.hold(vx, port, nbdb.AddressClaimKindIP, ip); err != nil {
		return err
	}
	claims, err := st.vxnetClaims(vx)
	if err != nil {
		return err
	}
	st.guardVxnet(vx, claims)
	if c := claims[ip]; c != nil && !own[c.UUID] {
		holder, theirs, err := st.lettingGo(c.UUID, ip)
		if err != nil || holder == "" {
			return err
		}
		return clashError(nbdb.AddressClaimKindIP, theirs, ip, holder, vx.Name)
	}
	return nil
}

// lettingGo reads the ports that hold claim row u (a Port scan, only
// when a keyed IP meets a claim). If this invocation's commands have
// made every one of them let go of it (a port-set or port-del earlier in
// the chain), the row is collected at commit, and the commit waits for
// its holders to be those; otherwise it returns a holder that keeps it.
func (st *state) lettingGo(u, addr string) (string, string, error) {
	op := selectWhere(tPort, "claims", ovsdb.ConditionIncludes, ovsdb.OvsSet{GoSet: []any{ovsdb.UUID{GoUUID: u}}})
	op.Columns = []string{"_uuid", "name", "mac", "ips", "virtual_ips"}
	rows, err := st.auxSelect(op, &nbdb.Port{})
	if err != nil {
		return "", "", err
	}
	var names []ovsdb.Row
	for _, m := range rows {
		p := m.(*nbdb.Port)
		if now := st.portByUUID[p.UUID]; now == nil || st.ports[p.Name] == now && slices.Contains(now.Claims, u) {
			return p.Name, holdsAs(p, addr), nil
		}
		names = append(names, ovsdb.Row{"name": p.Name})
	}
	timeout := 0
	st.claims.guards = append(st.claims.guards, ovsdb.Operation{Op: ovsdb.OperationWait, Table: tPort, Timeout: &timeout,
		Where: op.Where, Columns: []string{"name"}, Until: string(ovsdb.WaitConditionEqual), Rows: names})
	return "", "", nil
}

// unkeyed refuses a claim of addr in vx that a port's ip_key holds (one
// select: a scan of the Port table, for the rare port that claims), and
// makes the commit wait for no port to hold it when its changes are made.
func (st *state) unkeyed(vx *nbdb.Vxnet, kind, addr string) error {
	key := schema.AddressKey(st.keyUUID(vx), addr)
	if !ovsdb.IsNamedUUID(vx.UUID) {
		op := selectWhere(tPort, "ip_key", ovsdb.ConditionEqual, key)
		op.Columns = []string{"_uuid", "name"}
		rows, err := st.auxSelect(op, &nbdb.Port{})
		if err != nil {
			return err
		}
		for _, m := range rows {
			p := m.(*nbdb.Port)
			if mine := st.portByUUID[p.UUID]; mine == nil || st.ports[p.Name] == mine && mine.IPKey == key {
				return clashError(kind, nbdb.AddressClaimKindIP, addr, p.Name, vx.Name)
			}
		}
	}
	// After the commands' changes no port holds it: the key is unique, so
	// the rows with it differ from one row with it.
	timeout := 0
	st.claims.checks = append(st.claims.checks, ovsdb.Operation{Op: ovsdb.OperationWait, Table: tPort, Timeout: &timeout,
		Where:   []ovsdb.Condition{{Column: "ip_key", Function: ovsdb.ConditionEqual, Value: key}},
		Columns: []string{"ip_key"}, Until: string(ovsdb.WaitConditionNotEqual), Rows: []ovsdb.Row{{"ip_key": key}}})
	return nil
}

// hold records that port holds addr in vx (by a key, until claim sets
// the claim row), refusing what an earlier command holds; it returns the
// earlier holding when it is the virtual IP the port shares.
func (st *state) hold(vx *nbdb.Vxnet, port, kind, addr string) (*heldClaim, error) {
	b, k := st.claims, claimKey{vx.UUID, addr}
	if h := b.held[k]; h != nil && len(h.ports) > 0 {
		if kind == nbdb.AddressClaimKindVip && h.kind == kind {
			h.ports = append(h.ports, port)
			b.byPort[port] = append(b.byPort[port], k)
			return h, nil
		}
		return nil, clashError(kind, h.kind, addr, h.ports[len(h.ports)-1], vx.Name)
	}
	b.held[k] = &heldClaim{kind: kind, ports: []string{port}}
	b.byPort[port] = append(b.byPort[port], k)
	return nil, nil
}

// claim returns the claim row for port's addr in vx: a new row, or the
// virtual IP row other ports share. It refuses what an earlier command
// of the invocation holds.
func (st *state) claim(vx *nbdb.Vxnet, port, kind, addr string) (string, error) {
	shared, err := st.hold(vx, port, kind, addr)
	if err != nil || shared != nil {
		return shared.uuidOrEmpty(), err
	}
	h := st.claims.held[claimKey{vx.UUID, addr}]
	if kind == nbdb.AddressClaimKindVip {
		claims, err := st.vxnetClaims(vx)
		if err != nil {
			return "", err
		}
		if c := claims[addr]; c != nil && c.Kind == kind {
			h.uuid = c.UUID
		}
	}
	if h.uuid != "" {
		st.guardClaim(h.uuid)
		return h.uuid, nil
	}
	h.uuid = st.newName("claim")
	st.claims.inserted[claimKey{vx.UUID, addr}] = kind
	st.ops = append(st.ops, ovsdb.Operation{Op: ovsdb.OperationInsert, Table: nbdb.AddressClaimTable, UUIDName: h.uuid,
		Row: ovsdb.Row{"vxnet": ovsdb.UUID{GoUUID: vx.UUID}, "address": addr, "kind": kind}})
	return h.uuid, nil
}

func (h *heldClaim) uuidOrEmpty() string {
	if h == nil {
		return ""
	}
	return h.uuid
}

// wrap puts the claims' waits around ops: the guards of what was read
// first, the checks of the result last.
func (b *claimBook) wrap(ops []ovsdb.Operation) []ovsdb.Operation {
	if len(b.guards)+len(b.checks) == 0 {
		return ops
	}
	out := make([]ovsdb.Operation, 0, len(b.guards)+len(ops)+len(b.checks))
	return append(append(append(out, b.guards...), ops...), b.checks...)
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

// vxnetClaims reads, once per vxnet, the claim rows the database holds
// in it (the few of its ports that claim), by address.
func (st *state) vxnetClaims(vx *nbdb.Vxnet) (map[string]*nbdb.AddressClaim, error) {
	if m, ok := st.claims.dbClaims[vx.UUID]; ok {
		return m, nil
	}
	m := map[string]*nbdb.AddressClaim{}
	st.claims.dbClaims[vx.UUID] = m
	if ovsdb.IsNamedUUID(vx.UUID) {
		return m, nil // created by this invocation
	}
	rows, err := st.auxSelect(claimsOf(vx.UUID), &nbdb.AddressClaim{})
	if err != nil {
		return nil, err
	}
	for _, r := range rows {
		c := r.(*nbdb.AddressClaim)
		m[c.Address] = c
	}
	return m, nil
}

// claimsOf selects the claim rows of a vxnet.
func claimsOf(vxnet string) ovsdb.Operation {
	return selectWhere(nbdb.AddressClaimTable, "vxnet", ovsdb.ConditionEqual, ovsdb.UUID{GoUUID: vxnet})
}

// guardVxnet makes the commit wait, before anything else, for vx's claim
// rows to be those read: an address a key holds was checked against them.
func (st *state) guardVxnet(vx *nbdb.Vxnet, claims map[string]*nbdb.AddressClaim) {
	if st.claims.guarded[vx.UUID] || ovsdb.IsNamedUUID(vx.UUID) {
		return
	}
	st.claims.guarded[vx.UUID] = true
	if b := st.claims; b.whole != nil { // read whole: one wait for the table
		if !b.guarded[""] {
			b.guarded[""] = true
			timeout := 0
			b.guards = append(b.guards, ovsdb.Operation{Op: ovsdb.OperationWait, Table: nbdb.AddressClaimTable, Timeout: &timeout,
				Where: []ovsdb.Condition{}, Columns: []string{"vxnet", "address"}, Until: string(ovsdb.WaitConditionEqual), Rows: b.whole})
		}
		return
	}
	rows := make([]ovsdb.Row, 0, len(claims))
	for a := range claims {
		rows = append(rows, ovsdb.Row{"address": a})
	}
	timeout := 0
	op := claimsOf(vx.UUID)
	op.Op, op.Timeout, op.Columns, op.Until, op.Rows = ovsdb.OperationWait, &timeout, []string{"address"}, string(ovsdb.WaitConditionEqual), rows
	st.claims.guards = append(st.claims.guards, op)
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
	claimClash = lazyRegexp(`"Address_Claim" table to have identical values \(([0-9a-f-]+) and "(.*?)"\) for index on columns "vxnet" and "address"`)
	existedRow = lazyRegexp(`with UUID ([0-9a-f-]+), existed in the database`)
	keyClash   = lazyRegexp(`"Port" table to have identical values \("(.*?)"\) for index on column "(mac_key|ip_key)"`)
)

// keyError is the error for a commit refused by a Port key's index: the
// address of key is held by the port of row existed[1].
func (st *state) keyError(ctx context.Context, err error, key, column string, existed []string) error {
	vxUUID, addr, ok := strings.Cut(key, "/")
	if !ok || existed == nil {
		return err
	}
	op := selectWhere(tPort, "_uuid", ovsdb.ConditionEqual, ovsdb.UUID{GoUUID: existed[1]})
	op.Columns = []string{"_uuid", "name"}
	st.ctx = ctx
	rows, rerr := st.auxSelect(op, &nbdb.Port{})
	if rerr != nil || len(rows) == 0 {
		return err
	}
	kind := nbdb.AddressClaimKindIP
	if column == "mac_key" {
		kind = nbdb.AddressClaimKindMAC
	}
	return clashError(kind, kind, addr, rows[0].(*nbdb.Port).Name, st.vxnetName(vxUUID))
}

// vxnetName is the name of the vxnet read with UUID u, or u.
func (st *state) vxnetName(u string) string {
	for _, vx := range st.vxnets {
		if vx.UUID == u {
			return vx.Name
		}
	}
	return u
}

// claimError turns the claim index's refusal of a commit into the error
// a command gives for a taken address, naming the port that holds it
// (read after the refusal). Nothing was written.
func (st *state) claimError(ctx context.Context, err error) error {
	var te *ops.TxnError
	if !errors.As(err, &te) || te.Err != "constraint violation" {
		return err
	}
	e := existedRow().FindStringSubmatch(te.Details)
	if k := keyClash().FindStringSubmatch(te.Details); k != nil {
		return st.keyError(ctx, err, k[1], k[2], e)
	}
	m := claimClash().FindStringSubmatch(te.Details)
	if m == nil {
		return err
	}
	vxUUID, addr := m[1], m[2]
	vxName := st.vxnetName(vxUUID)
	mine := st.claims.inserted[claimKey{vxUUID, addr}]
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
	return p.Name, holdsAs(p, addr)
}

// holdsAs is the kind of address addr is to p.
func holdsAs(p *nbdb.Port, addr string) string {
	switch {
	case p.MAC == addr:
		return nbdb.AddressClaimKindMAC
	case slices.Contains(p.VirtualIPs, addr) && !slices.Contains(p.IPs, addr):
		return nbdb.AddressClaimKindVip
	}
	return nbdb.AddressClaimKindIP
}
