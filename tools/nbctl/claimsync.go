package nbctl

import (
	"cmp"
	"fmt"
	"maps"
	"slices"

	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema"
	"github.com/courier-sdn/courier/schema/nbdb"
	"github.com/courier-sdn/courier/tools/cmdline"
)

// claim-sync gives every port the address claims it lacks: ports of a
// database older than schema 1.7.0 (courier-ctl start runs it after
// converting one), or written by an orchestrator that does not claim.
// Where two ports hold one address, the port northd keeps (one it
// accepted, then the first by name) gets the claim and the other is
// listed; northd refuses it as before. It reads the whole database, once.

func claimSyncCommand() *command {
	return &command{Name: "claim-sync", Args: "",
		Summary: "give every port the address claims it lacks (after an upgrade, or writers that do not claim); lists the addresses another port holds",
		Max:     0, Tables: []string{tVPC, tVxnet, tPort}, Run: cmdClaimSync}
}

// wantedClaim is an address a port should hold a claim of.
type wantedClaim struct{ kind, addr string }

func wantedClaims(p *nbdb.Port) []wantedClaim {
	var out []wantedClaim
	if p.MAC != schema.Dynamic {
		out = append(out, wantedClaim{nbdb.AddressClaimKindMAC, p.MAC})
	}
	for _, ip := range p.IPs {
		if ip != schema.Dynamic {
			out = append(out, wantedClaim{nbdb.AddressClaimKindIP, ip})
		}
	}
	for _, ip := range p.VirtualIPs {
		out = append(out, wantedClaim{nbdb.AddressClaimKindVip, ip})
	}
	return out
}

func cmdClaimSync(st *state, _ *cmdline.Invocation, out *cmdline.Output) error {
	rows, err := st.auxSelect(ovsdb.Operation{Op: ovsdb.OperationSelect, Table: nbdb.AddressClaimTable,
		Where: []ovsdb.Condition{}}, &nbdb.AddressClaim{})
	if err != nil {
		return err
	}
	db := &dbClaims{byUUID: map[string]*nbdb.AddressClaim{}, byKey: map[claimKey]*nbdb.AddressClaim{}}
	for _, m := range rows {
		c := m.(*nbdb.AddressClaim)
		db.byUUID[c.UUID], db.byKey[claimKey{c.Vxnet, c.Address}] = c, c
	}
	var held [][]any
	for _, p := range byPrecedence(st.ports) {
		if vx := st.portVxnet[p.UUID]; vx != nil {
			h, err := st.syncPortClaims(db, vx, p)
			if err != nil {
				return fmt.Errorf("port %s: %w", p.Name, err)
			}
			held = append(held, h...)
		}
	}
	if len(held) > 0 {
		out.Table([]string{"PORT", "VXNET", "ADDRESS HELD BY ANOTHER PORT"}, held)
	}
	return nil
}

// dbClaims are the database's claims, and those claim-sync adds.
type dbClaims struct {
	byUUID map[string]*nbdb.AddressClaim
	byKey  map[claimKey]*nbdb.AddressClaim
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

// syncPortClaims gives p the claims it lacks and takes those of
// addresses it no longer has; it returns the addresses another port's
// claim holds.
func (st *state) syncPortClaims(db *dbClaims, vx *nbdb.Vxnet, p *nbdb.Port) ([][]any, error) {
	wanted := wantedClaims(p)
	has := map[string]bool{}
	var stale []string // claims of addresses the port no longer has
	for _, u := range p.Claims {
		c := db.byUUID[u]
		switch {
		case c == nil:
		case c.Vxnet != vx.UUID || !slices.ContainsFunc(wanted, func(w wantedClaim) bool { return w.addr == c.Address }):
			stale = append(stale, u)
		default:
			has[c.Address] = true
		}
	}
	if len(stale) > 0 {
		if err := st.add(ops.ByUUID(st.c, p).Mutate(p, model.Mutation{
			Field: &p.Claims, Mutator: ovsdb.MutateOperationDelete, Value: stale})); err != nil {
			return nil, err
		}
	}
	var add []string
	var held [][]any
	for _, w := range wanted {
		k := claimKey{vx.UUID, w.addr}
		c := db.byKey[k]
		switch {
		case has[w.addr]:
		case c == nil:
			c = &nbdb.AddressClaim{UUID: st.newName("claim"), Vxnet: vx.UUID, Address: w.addr, Kind: w.kind}
			db.byKey[k] = c
			st.ops = append(st.ops, ovsdb.Operation{Op: ovsdb.OperationInsert, Table: nbdb.AddressClaimTable, UUIDName: c.UUID,
				Row: ovsdb.Row{"vxnet": ovsdb.UUID{GoUUID: vx.UUID}, "address": w.addr, "kind": w.kind}})
			add = append(add, c.UUID)
		case c.Kind == nbdb.AddressClaimKindVip && w.kind == c.Kind:
			add = append(add, c.UUID)
		default:
			held = append(held, []any{p.Name, vx.Name, w.addr})
		}
	}
	if len(add) == 0 {
		return held, nil
	}
	p.Claims = append(p.Claims, add...)
	return held, st.add(ops.ByUUID(st.c, p).Mutate(p, model.Mutation{
		Field: &p.Claims, Mutator: ovsdb.MutateOperationInsert, Value: add}))
}
