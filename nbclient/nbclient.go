// Package nbclient is the Go client for orchestrators that declare
// networks in Courier's northbound: typed verbs over the generated
// models (schema/nbdb), each one transaction, and errors that name the
// row the database or northd refused.
//
// The northbound is the public API (DESIGN.md §2): an orchestrator writes
// rows and reads back what Courier made of them. The database refuses
// what breaks the schema (a duplicate name, a value out of range) at
// once: the verb returns a *RefusedError. northd refuses what only it can
// judge (an address outside its vxnet, overlapping CIDRs) after the
// commit, in the row's status: WaitPort returns it as a *RefusedError
// too. A port may ask for a dynamic MAC or IP: northd writes what it
// allocated into dynamic_addresses, WaitPort(Accepted) waits for it and
// Addresses reads it. Where a port runs, and whether it is up, southd writes into the
// port's row (up, chassis), which Port and WaitPort read.
//
// Verbs do not repeat courier-nbctl's checks before writing; an
// orchestrator that wants them can run courier-nbctl instead.
package nbclient

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema"
	"github.com/courier-sdn/courier/schema/nbdb"
)

// Client is a connection to the northbound, with a cache of the VPCs,
// vxnets, ports and routes that reads and waits use.
type Client struct {
	sess    *ops.Session
	tracker *ops.Tracker
	notify  chan struct{}
}

// Options say how to reach the northbound.
type Options struct {
	// TLS is the client configuration for ssl: remotes (nil: none).
	TLS *tls.Config
}

// Dial connects to the northbound at remotes ("unix:PATH", "tcp:IP:PORT",
// "ssl:IP:PORT"; comma-separated for a cluster, whose leader it finds).
func Dial(ctx context.Context, remotes string, o Options) (*Client, error) {
	rs, err := ops.ParseRemotes(remotes)
	if err != nil {
		return nil, err
	}
	m, err := nbdb.FullDatabaseModel()
	if err != nil {
		return nil, err
	}
	notify := make(chan struct{}, 1)
	tracker := ops.NewTrackerNotifying(notify)
	sess, err := ops.Open(ctx, m, ops.SessionOptions{Remotes: rs, LeaderOnly: true, TLS: o.TLS, EchoInterval: 5 * time.Second,
		Tracker: tracker, Monitor: []client.MonitorOption{
			client.WithTable(&nbdb.NBGlobal{}), client.WithTable(&nbdb.VPC{}), client.WithTable(&nbdb.Vxnet{}),
			client.WithTable(&nbdb.Port{}), client.WithTable(&nbdb.Route{}),
			client.WithTable(&nbdb.SecurityGroup{}), client.WithTable(&nbdb.SecurityGroupRule{}),
			client.WithTable(&nbdb.ExternalNetwork{}), client.WithTable(&nbdb.EIP{})}})
	if err != nil {
		return nil, err
	}
	return &Client{sess: sess, tracker: tracker, notify: notify}, nil
}

// Close ends the connection.
func (c *Client) Close() { c.sess.Close() }

// RefusedError is a row the database or northd refused. Nothing of the
// call that wrote it was applied when the database refused it; a row
// northd refused stays in the northbound, with its status saying why,
// until it is fixed or deleted.
type RefusedError struct {
	Table, Name string
	By          string // "database" or "northd"
	Reason      string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("%s %s refused by %s: %s", e.Table, e.Name, e.By, e.Reason)
}

// transact commits one call's operations; a refusal names the row.
func (c *Client) transact(ctx context.Context, table, name string, txn []ovsdb.Operation) ([]ovsdb.OperationResult, error) {
	res, err := ops.Transact(ctx, c.sess, txn...)
	var te *ops.TxnError
	if errors.As(err, &te) {
		reason := te.Err
		if te.Details != "" {
			reason += ": " + te.Details
		}
		return nil, &RefusedError{Table: table, Name: name, By: "database", Reason: reason}
	}
	return res, err
}

// named finds a cached row by its name.
func named[T any, PT ops.Row[T]](c *Client, name string, nameOf func(PT) string) PT {
	for _, r := range ops.Rows[T, PT](c.sess) {
		if nameOf(r) == name {
			return r
		}
	}
	return nil
}

func vpcName(v *nbdb.VPC) string   { return v.Name }
func portName(p *nbdb.Port) string { return p.Name }

// CreateVPC creates a VPC.
func (c *Client) CreateVPC(ctx context.Context, vpc *nbdb.VPC) error {
	ins, err := c.sess.Create(vpc)
	if err != nil {
		return err
	}
	_, err = c.transact(ctx, nbdb.VPCTable, vpc.Name, ins)
	return err
}

// CreateVxnet creates a vxnet in a VPC, in one transaction: the row and
// its reference from the VPC.
func (c *Client) CreateVxnet(ctx context.Context, vpc string, vx *nbdb.Vxnet) error {
	vx.UUID = "new_vxnet"
	return c.createChild(ctx, vx, vx.UUID, nbdb.VxnetTable, vx.Name, nbdb.VPCTable, vpc, "vxnets", nil, nil)
}

