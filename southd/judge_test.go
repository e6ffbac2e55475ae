package southd

import (
	"fmt"
	"testing"
	"time"

	"github.com/courier-sdn/courier/schema/sbdb"
)

func str(s string) *string { return &s }

// world of the judge: VPC 1, vxnet dpx 10.0.0.0/24 (gateway 10.0.0.1)
// and dpy 10.0.1.0/24; p1 and p2 share virtual IP 10.0.0.100; u and w
// have unknown addresses (w may learn two).
func judgeWorld() ([]*sbdb.PortBinding, map[string]*sbdb.Datapath) {
	two := 2
	pbs := []*sbdb.PortBinding{
		{LogicalPort: "p1", Datapath: "dpx", Vpc: 1, Chassis: str("hv1"), IPs: []string{"10.0.0.5"}, VirtualIPs: []string{"10.0.0.100"}},
		{LogicalPort: "p2", Datapath: "dpx", Vpc: 1, Chassis: str("hv2"), IPs: []string{"10.0.0.6"}, VirtualIPs: []string{"10.0.0.100"}},
		{LogicalPort: "q", Datapath: "dpy", Vpc: 1, Chassis: str("hv2"), IPs: []string{"10.0.1.5"}},
		{LogicalPort: "u", Datapath: "dpx", Vpc: 1, Chassis: str("hv1")},
		{LogicalPort: "w", Datapath: "dpx", Vpc: 1, Chassis: str("hv3"), LearnedLimit: &two},
	}
	dps := map[string]*sbdb.Datapath{
		"dpx": {UUID: "dpx", Name: "x", Type: "vxnet", Vpc: 1, Cidr: str("10.0.0.0/24"), GatewayIP: str("10.0.0.1")},
		"dpy": {UUID: "dpy", Name: "y", Type: "vxnet", Vpc: 1, Cidr: str("10.0.1.0/24"), GatewayIP: str("10.0.1.1")},
	}
	return pbs, dps
}

func TestJudgeLearned(t *testing.T) {
	now := time.Now()
	ms := func(d time.Duration) int { return int(now.Add(-d).UnixMilli()) }
	pbs, dps := judgeWorld()
	lb := func(u, port, chassis, kind, ip string, seq int, age time.Duration) *sbdb.LearnedBinding {
		return &sbdb.LearnedBinding{UUID: u, LogicalPort: port, Chassis: chassis, Kind: kind, IP: ip, Vpc: 1, Seq: seq, Timestamp: ms(age)}
	}
	lbs := []*sbdb.LearnedBinding{
		lb("a", "p1", "hv1", "virtual_ip", "10.0.0.100", 3, time.Second), // the newest announcement: accepted
		lb("b", "p2", "hv2", "virtual_ip", "10.0.0.100", 2, 0),           // older sequence: superseded
		lb("c", "p1", "hv2", "virtual_ip", "10.0.0.100", 9, 0),           // p1 is not on hv2
		lb("d", "p2", "hv2", "virtual_ip", "10.0.0.200", 1, 0),           // not one of p2's virtual IPs
		lb("e", "p1", "hv1", "unknown", "10.0.0.7", 1, 0),                // p1's addresses are known
		lb("f", "u", "hv1", "unknown", "10.0.0.8", 1, 0),                 // fine
		lb("g", "gone", "hv1", "unknown", "10.0.0.9", 1, 0),              // no such port
		lb("h", "u", "hv1", "unknown", "10.0.0.6", 7, 0),                 // p2's fixed IP: a takeover
		lb("i", "u", "hv1", "unknown", "10.0.1.5", 7, 0),                 // another vxnet's address (q's)
		lb("j", "u", "hv1", "unknown", "10.0.1.77", 7, 0),                // another vxnet's free address
		lb("k", "u", "hv1", "unknown", "10.0.0.1", 7, 0),                 // the gateway
		lb("l", "u", "hv1", "unknown", "10.0.0.255", 7, 0),               // the broadcast address
		lb("m", "u", "hv1", "unknown", "10.0.0.100", 7, 0),               // p1's and p2's virtual IP
		lb("n1", "w", "hv3", "unknown", "10.0.0.31", 1, 3*time.Second),   // w's limit is 2: the oldest two stay
		lb("n2", "w", "hv3", "unknown", "10.0.0.32", 1, 2*time.Second),
		lb("n3", "w", "hv3", "unknown", "10.0.0.33", 1, time.Second),
		lb("o1", "u", "hv1", "unknown", "10.0.0.11", 1, 3*time.Hour),    // stale: aged, oldest first
		lb("o2", "u", "hv1", "unknown", "10.0.0.12", 1, 2*time.Hour),    // stale: aged
		lb("o3", "u", "hv1", "unknown", "10.0.0.13", 1, 90*time.Minute), // stale, but over the batch
	}
	lbs[0].Accepted = true // accepted before: not accepted again
	got := judgeLearned(pbs, dps, lbs, now, time.Hour, 2)
	want := map[string]string{"b": whySuperseded, "c": whyWrongChassis, "d": whyNotDeclared, "e": whyNotDeclared,
		"g": whyNoPort, "h": whyFixedIP, "i": whyFixedIP, "j": whyBadAddress, "k": whyBadAddress, "l": whyBadAddress,
		"m": whyVirtualIP, "n3": whyLimit, "o1": whyAged, "o2": whyAged}
	if fmt.Sprint(got.del) != fmt.Sprint(want) {
		t.Errorf("removed\n %v\nwant\n %v", got.del, want)
	}
	if fmt.Sprint(got.accept) != "[f n1 n2]" { // o3 is stale: not accepted, only not removed yet
		t.Errorf("accepted %v", got.accept)
	}
	// A second pass takes the next batch.
	var rest []*sbdb.LearnedBinding
	for _, l := range lbs {
		if _, ok := got.del[l.UUID]; !ok {
			rest = append(rest, l)
		}
	}
	if got := judgeLearned(pbs, dps, rest, now, time.Hour, 2); fmt.Sprint(got.del) != "map[o3:aged]" {
		t.Errorf("second pass %v", got.del)
	}
	// Equal sequences: the later timestamp wins.
	tie := []*sbdb.LearnedBinding{lb("x", "p1", "hv1", "virtual_ip", "10.0.0.100", 4, time.Minute), lb("y", "p2", "hv2", "virtual_ip", "10.0.0.100", 4, 0)}
	if got := judgeLearned(pbs, dps, tie, now, time.Hour, 2); fmt.Sprint(got.del) != "map[x:superseded]" || fmt.Sprint(got.accept) != "[y]" {
		t.Errorf("tie %+v", got)
	}
}
