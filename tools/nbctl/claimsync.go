package nbctl

import (
	"cmp"
	"fmt"
	"maps"
	"slices"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema"
	"github.com/courier-sdn/courier/schema/nbdb"
	"github.com/courier-sdn/courier/tools/cmdline"
)

// claim-sync gives every port the address keys and claims it lacks and
// drops those it no longer needs: ports of a database older than schema
// 1.8.0 (courier-ctl start runs it after converting one: their keys are
// empty, their MACs and IPs claim rows), or written by an orchestrator
// that does not maintain them. Where two ports hold one address, the
// port northd keeps (one it accepted, then the first by name) gets the
// key or claim and the other is listed (its key becomes a scope of its
// own); northd refuses it as before. It reads the whole database, once.

func claimSyncCommand() *command {
	return &command{Name: "claim-sync", Args: "",
		Summary: "give every port the address keys and claims it lacks (after an upgrade, or writers that do not claim); lists the addresses another port holds",
		Max:     0, Tables: []string{tVPC, tVxnet, tPort}, Run: cmdClaimSync}
}

func cmdClaimSync(st *state, _ *cmdline.Invocation, out *cmdline.Output) error {
	rows, err := st.auxSelect(ovsdb.Operation{Op: ovsdb.OperationSelect, Table: nbdb.AddressClaimTable,
		Where: []ovsdb.Condition{}}, &nbdb.AddressClaim{})
	if err != nil {
		return err
	}
	sy := &syncer{st: st, byUUID: map[string]*nbdb.AddressClaim{}, vips: map[claimKey]string{}, taken: map[claimKey]string{}}
	for _, m := range rows {
		c := m.(*nbdb.AddressClaim)
		sy.byUUID[c.UUID] = c
		if c.Kind == nbdb.AddressClaimKindVip {
			sy.vips[claimKey{c.Vxnet, c.Address}] = c.UUID
		}
	}
	for _, p := range byPrecedence(st.ports) {
		if vx := st.portVxnet[p.UUID]; vx != nil {
			if err := sy.port(vx, p); err != nil {
				return fmt.Errorf("port %s: %w", p.Name, err)
			}
		}
	}
	if len(sy.held) > 0 {
		out.Table([]string{"PORT", "VXNET", "ADDRESS HELD BY ANOTHER PORT"}, sy.held)
	}
	return nil
}

// syncer is claim-sync's view: the database's claim rows, and what the
// ports synced so far hold.
type syncer struct {
	st     *state
	byUUID map[string]*nbdb.AddressClaim
	vips   map[claimKey]string // a virtual IP's shared claim row
	taken  map[claimKey]string // address -> kind its holder holds it as
	held   [][]any
}

// byPrecedence orders ports as northd's precedence does: one it
// accepted before one it refused, then by name.
func byPrecedence(ports map[string]*nbdb.Port) []*nbdb.Port {
	out := slices.Collect(maps.Values(ports))
	slices.SortFunc(out, func(a, b *nbdb.Port) int {
		ra, rb := a.Status["state"] == "error", b.Status["state"] == "error"
		if ra != rb {
			if ra {
				return 1
			}
			return -1
		}
		return cmp.Compare(a.Name, b.Name)
	})
	return out
}

// take says whether p may hold addr in vx as kind, and records it; an
// address another port holds is listed.
func (sy *syncer) take(vx *nbdb.Vxnet, p *nbdb.Port, kind, addr string) bool {
	k := claimKey{vx.UUID, addr}
	if theirs, ok := sy.taken[k]; ok && !(kind == nbdb.AddressClaimKindVip && theirs == kind) {
		sy.held = append(sy.held, []any{p.Name, vx.Name, addr})
		return false
	}
	sy.taken[k] = kind
	return true
}

// port gives p the keys and claims it should hold, and writes what
// changed.
func (sy *syncer) port(vx *nbdb.Vxnet, p *nbdb.Port) error {
	want := *p
	schema.SetPortKeys(vx.UUID, &want)
	if p.MAC != schema.Dynamic && !sy.take(vx, p, nbdb.AddressClaimKindMAC, p.MAC) {
		want.MACKey = scopeOf(p.MACKey)
	}
	if ip, ok := schema.KeyedIP(p); ok && !sy.take(vx, p, nbdb.AddressClaimKindIP, ip) {
		want.IPKey = scopeOf(p.IPKey)
	}
	mine := map[claimKey]string{} // the port's claim rows by (vxnet, address) and kind
	for _, u := range p.Claims {
		if c := sy.byUUID[u]; c != nil {
			mine[claimKey{c.Vxnet, c.Address + " " + c.Kind}] = u
		}
	}
	want.Claims = nil
	ips, vips := schema.ClaimedAddresses(p)
	for i, addr := range append(ips, vips...) {
		kind := nbdb.AddressClaimKindIP
		if i >= len(ips) {
			kind = nbdb.AddressClaimKindVip
		}
		if !sy.take(vx, p, kind, addr) {
			continue
		}
		want.Claims = append(want.Claims, sy.claimRow(vx, kind, addr, mine))
	}
	var fields []any
	if want.MACKey != p.MACKey {
		fields = append(fields, &p.MACKey)
	}
	if want.IPKey != p.IPKey {
		fields = append(fields, &p.IPKey)
	}
	if !sameSet(want.Claims, p.Claims) {
		fields = append(fields, &p.Claims)
	}
	if len(fields) == 0 {
		return nil
	}
	p.MACKey, p.IPKey, p.Claims = want.MACKey, want.IPKey, want.Claims
	return sy.st.add(ops.ByUUID(sy.st.c, p).Update(p, fields...))
}

// claimRow is the claim row for addr in vx as kind: the port's own, the
// virtual IP's shared one, or a new one.
func (sy *syncer) claimRow(vx *nbdb.Vxnet, kind, addr string, mine map[claimKey]string) string {
	if u := mine[claimKey{vx.UUID, addr + " " + kind}]; u != "" {
		return u
	}
	k := claimKey{vx.UUID, addr}
	if u := sy.vips[k]; u != "" && kind == nbdb.AddressClaimKindVip {
		return u
	}
	u := sy.st.newName("claim")
	if kind == nbdb.AddressClaimKindVip {
		sy.vips[k] = u
	}
	sy.st.ops = append(sy.st.ops, ovsdb.Operation{Op: ovsdb.OperationInsert, Table: nbdb.AddressClaimTable, UUIDName: u,
		Row: ovsdb.Row{"vxnet": ovsdb.UUID{GoUUID: vx.UUID}, "address": addr, "kind": kind}})
	return u
}

// scopeOf is key if it is a scope, else a new scope.
func scopeOf(key string) string {
	if schema.IsScope(key) {
		return key
	}
	return schema.NewScope()
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