// CreatePort creates a port in a vxnet, in one transaction, with the
// keys of its MAC and IP (and claims of other addresses, claims.go): a
// MAC or IP another port of the vxnet holds makes the database refuse
// the call whole.
func (c *Client) CreatePort(ctx context.Context, vxnet string, p *nbdb.Port) error {
	p.UUID = "new_port"
	claims, waits, err := c.claimsFor(ctx, vxnet, p)
	if err != nil {
		return err
	}
	return c.createChild(ctx, p, p.UUID, nbdb.PortTable, p.Name, nbdb.VxnetTable, vxnet, "ports", claims, waits)
}

// createChild inserts a row (with the rows in extra, which it refers
// to) and adds it to the set column of its parent, found by name in the
// same transaction (not in the cache, which may lag behind this client's
// own writes). A missing parent matches nothing: the new row, referenced
// by nobody, is then dropped by the database in the same commit, and the
// call says so.
func (c *Client) createChild(ctx context.Context, child model.Model, childUUID, table, name, parentTable, parent, column string, extra, after []ovsdb.Operation) error {
	ins, err := c.sess.Create(child)
	if err != nil {
		return err
	}
	ins = append(extra, ins...)
	mut := ovsdb.Operation{Op: ovsdb.OperationMutate, Table: parentTable,
		Where:     []ovsdb.Condition{{Column: "name", Function: ovsdb.ConditionEqual, Value: parent}},
		Mutations: []ovsdb.Mutation{{Column: column, Mutator: ovsdb.MutateOperationInsert, Value: ovsdb.OvsSet{GoSet: []any{ovsdb.UUID{GoUUID: childUUID}}}}}}
	res, err := c.transact(ctx, table, name, append(append(ins, mut), after...))
	if err != nil {
		return err
	}
	if res[len(ins)].Count != 1 {
		return fmt.Errorf("no %s named %q: %s %s was not created", parentTable, parent, table, name)
	}
	return nil
}

// DeleteVPC deletes a VPC with its vxnets, ports and routes.
func (c *Client) DeleteVPC(ctx context.Context, name string) error {
	v := named(c, name, vpcName)
	if v == nil {
		return fmt.Errorf("no VPC named %q", name)
	}
	del, err := ops.ByUUID(c.sess, v).Delete()
	if err != nil {
		return err
	}
	_, err = c.transact(ctx, nbdb.VPCTable, name, del)
	return err
}

// DeletePort deletes a port (it is dropped with its vxnet's reference).
func (c *Client) DeletePort(ctx context.Context, name string) error {
	p := named(c, name, portName)
	if p == nil {
		return fmt.Errorf("no port named %q", name)
	}
	for _, vx := range ops.Rows[nbdb.Vxnet](c.sess) {
		for _, u := range vx.Ports {
			if u == p.UUID {
				mut, err := ops.ByUUID(c.sess, vx).Mutate(vx, model.Mutation{Field: &vx.Ports, Mutator: ovsdb.MutateOperationDelete, Value: []string{u}})
				if err != nil {
					return err
				}
				_, err = c.transact(ctx, nbdb.PortTable, name, mut)
				return err
			}
		}
	}
	return fmt.Errorf("port %s belongs to no vxnet", name)
}

// Port returns a port as the northbound holds it now (nil: no such
// port), with its status and runtime state (Up, Chassis).
func (c *Client) Port(name string) *nbdb.Port {
	if p := named(c, name, portName); p != nil {
		cp := *p
		return &cp
	}
	return nil
}

// PortState is what WaitPort waits for.
type PortState int

const (
	// Accepted: northd compiled the port (it has a binding), whether or
	// not a chassis runs it yet.
	Accepted PortState = iota
	// Up: a chassis has programmed it.
	Up
)

// WaitPort waits until the port reaches state, and returns it; a port
// northd refused is a *RefusedError with northd's reason.
func (c *Client) WaitPort(ctx context.Context, name string, state PortState) (*nbdb.Port, error) {
	for {
		if p := c.Port(name); p != nil {
			if p.Status["state"] == "error" {
				return p, &RefusedError{Table: nbdb.PortTable, Name: name, By: "northd", Reason: p.Status["error"]}
			}
			// A dynamic port is accepted once northd wrote its addresses.
			_, _, allocated := schema.PortAddresses(p)
			if p.Up != nil && (state == Accepted || *p.Up) && allocated {
				return p, nil
			}
		}
		select {
		case <-ctx.Done():
			return c.Port(name), fmt.Errorf("port %s: %w", name, ctx.Err())
		case <-c.sess.Done():
			return nil, fmt.Errorf("port %s: %w", name, ops.ErrNoConnection)
		case <-c.notify:
			c.tracker.Drain()
		case <-time.After(time.Second):
		}
	}
}

// Addresses are a port's MAC and IPs as the network uses them: where the
// port asked for "dynamic", what northd allocated (dynamic_addresses), or
// still "dynamic" until northd has written it.
func Addresses(p *nbdb.Port) (mac string, ips []string) {
	mac, ips, _ = schema.PortAddresses(p)
	return mac, ips
}
