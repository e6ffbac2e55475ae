package southd

import (
	"fmt"
	"testing"
	"time"

	"github.com/courier-sdn/courier/schema/sbdb"
)

func str(s string) *string { return &s }

func TestJudgeLearned(t *testing.T) {
	now := time.Now()
	ms := func(d time.Duration) int { return int(now.Add(-d).UnixMilli()) }
	pbs := []*sbdb.PortBinding{
		{LogicalPort: "p1", Chassis: str("hv1"), IPs: []string{"10.0.0.5"}, VirtualIPs: []string{"10.0.0.100"}},
		{LogicalPort: "p2", Chassis: str("hv2"), IPs: []string{"10.0.0.6"}, VirtualIPs: []string{"10.0.0.100"}},
		{LogicalPort: "u", Chassis: str("hv1")},
	}
	lb := func(u, port, chassis, kind, ip string, seq int, age time.Duration) *sbdb.LearnedBinding {
		return &sbdb.LearnedBinding{UUID: u, LogicalPort: port, Chassis: chassis, Kind: kind, IP: ip, Vpc: 1, Seq: seq, Timestamp: ms(age)}
	}
	lbs := []*sbdb.LearnedBinding{
		lb("a", "p1", "hv1", "virtual_ip", "10.0.0.100", 3, time.Second),
		lb("b", "p2", "hv2", "virtual_ip", "10.0.0.100", 2, 0),          // older sequence: superseded
		lb("c", "p1", "hv2", "virtual_ip", "10.0.0.100", 9, 0),          // p1 is not on hv2
		lb("d", "p2", "hv2", "virtual_ip", "10.0.0.200", 1, 0),          // not one of p2's virtual IPs
		lb("e", "p1", "hv1", "unknown", "10.0.0.7", 1, 0),               // p1's addresses are known
		lb("f", "u", "hv1", "unknown", "10.0.0.8", 1, 0),                // fine
		lb("g", "gone", "hv1", "unknown", "10.0.0.9", 1, 0),             // no such port
		lb("o1", "u", "hv1", "unknown", "10.0.0.11", 1, 3*time.Hour),    // stale: aged, oldest first
		lb("o2", "u", "hv1", "unknown", "10.0.0.12", 1, 2*time.Hour),    // stale: aged
		lb("o3", "u", "hv1", "unknown", "10.0.0.13", 1, 90*time.Minute), // stale, but over the batch
	}
	got := judgeLearned(pbs, lbs, now, time.Hour, 2)
	want := map[string]string{"b": "superseded", "c": "rejected", "d": "rejected", "e": "rejected", "g": "rejected", "o1": "aged", "o2": "aged"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("judged\n %v\nwant\n %v", got, want)
	}
	// A second pass takes the next batch.
	var rest []*sbdb.LearnedBinding
	for _, l := range lbs {
		if _, ok := got[l.UUID]; !ok {
			rest = append(rest, l)
		}
	}
	if got := judgeLearned(pbs, rest, now, time.Hour, 2); fmt.Sprint(got) != "map[o3:aged]" {
		t.Errorf("second pass %v", got)
	}
	// Equal sequences: the later timestamp wins.
	tie := []*sbdb.LearnedBinding{lb("x", "p1", "hv1", "virtual_ip", "10.0.0.100", 4, time.Minute), lb("y", "p2", "hv2", "virtual_ip", "10.0.0.100", 4, 0)}
	if got := judgeLearned(pbs, tie, now, time.Hour, 2); fmt.Sprint(got) != "map[x:superseded]" {
		t.Errorf("tie %v", got)
	}
}
