package southd

import (
	"net/netip"
	"slices"
	"sort"
	"time"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/northd/rules"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/ops/sbops"
	"github.com/courier-sdn/courier/schema"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// Learned bindings are decided here, once: which rows a port may hold at
// all, which holder of a contested address wins, and which rows are
// stale. The survivors are marked accepted; hosts and hubs act on
// accepted rows only, so a claim nobody has judged yet moves no traffic.

// Why a learned binding is removed (the "why" label of
// courier_southd_learned_removed_total).
const (
	whyNoPort       = "no_port"       // the port does not exist
	whyWrongChassis = "wrong_chassis" // the chassis does not host the port
	whyNotDeclared  = "not_declared"  // a virtual IP the port does not have, or a learned address of a port with fixed IPs
	whyBadAddress   = "bad_address"   // not a host address of the port's vxnet, or its gateway
	whyFixedIP      = "fixed_ip"      // another port's fixed IP: a fixed binding always wins
	whyVirtualIP    = "virtual_ip"    // another port's virtual IP
	whyLimit        = "limit"         // beyond the port's learned_limit
	whySuperseded   = "superseded"    // a newer announcement of the address won
	whyAged         = "aged"          // not refreshed within the learned age
)

type addrKey struct {
	vpc int
	ip  string
}

// judgment is what one pass decided: rows to delete (UUID to why) and
// rows to mark accepted.
type judgment struct {
	del    map[string]string
	accept []string
}

// judgeLearned judges every learned binding against the ports and the
// vxnets (datapaths by UUID): a row a port may not hold is removed; of
// several holders of one address the newest announcement (highest
// sequence, then timestamp) wins; rows not refreshed within age are
// removed, at most batch of them per pass, oldest first (OVN's
// MAC_Binding table grew without bound for years).
func judgeLearned(pbs []*sbdb.PortBinding, dps map[string]*sbdb.Datapath, lbs []*sbdb.LearnedBinding,
	now time.Time, age time.Duration, batch int) judgment {
	ports := map[string]*sbdb.PortBinding{}
	fixed := map[addrKey]bool{}
	vips := map[addrKey][]string{}
	for _, pb := range pbs {
		ports[pb.LogicalPort] = pb
		for _, ip := range pb.IPs {
			fixed[addrKey{pb.Vpc, ip}] = true
		}
		for _, ip := range pb.VirtualIPs {
			vips[addrKey{pb.Vpc, ip}] = append(vips[addrKey{pb.Vpc, ip}], pb.LogicalPort)
		}
	}
	j := judgment{del: map[string]string{}}
	holders := map[addrKey][]*sbdb.LearnedBinding{}
	held := map[string]int{} // learned addresses kept per port
	nowMs := now.UnixMilli()
	aged := 0
	// Oldest first, and the same order for the same rows, whatever order
	// they came in: the same view is always judged the same way.
	sorted := slices.Clone(lbs)
	sort.Slice(sorted, func(i, j int) bool {
		a, b := sorted[i], sorted[j]
		if a.Timestamp != b.Timestamp {
			return a.Timestamp < b.Timestamp
		}
		if a.IP != b.IP {
			return a.IP < b.IP
		}
		return a.UUID < b.UUID
	})
	for _, lb := range sorted {
		k := addrKey{lb.Vpc, lb.IP}
		pb := ports[lb.LogicalPort]
		why := refuse(lb, pb, dps, fixed[k], vips[k])
		if why == "" && lb.Kind == "unknown" {
			if held[lb.LogicalPort] >= limitOf(pb) {
				why = whyLimit
			} else {
				held[lb.LogicalPort]++
			}
		}
		switch {
		case why != "":
			j.del[lb.UUID] = why
		case nowMs-int64(lb.Timestamp) > age.Milliseconds():
			if aged < batch { // oldest first
				j.del[lb.UUID] = whyAged
				aged++
			}
		default:
			holders[k] = append(holders[k], lb)
		}
	}
	for _, hs := range holders {
		sort.Slice(hs, func(i, j int) bool {
			if hs[i].Seq != hs[j].Seq {
				return hs[i].Seq > hs[j].Seq
			}
			if hs[i].Timestamp != hs[j].Timestamp {
				return hs[i].Timestamp > hs[j].Timestamp
			}
			return hs[i].UUID > hs[j].UUID
		})
		for _, lb := range hs[1:] {
			j.del[lb.UUID] = whySuperseded
		}
		if !hs[0].Accepted {
			j.accept = append(j.accept, hs[0].UUID)
		}
	}
	sort.Strings(j.accept)
	return j
}

// refuse says why port pb may not hold lb at all, or "". isFixed: the
// address is some port's fixed IP; vipOf: the ports that declare it as a
// virtual IP.
func refuse(lb *sbdb.LearnedBinding, pb *sbdb.PortBinding, dps map[string]*sbdb.Datapath, isFixed bool, vipOf []string) string {
	switch {
	case pb == nil:
		return whyNoPort
	case pb.Chassis == nil || *pb.Chassis != lb.Chassis:
		return whyWrongChassis
	case lb.Kind == "virtual_ip" && !slices.Contains(pb.VirtualIPs, lb.IP):
		return whyNotDeclared
	case lb.Kind == "unknown" && len(pb.IPs) > 0:
		return whyNotDeclared
	case isFixed:
		return whyFixedIP
	case lb.Kind == "unknown" && len(vipOf) > 0:
		return whyVirtualIP
	case lb.Kind == "unknown" && !usableIn(dps[pb.Datapath], lb.IP):
		return whyBadAddress
	}
	return ""
}

// usableIn: ip is a host address of the vxnet other than its gateway.
func usableIn(dp *sbdb.Datapath, ip string) bool {
	if dp == nil || dp.Cidr == nil || dp.GatewayIP == nil {
		return false
	}
	cidr, err1 := netip.ParsePrefix(*dp.Cidr)
	gw, err2 := netip.ParseAddr(*dp.GatewayIP)
	a, err3 := netip.ParseAddr(ip)
	return err1 == nil && err2 == nil && err3 == nil && rules.CheckPortIP(dp.Name, cidr, gw, a) == nil
}

func limitOf(pb *sbdb.PortBinding) int {
	if pb.LearnedLimit != nil {
		return *pb.LearnedLimit
	}
	return schema.DefaultLearnedLimit
}

// arbitrate turns a judgment into operations, counts and logs it, and
// returns with them a test of whether the monitor shows them done.
//
// The bindings are read here, after the learned rows, never taken from
// the start of the pass: the monitor applies updates in commit order, so
// a learned row read now comes with its port's binding as it was when
// the row was written (a host learns only on a port it holds), where a
// binding read at the start of the pass may predate both. Judged against
// that older binding, a legitimate address was refused as wrong_chassis
// (hostd's TestMigrationActivation failed so in CI).
func (d *Daemon) arbitrate(sb *ops.Session) ([]ovsdb.Operation, func() bool) {
	lbs := ops.Rows[sbdb.LearnedBinding](sb)
	if len(lbs) == 0 {
		return nil, nil // nothing to judge: no need to index every binding
	}
	// Every port's, not only the changed ones: a learned address is
	// judged against all of them.
	pbs := ops.Rows[sbdb.PortBinding](sb)
	dps := map[string]*sbdb.Datapath{}
	for _, dp := range ops.Rows[sbdb.Datapath](sb) {
		dps[dp.UUID] = dp
	}
	j := judgeLearned(pbs, dps, lbs, time.Now(), d.cfg.LearnedAge, d.cfg.AgeBatch)
	if len(j.del) == 0 && len(j.accept) == 0 {
		return nil, nil
	}
	byUUID := make(map[string]*sbdb.LearnedBinding, len(lbs))
	for _, lb := range lbs {
		byUUID[lb.UUID] = lb
	}
	var txn []ovsdb.Operation
	for u, why := range j.del {
		txn = append(txn, sbops.DeleteLearnedBinding(u))
		d.m.learned.WithLabelValues(why).Inc()
		lb := byUUID[u]
		switch why {
		case whyAged:
			d.log.Debug("learned binding aged out", "port", lb.LogicalPort, "ip", lb.IP, "chassis", lb.Chassis)
		case whySuperseded:
			d.log.Info("address moved to a newer holder", "from_port", lb.LogicalPort, "ip", lb.IP, "chassis", lb.Chassis)
		default:
			d.log.Warn("refused a learned address", "port", lb.LogicalPort, "ip", lb.IP, "kind", lb.Kind,
				"chassis", lb.Chassis, "why", why)
		}
	}
	for _, u := range j.accept {
		txn = append(txn, sbops.AcceptLearnedBinding(u))
		d.m.accepted.Inc()
		lb := byUUID[u]
		d.log.Info("accepted a learned address", "port", lb.LogicalPort, "ip", lb.IP, "kind", lb.Kind, "chassis", lb.Chassis)
	}
	shown := func() bool {
		for _, lb := range ops.Rows[sbdb.LearnedBinding](sb) {
			if _, gone := j.del[lb.UUID]; gone {
				return false
			}
			if !lb.Accepted && slices.Contains(j.accept, lb.UUID) {
				return false
			}
		}
		return true
	}
	return txn, shown
}
