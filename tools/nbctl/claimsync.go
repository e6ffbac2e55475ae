package nbctl

import (
	"cmp"
	"fmt"
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
	byUUID, byKey := map[string]*nbdb.AddressClaim{}, map[claimKey]*nbdb.AddressClaim{}
	for _, m := range rows {
		c := m.(*nbdb.AddressClaim)
		byUUID[c.UUID], byKey[claimKey{c.Vxnet, c.Address}] = c, c
	}
	var ports []*nbdb.Port
	for _, p := range st.ports {
		ports = append(ports, p)
	}
	// northd's precedence: a port it accepted before one it refused,
	// then by name.
	slices.SortFunc(ports, func(a, b *nbdb.Port) int {
		ra, rb := a.Status["state"] == "error", b.Status["state"] == "error"
		if ra != rb {
			if ra {
				return 1
			}
			return -1
		}
		return cmp.Compare(a.Name, b.Name)
	})
	var held [][]any
	for _, p := range ports {
		vx := st.portVxnet[p.UUID]
		if vx == nil {
			continue
		}
		wanted := wantedClaims(p)
		has := map[string]bool{}
		var stale []string // claims of addresses the port no longer has
		for _, u := range p.Claims {
			c := byUUID[u]
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
				return fmt.Errorf("port %s: %w", p.Name, err)
			}
		}
		var add []string
		for _, w := range wanted {
			k := claimKey{vx.UUID, w.addr}
			c := byKey[k]
			switch {
			case has[w.addr]:
			case c == nil:
				c = &nbdb.AddressClaim{UUID: st.newName("claim"), Vxnet: vx.UUID, Address: w.addr, Kind: w.kind}
				byKey[k] = c
				st.ops = append(st.ops, ovsdb.Operation{Op: ovsdb.OperationInsert, Table: nbdb.AddressClaimTable, UUIDName: c.UUID,
					Row: ovsdb.Row{"vxnet": ovsdb.UUID{GoUUID: vx.UUID}, "address": w.addr, "kind": w.kind}})
				add = append(add, c.UUID)
			case c.Kind == nbdb.AddressClaimKindVip && w.kind == c.Kind:
				add = append(add, c.UUID)
			default:
				held = append(held, []any{p.Name, vx.Name, w.addr})
			}
		}
		if len(add) > 0 {
			p.Claims = append(p.Claims, add...)
			if err := st.add(ops.ByUUID(st.c, p).Mutate(p, model.Mutation{
				Field: &p.Claims, Mutator: ovsdb.MutateOperationInsert, Value: add})); err != nil {
				return fmt.Errorf("port %s: %w", p.Name, err)
			}
		}
	}
	if len(held) > 0 {
		out.Table([]string{"PORT", "VXNET", "ADDRESS HELD BY ANOTHER PORT"}, held)
	}
	return nil
}
