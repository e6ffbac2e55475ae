package hostd

import (
	"fmt"
	"net/netip"
	"sort"
	"sync/atomic"

	"github.com/courier-sdn/courier/dataplane"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// Hairpin (#15): a VM reaching another VM's EIP of its VPC is translated
// on its own host (dataplane/bpf/hairpin.h), which therefore holds every
// EIP of each VPC it takes part in, not only its ports'. Each VPC session
// monitors the bindings whose eip_vpc is the VPC (northd sets it on a
// binding with an EIP; a hub's session, which monitors all of the VPC's
// bindings, reads the same columns): one row per EIP of the VPC on each
// of its hosts, an EIP's change sent to each of them. The rows are kept
// up to date from the session's changes, so a hub's thousands of
// bindings are read whole only at the start or after a lost update.

// eipOf is a binding's VPC EIP, or false.
func eipOf(pb *sbdb.PortBinding) (dataplane.VPCEIP, bool) {
	if pb == nil || pb.Eip == nil || pb.EipVpc == nil || len(pb.IPs) == 0 {
		return dataplane.VPCEIP{}, false
	}
	eip, err1 := netip.ParseAddr(*pb.Eip)
	addr, err2 := netip.ParseAddr(pb.IPs[0])
	if err1 != nil || err2 != nil || !eip.Is4() || !addr.Is4() {
		return dataplane.VPCEIP{}, false
	}
	return dataplane.VPCEIP{VPC: uint32(*pb.EipVpc), EIP: eip, Addr: addr}, true
}

// vpcEIPs brings the session's EIPs up to date with ch, its changes since
// the last call, and returns them in order with a key that changes when
// they do (dataplane.State.VPCEIPsKey): a VPC's EIPs can be as many as
// its VMs, and a change to none of them costs no sort, compile or compare.
func (vs *vpcSession) vpcEIPs(ch ops.Changes) ([]dataplane.VPCEIP, string) {
	changed := vs.eips == nil || ch.Overflow
	if changed {
		vs.eips = allEIPs(ops.Rows[sbdb.PortBinding](vs.s))
	} else {
		for u, c := range ch.Table(sbdb.PortBindingTable) {
			old, had := vs.eips[u]
			pb, _ := c.New.(*sbdb.PortBinding) // nil: deleted
			e, ok := eipOf(pb)
			if had != ok || old != e {
				changed = true
			}
			if ok {
				vs.eips[u] = e
			} else {
				delete(vs.eips, u)
			}
		}
	}
	if changed {
		vs.eipList = sortedEIPs(vs.eips)
		vs.eipKey = fmt.Sprintf("%d:%d", vs.vpc, eipGeneration.Add(1))
	}
	return vs.eipList, vs.eipKey
}

// eipGeneration numbers the VPCs' lists of EIPs, across sessions.
var eipGeneration atomic.Uint64

// allEIPs is the EIPs of bindings, by binding UUID.
func allEIPs(pbs []*sbdb.PortBinding) map[string]dataplane.VPCEIP {
	out := map[string]dataplane.VPCEIP{}
	for _, pb := range pbs {
		if e, ok := eipOf(pb); ok {
			out[pb.UUID] = e
		}
	}
	return out
}

func sortedEIPs(m map[string]dataplane.VPCEIP) []dataplane.VPCEIP {
	out := make([]dataplane.VPCEIP, 0, len(m))
	for _, e := range m {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].EIP.Less(out[j].EIP) })
	return out
}
