package nbclient

import (
	"context"
	"fmt"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema"
	"github.com/courier-sdn/courier/schema/nbdb"
)

// claimsFor returns the operations that give p its address keys and
// claims in vxnet (schema/portkeys.go) and sets p's keys and p.Claims:
// the keys of its MAC and, if it has one fixed IP and no virtual IP, its
// IP; a claim row for each other fixed IP and virtual IP (or the row
// other ports share for it), each with a wait that no port's key holds
// it when the transaction is done; a keyed IP waits for no claim row to
// hold it. It reads the vxnet's UUID and, if p has virtual IPs, the
// vxnet's virtual-IP claims. A vxnet that does not exist gets no keys
// (the call then fails on the parent).
func (c *Client) claimsFor(ctx context.Context, vxnet string, p *nbdb.Port) (pre, post []ovsdb.Operation, err error) {
	rows, err := c.selectRows(ctx, ovsdb.Operation{Op: ovsdb.OperationSelect, Table: nbdb.VxnetTable,
		Where: []ovsdb.Condition{{Column: "name", Function: ovsdb.ConditionEqual, Value: vxnet}}, Columns: []string{"_uuid"}})
	if err != nil || len(rows) != 1 {
		return nil, nil, err
	}
	vx := uuidOf(rows[0]["_uuid"])
	schema.SetPortKeys(vx, p)
	timeout := 0
	// No row holds col == v: the rows with it (one at most, by a unique
	// index) differ from one row with it. (libovsdb would drop the empty
	// rows of a wait for none.)
	none := func(table, col, v string, where ...ovsdb.Condition) ovsdb.Operation {
		where = append(where, ovsdb.Condition{Column: col, Function: ovsdb.ConditionEqual, Value: v})
		return ovsdb.Operation{Op: ovsdb.OperationWait, Table: table, Timeout: &timeout, Where: where,
			Columns: []string{col}, Until: string(ovsdb.WaitConditionNotEqual), Rows: []ovsdb.Row{{col: v}}}
	}
	if ip, ok := schema.KeyedIP(p); ok {
		post = append(post, none(nbdb.AddressClaimTable, "address", ip,
			ovsdb.Condition{Column: "vxnet", Function: ovsdb.ConditionEqual, Value: ovsdb.UUID{GoUUID: vx}}))
	}
	shared := map[string]string{}
	if len(p.VirtualIPs) > 0 {
		vips, err := c.selectRows(ctx, ovsdb.Operation{Op: ovsdb.OperationSelect, Table: nbdb.AddressClaimTable,
			Where: []ovsdb.Condition{{Column: "vxnet", Function: ovsdb.ConditionEqual, Value: ovsdb.UUID{GoUUID: vx}},
				{Column: "kind", Function: ovsdb.ConditionEqual, Value: nbdb.AddressClaimKindVip}}})
		if err != nil {
			return nil, nil, err
		}
		for _, r := range vips {
			shared[r["address"].(string)] = uuidOf(r["_uuid"])
		}
	}
	claim := func(kind, addr string) {
		post = append(post, none(nbdb.PortTable, "ip_key", schema.AddressKey(vx, addr)))
		if u := shared[addr]; u != "" && kind == nbdb.AddressClaimKindVip {
			p.Claims = append(p.Claims, u)
			return
		}
		name := fmt.Sprintf("new_claim%d", len(pre))
		pre = append(pre, ovsdb.Operation{Op: ovsdb.OperationInsert, Table: nbdb.AddressClaimTable, UUIDName: name,
			Row: ovsdb.Row{"vxnet": ovsdb.UUID{GoUUID: vx}, "address": addr, "kind": kind}})
		p.Claims = append(p.Claims, name)
	}
	p.Claims = nil
	ips, vips := schema.ClaimedAddresses(p)
	for _, ip := range ips {
		claim(nbdb.AddressClaimKindIP, ip)
	}
	for _, ip := range vips {
		claim(nbdb.AddressClaimKindVip, ip)
	}
	return pre, post, nil
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
