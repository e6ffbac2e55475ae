package nbclient

import (
	"context"
	"fmt"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema"
	"github.com/courier-sdn/courier/schema/nbdb"
)

// claimsFor returns the inserts of p's address claims in vxnet and sets
// p.Claims to them: one per MAC and fixed IP (not dynamic ones), one per
// virtual IP, or the claim other ports share for it. It reads the
// vxnet's UUID and, if p has virtual IPs, the vxnet's virtual-IP claims.
// A vxnet that does not exist gets no claims (the call then fails on
// the parent).
func (c *Client) claimsFor(ctx context.Context, vxnet string, p *nbdb.Port) ([]ovsdb.Operation, error) {
	rows, err := c.selectRows(ctx, ovsdb.Operation{Op: ovsdb.OperationSelect, Table: nbdb.VxnetTable,
		Where: []ovsdb.Condition{{Column: "name", Function: ovsdb.ConditionEqual, Value: vxnet}}, Columns: []string{"_uuid"}})
	if err != nil || len(rows) != 1 {
		return nil, err
	}
	vx := uuidOf(rows[0]["_uuid"])
	shared := map[string]string{}
	if len(p.VirtualIPs) > 0 {
		vips, err := c.selectRows(ctx, ovsdb.Operation{Op: ovsdb.OperationSelect, Table: nbdb.AddressClaimTable,
			Where: []ovsdb.Condition{{Column: "vxnet", Function: ovsdb.ConditionEqual, Value: ovsdb.UUID{GoUUID: vx}},
				{Column: "kind", Function: ovsdb.ConditionEqual, Value: nbdb.AddressClaimKindVip}}})
		if err != nil {
			return nil, err
		}
		for _, r := range vips {
			shared[r["address"].(string)] = uuidOf(r["_uuid"])
		}
	}
	var out []ovsdb.Operation
	claim := func(kind, addr string) {
		if u := shared[addr]; u != "" && kind == nbdb.AddressClaimKindVip {
			p.Claims = append(p.Claims, u)
			return
		}
		name := fmt.Sprintf("new_claim%d", len(out))
		out = append(out, ovsdb.Operation{Op: ovsdb.OperationInsert, Table: nbdb.AddressClaimTable, UUIDName: name,
			Row: ovsdb.Row{"vxnet": ovsdb.UUID{GoUUID: vx}, "address": addr, "kind": kind}})
		p.Claims = append(p.Claims, name)
	}
	p.Claims = nil
	if p.MAC != schema.Dynamic {
		claim(nbdb.AddressClaimKindMAC, p.MAC)
	}
	for _, ip := range p.IPs {
		if ip != schema.Dynamic {
			claim(nbdb.AddressClaimKindIP, ip)
		}
	}
	for _, ip := range p.VirtualIPs {
		claim(nbdb.AddressClaimKindVip, ip)
	}
	return out, nil
}

func (c *Client) selectRows(ctx context.Context, op ovsdb.Operation) ([]ovsdb.Row, error) {
	res, err := ops.Transact(ctx, c.sess, op)
	if err != nil {
		return nil, err
	}
	return res[0].Rows, nil
}

func uuidOf(v any) string {
	switch u := v.(type) {
	case ovsdb.UUID:
		return u.GoUUID
	case string:
		return u
	}
	return ""
}
