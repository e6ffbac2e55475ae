package nbctl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/ops/jsonrpc"
	"github.com/courier-sdn/courier/schema"
	"github.com/courier-sdn/courier/schema/nbdb"
)

// Compact ports. In the bulk path (bulk.go) a port-add whose port needs
// no claim row (one fixed IP or none, no virtual IP: almost every port)
// does not build the operations that insert it and add it to its vxnet:
// its row is written straight to JSON at commit, and its vxnet's
// mutation takes it with the others of the chain. Building an
// ovsdb.Operation and its Row map for every port, merging a mutation per
// port, encoding them through the generic encoder and decoding a result
// per operation were most of the client's CPU for a chain of thousands.
// The rows are the columns ops.Table.Insert writes for such a port (a
// test holds the two paths to the same rows), and the commit's results
// are decoded only when one is an error.

// compactPorts are the compact ports of a chain, in order, and the
// vxnets they join.
type compactPorts struct {
	ports []*nbdb.Port
	byVx  map[string][]any // vxnet UUID -> its ports' named UUIDs
	order []string         // the vxnets, by first port
}

func newCompactPorts(n int) *compactPorts {
	return &compactPorts{ports: make([]*nbdb.Port, 0, n), byVx: map[string][]any{}}
}

// compactable: p, new, holds only the columns appendPortRow writes.
func compactable(p *nbdb.Port) bool {
	return len(p.Claims) == 0 && len(p.VirtualIPs) == 0 && len(p.IPs) <= 1 && p.Chassis == nil &&
		p.DynamicAddresses == nil && p.ExternalIDs == nil && p.MigrationDestination == nil && p.Options == nil &&
		p.SecurityGroups == nil && p.Status == nil && p.Up == nil
}

func (c *compactPorts) add(vx *nbdb.Vxnet, p *nbdb.Port) {
	if _, ok := c.byVx[vx.UUID]; !ok {
		c.order = append(c.order, vx.UUID)
	}
	c.ports = append(c.ports, p)
	c.byVx[vx.UUID] = append(c.byVx[vx.UUID], ovsdb.UUID{GoUUID: p.UUID})
}

func (c *compactPorts) count() int {
	if c == nil {
		return 0
	}
	return len(c.ports)
}

// mutations add the compact ports to their vxnets, one a vxnet (merged
// with the other commands' by mergeInserts).
func (c *compactPorts) mutations() []ovsdb.Operation {
	if c == nil {
		return nil
	}
	out := make([]ovsdb.Operation, 0, len(c.order))
	for _, u := range c.order {
		out = append(out, ovsdb.Operation{Op: ovsdb.OperationMutate, Table: tVxnet, Where: ops.WhereUUID(u),
			Mutations: []ovsdb.Mutation{{Column: "ports", Mutator: ovsdb.MutateOperationInsert, Value: ovsdb.OvsSet{GoSet: c.byVx[u]}}}})
	}
	return out
}

// commitCompact commits st.ops with the compact ports' inserts after the
// first guards operations (the claims' waits), on st.rpc. cfgIndex is
// the index in st.ops of the select of nb_cfg, or -1.
func (st *state) commitCompact(ctx context.Context, guards, cfgIndex int) (int, error) {
	b := make([]byte, 0, 64+256*len(st.compact.ports)+128*len(st.ops))
	b = appendJSONString(append(b, '['), schema.NBName)
	var err error
	for i := range st.ops {
		if i == guards {
			b = st.compact.appendInserts(b)
		}
		if b, err = jsonrpc.AppendOperation(append(b, ','), &st.ops[i]); err != nil {
			return 0, err
		}
	}
	if guards >= len(st.ops) {
		b = st.compact.appendInserts(b)
	}
	b = append(b, ']')
	var raw json.RawMessage
	if err := st.rpc.CallRaw(ctx, "transact", b, &raw); err != nil {
		if ops.ConnectionLost(err) {
			err = fmt.Errorf("%w: %v", ops.ErrNoConnection, err)
		}
		return 0, err
	}
	if bytes.Contains(raw, []byte(`"error"`)) { // rare: decoded whole
		return 0, st.claimError(ctx, existsError(st.compactRefusal(raw, guards)))
	}
	if cfgIndex < 0 {
		return 0, nil
	}
	// The select of nb_cfg is the last operation: {"rows":[{"nb_cfg":N}]}.
	i := bytes.LastIndex(raw, []byte(`"nb_cfg":`))
	if i < 0 {
		return 0, errors.New("could not read back nb_cfg")
	}
	num := raw[i+len(`"nb_cfg":`):]
	end := bytes.IndexAny(num, "}, ")
	if end < 0 {
		return 0, errors.New("could not read back nb_cfg")
	}
	n, err := strconv.Atoi(string(num[:end]))
	if err != nil {
		return 0, fmt.Errorf("unexpected nb_cfg value %s", num[:end])
	}
	return n, nil
}

// compactRefusal is the TxnError of a refused commit, as ops.Transact
// makes it, the compact inserts counted where they were sent.
func (st *state) compactRefusal(raw []byte, guards int) error {
	var res []ovsdb.OperationResult
	if err := json.Unmarshal(raw, &res); err != nil {
		return fmt.Errorf("decoding the commit's results: %w", err)
	}
	sent := make([]ovsdb.Operation, 0, len(st.ops)+len(st.compact.ports))
	sent = append(sent, st.ops[:min(guards, len(st.ops))]...)
	for range st.compact.ports {
		sent = append(sent, ovsdb.Operation{Op: ovsdb.OperationInsert, Table: tPort})
	}
	sent = append(sent, st.ops[min(guards, len(st.ops)):]...)
	if err := ops.CheckResults(res, sent); err != nil {
		return err
	}
	return errors.New("the commit was refused without an error result")
}

// appendInserts appends, each after a comma, the compact ports' inserts.
func (c *compactPorts) appendInserts(b []byte) []byte {
	for _, p := range c.ports {
		b = append(b, `,{"op":"insert","table":"Port","uuid-name":`...)
		b = appendJSONString(b, p.UUID)
		b = append(b, `,"row":`...)
		b = appendPortRow(b, p)
		b = append(b, '}')
	}
	return b
}

// appendPortRow writes the columns of a compact port that differ from
// their defaults, as ops.Table.Insert does.
func appendPortRow(b []byte, p *nbdb.Port) []byte {
	b = appendJSONString(append(b, `{"name":`...), p.Name)
	b = appendJSONString(append(b, `,"mac":`...), p.MAC)
	b = appendJSONString(append(b, `,"mac_key":`...), p.MACKey)
	b = appendJSONString(append(b, `,"ip_key":`...), p.IPKey)
	if len(p.IPs) == 1 {
		b = appendJSONString(append(b, `,"ips":`...), p.IPs[0])
	}
	if p.RequestedChassis != nil {
		b = appendJSONString(append(b, `,"requested_chassis":`...), *p.RequestedChassis)
	}
	if p.PortSecurity != nil {
		b = strconv.AppendBool(append(b, `,"port_security":`...), *p.PortSecurity)
	}
	if p.LearnedLimit != nil {
		b = strconv.AppendInt(append(b, `,"learned_limit":`...), int64(*p.LearnedLimit), 10)
	}
	return append(b, '}')
}

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, `\u00`...)
			b = append(b, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&15])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
