package nbclient

import (
	"context"
	"fmt"

	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema/nbdb"
)

// CreateSecurityGroup creates a group in a VPC with its rules, in one
// transaction. A rule's remote is its RemoteCidr or, by UUID, its
// RemoteGroup (another group of the VPC); a rule with neither is refused
// by northd. The group allows nothing until rules say so, and holds no
// port until SetPortGroups puts ports in it.
func (c *Client) CreateSecurityGroup(ctx context.Context, vpc, name string, rules []*nbdb.SecurityGroupRule) error {
	g := &nbdb.SecurityGroup{UUID: "new_sg", Name: name}
	var txn []ovsdb.Operation
	for i, r := range rules {
		r.UUID = fmt.Sprintf("new_rule%d", i)
		ins, err := c.sess.Create(r)
		if err != nil {
			return err
		}
		txn = append(txn, ins...)
		g.Rules = append(g.Rules, r.UUID)
	}
	ins, err := c.sess.Create(g)
	if err != nil {
		return err
	}
	txn = append(txn, ins...)
	mut := ovsdb.Operation{Op: ovsdb.OperationMutate, Table: nbdb.VPCTable,
		Where:     []ovsdb.Condition{{Column: "name", Function: ovsdb.ConditionEqual, Value: vpc}},
		Mutations: []ovsdb.Mutation{{Column: "security_groups", Mutator: ovsdb.MutateOperationInsert, Value: ovsdb.OvsSet{GoSet: []any{ovsdb.UUID{GoUUID: g.UUID}}}}}}
	res, err := c.transact(ctx, nbdb.SecurityGroupTable, name, append(txn, mut))
	if err != nil {
		return err
	}
	if res[len(txn)].Count != 1 {
		return fmt.Errorf("no VPC named %q: security group %s was not created", vpc, name)
	}
	return nil
}

// SecurityGroup returns the UUID of a VPC's group, "" if it has none by
// that name.
func (c *Client) SecurityGroup(vpc, name string) string {
	v := named(c, vpc, vpcName)
	if v == nil {
		return ""
	}
	for _, u := range v.SecurityGroups {
		for _, g := range ops.Rows[nbdb.SecurityGroup](c.sess) {
			if g.UUID == u && g.Name == name {
				return u
			}
		}
	}
	return ""
}

// SetPortGroups puts a port in these groups (UUIDs, from SecurityGroup),
// and out of every other; none puts it back in its VPC's default group.
func (c *Client) SetPortGroups(ctx context.Context, port string, groups []string) error {
	p := named(c, port, portName)
	if p == nil {
		return fmt.Errorf("no port named %q", port)
	}
	cp := *p
	cp.SecurityGroups = groups
	upd, err := ops.ByUUID(c.sess, &cp).Update(&cp, &cp.SecurityGroups)
	if err != nil {
		return err
	}
	_, err = c.transact(ctx, nbdb.PortTable, port, upd)
	return err
}

// DeleteSecurityGroup deletes a VPC's group and its rules. Ports in it
// lose it (weak references), as rules naming it lose their remote, which
// northd then refuses: delete those first.
func (c *Client) DeleteSecurityGroup(ctx context.Context, vpc, name string) error {
	u := c.SecurityGroup(vpc, name)
	v := named(c, vpc, vpcName)
	if u == "" || v == nil {
		return fmt.Errorf("VPC %s has no security group %q", vpc, name)
	}
	mut, err := ops.ByUUID(c.sess, v).Mutate(v, model.Mutation{Field: &v.SecurityGroups, Mutator: ovsdb.MutateOperationDelete, Value: []string{u}})
	if err != nil {
		return err
	}
	_, err = c.transact(ctx, nbdb.SecurityGroupTable, name, mut)
	return err
}
