package nbclient

import (
	"context"
	"fmt"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema/nbdb"
)

// External networks and EIPs (#15). Binding and unbinding are one
// conditional update each: they apply only to an EIP in the state the
// call expects (unbound, or bound to the port named), so two
// orchestrators binding the same EIP cannot both win.

// CreateExternalNetwork creates an external network (Kind "public" or
// "physical", its Cidrs, an optional NextHop).
func (c *Client) CreateExternalNetwork(ctx context.Context, n *nbdb.ExternalNetwork) error {
	ins, err := c.sess.Create(n)
	if err != nil {
		return err
	}
	_, err = c.transact(ctx, nbdb.ExternalNetworkTable, n.Name, ins)
	return err
}

// CreateEIP adds address to an external network, bound to port unless
// port is "".
func (c *Client) CreateEIP(ctx context.Context, network, address, port string) error {
	e := &nbdb.EIP{UUID: "new_eip", Address: address}
	if port != "" {
		p := named(c, port, portName)
		if p == nil {
			return fmt.Errorf("no port named %q", port)
		}
		e.Port = &p.UUID
	}
	return c.createChild(ctx, e, e.UUID, nbdb.EIPTable, address, nbdb.ExternalNetworkTable, network, "eips", nil, nil)
}

// BindEIP binds an unbound EIP to a port.
func (c *Client) BindEIP(ctx context.Context, address, port string) error {
	p := named(c, port, portName)
	if p == nil {
		return fmt.Errorf("no port named %q", port)
	}
	return c.setEIPPort(ctx, address, ovsdb.OvsSet{GoSet: []any{}}, ovsdb.OvsSet{GoSet: []any{ovsdb.UUID{GoUUID: p.UUID}}},
		"is not an unbound EIP")
}

// UnbindEIP unbinds an EIP from port.
func (c *Client) UnbindEIP(ctx context.Context, address, port string) error {
	p := named(c, port, portName)
	if p == nil {
		return fmt.Errorf("no port named %q", port)
	}
	return c.setEIPPort(ctx, address, ovsdb.OvsSet{GoSet: []any{ovsdb.UUID{GoUUID: p.UUID}}}, ovsdb.OvsSet{GoSet: []any{}},
		"is not an EIP bound to port "+port)
}

func (c *Client) setEIPPort(ctx context.Context, address string, was, now ovsdb.OvsSet, refusal string) error {
	upd := ovsdb.Operation{Op: ovsdb.OperationUpdate, Table: nbdb.EIPTable,
		Where: []ovsdb.Condition{{Column: "address", Function: ovsdb.ConditionEqual, Value: address},
			{Column: "port", Function: ovsdb.ConditionEqual, Value: was}},
		Row: ovsdb.Row{"port": now}}
	res, err := c.transact(ctx, nbdb.EIPTable, address, []ovsdb.Operation{upd})
	if err != nil {
		return err
	}
	if res[0].Count != 1 {
		return fmt.Errorf("%s %s", address, refusal)
	}
	return nil
}

// DeleteEIP deletes an EIP.
func (c *Client) DeleteEIP(ctx context.Context, address string) error {
	for _, n := range ops.Rows[nbdb.ExternalNetwork](c.sess) {
		for _, u := range n.Eips {
			for _, e := range ops.Rows[nbdb.EIP](c.sess) {
				if e.UUID == u && e.Address == address {
					mut := ovsdb.Operation{Op: ovsdb.OperationMutate, Table: nbdb.ExternalNetworkTable,
						Where:     []ovsdb.Condition{{Column: "_uuid", Function: ovsdb.ConditionEqual, Value: ovsdb.UUID{GoUUID: n.UUID}}},
						Mutations: []ovsdb.Mutation{{Column: "eips", Mutator: ovsdb.MutateOperationDelete, Value: ovsdb.OvsSet{GoSet: []any{ovsdb.UUID{GoUUID: u}}}}}}
					_, err := c.transact(ctx, nbdb.EIPTable, address, []ovsdb.Operation{mut})
					return err
				}
			}
		}
	}
	return fmt.Errorf("no EIP %s", address)
}

// EIP returns an EIP as the northbound holds it now (nil: no such EIP).
func (c *Client) EIP(address string) *nbdb.EIP {
	for _, e := range ops.Rows[nbdb.EIP](c.sess) {
		if e.Address == address {
			return e
		}
	}
	return nil
}
