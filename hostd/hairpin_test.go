package hostd

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/courier-sdn/courier/dataplane"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// A VPC session's EIPs follow its changes: a binding gaining, changing
// and losing its EIP, and one deleted, without reading the table again;
// the list's key changes with it, and only with it.
func TestVPCEIPsFollowChanges(t *testing.T) {
	vpc := 1
	pb := func(eip string) *sbdb.PortBinding {
		p := &sbdb.PortBinding{UUID: "u1", LogicalPort: "vm1", Vpc: vpc, IPs: []string{"10.0.1.5"}}
		if eip != "" {
			p.Eip, p.EipVpc = &eip, &vpc
		}
		return p
	}
	change := func(old, new *sbdb.PortBinding) ops.Changes {
		c := &ops.Change{UUID: "u1"}
		if old != nil {
			c.Old = old
		}
		if new != nil {
			c.New = new
		}
		return ops.Changes{Tables: map[string]map[string]*ops.Change{sbdb.PortBindingTable: {"u1": c}}}
	}
	vs := &vpcSession{vpc: vpc, eips: map[string]dataplane.VPCEIP{}}
	want := func(eip string) []dataplane.VPCEIP {
		if eip == "" {
			return []dataplane.VPCEIP{}
		}
		return []dataplane.VPCEIP{{VPC: 1, EIP: netip.MustParseAddr(eip), Addr: netip.MustParseAddr("10.0.1.5")}}
	}
	key := ""
	for i, step := range []struct {
		ch   ops.Changes
		want string
		same bool // the list did not change: its key stays
	}{
		{change(nil, pb("203.0.113.5")), "203.0.113.5", false},
		{change(pb("203.0.113.5"), pb("192.168.200.5")), "192.168.200.5", false},
		{change(pb("192.168.200.5"), pb("192.168.200.5")), "192.168.200.5", true},
		{change(pb("192.168.200.5"), pb("")), "", false},
		{change(pb(""), pb("")), "", true},
		{change(pb(""), pb("203.0.113.6")), "203.0.113.6", false},
		{change(pb("203.0.113.6"), nil), "", false},
	} {
		got, k := vs.vpcEIPs(step.ch)
		if !reflect.DeepEqual(got, want(step.want)) {
			t.Errorf("step %d: %+v, want %+v", i, got, want(step.want))
		}
		if (k == key) != step.same || k == "" {
			t.Errorf("step %d: key %q after %q; want it the same: %v", i, k, key, step.same)
		}
		key = k
	}
}
