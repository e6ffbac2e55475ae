package hostd

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"

	"github.com/courier-sdn/courier/dataplane"
	"github.com/courier-sdn/courier/internal/testenv"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// Two hosts announcing the same address at the same moment used to read
// the same highest sequence and both write one more: two holders with
// one sequence, and the winner left to the timestamp of two clocks. The
// write now waits for the holders to be as read, so every announcement
// gets a sequence of its own.
func TestConcurrentAnnouncementsGetDistinctSequences(t *testing.T) {
	dbs := testenv.StartDBs(t)
	m, _ := sbdb.FullDatabaseModel()
	const rounds = 25
	ip := netip.MustParseAddr("10.0.0.100")
	var mu sync.Mutex
	seqs := map[int]string{}
	var wg sync.WaitGroup
	for _, c := range []string{"hv1", "hv2"} {
		s, err := ops.Open(context.Background(), m, ops.SessionOptions{Remotes: []string{dbs.SB}})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		d := New(Config{Chassis: c, Log: testenv.Logger(t)})
		d.base = s
		pb := &sbdb.PortBinding{LogicalPort: "p-" + c, Vpc: 1}
		ev := dataplane.Event{Type: dataplane.EventVIPAnnounce, IP: ip, VNI: 7, MAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				seq, err := d.writeLearned(context.Background(), pb, "virtual_ip", ev)
				mu.Lock()
				if err != nil {
					t.Errorf("%s: %v", c, err)
				} else if other, dup := seqs[seq]; dup {
					t.Errorf("%s and %s both wrote sequence %d", c, other, seq)
				}
				seqs[seq] = c
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seqs) != 2*rounds {
		t.Errorf("%d distinct sequences for %d announcements", len(seqs), 2*rounds)
	}
}

// A port with unknown addresses may hold only free host addresses of its
// own vxnet, and at most its learned_limit of them: what hostd can check
// alone, before anything is written.
func TestRefuseLearned(t *testing.T) {
	cidr, gw := "10.0.0.0/24", "10.0.0.1"
	vx := &sbdb.Datapath{UUID: "dpx", Name: "x", Vpc: 1, Cidr: &cidr, GatewayIP: &gw}
	two := 2
	unk := &sbdb.PortBinding{LogicalPort: "u", Datapath: "dpx", Vpc: 1, LearnedLimit: &two}
	dflt := &sbdb.PortBinding{LogicalPort: "v", Datapath: "dpx", Vpc: 1}
	vip := &sbdb.PortBinding{LogicalPort: "p", Datapath: "dpx", Vpc: 1, IPs: []string{"10.0.0.5"}, VirtualIPs: []string{"10.0.0.100"}}
	held := []*sbdb.LearnedBinding{{LogicalPort: "u", Kind: "unknown", IP: "10.0.0.50"}, {LogicalPort: "u", Kind: "unknown", IP: "10.0.0.51"},
		{LogicalPort: "v", Kind: "unknown", IP: "10.0.0.60"}}
	var many []*sbdb.LearnedBinding
	for i := 0; i < schema.DefaultLearnedLimit; i++ {
		many = append(many, &sbdb.LearnedBinding{LogicalPort: "v", Kind: "unknown", IP: fmt.Sprintf("10.0.0.%d", 100+i)})
	}
	for _, c := range []struct {
		pb       *sbdb.PortBinding
		kind, ip string
		vx       *sbdb.Datapath
		held     []*sbdb.LearnedBinding
		want     string
	}{
		{unk, "unknown", "10.0.0.9", vx, nil, ""},
		{unk, "unknown", "10.0.1.9", vx, nil, refusedAddress},
		{unk, "unknown", "10.0.0.1", vx, nil, refusedAddress},
		{unk, "unknown", "10.0.0.0", vx, nil, refusedAddress},
		{unk, "unknown", "10.0.0.255", vx, nil, refusedAddress},
		{unk, "unknown", "10.0.0.9", vx, held, refusedLimit},
		{unk, "unknown", "10.0.0.51", vx, held, ""}, // held already: a refresh
		{unk, "unknown", "10.0.0.9", nil, nil, refusedNoVxnet},
		{dflt, "unknown", "10.0.0.9", vx, held, ""},
		{dflt, "unknown", "10.0.0.9", vx, many, refusedLimit},
		{vip, "virtual_ip", "10.0.0.100", vx, nil, ""},
		{vip, "virtual_ip", "10.0.0.101", vx, nil, refusedNotDeclared},
		{vip, "unknown", "10.0.0.9", vx, nil, refusedNotDeclared},
	} {
		got := refuseLearned(c.pb, c.kind, netip.MustParseAddr(c.ip), c.vx, c.held)
		if got != c.want {
			t.Errorf("%s %s %s (holding %d): %q, want %q", c.pb.LogicalPort, c.kind, c.ip, len(c.held), got, c.want)
		}
	}
}
