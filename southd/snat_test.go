package southd_test

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/courier-sdn/courier/internal/testenv"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema/sbdb"
	"github.com/courier-sdn/courier/southd"
)

// snatLab is a southbound with one VPC's datapath, written by the test
// as northd and the hosts would (bindings, SNAT, demand), and a southd.
type snatLab struct {
	t   *testing.T
	dbs *testenv.DBs
	sb  *ops.Session
	reg *prometheus.Registry
}

const snatVPC = 7

func newSNATLab(t *testing.T) *snatLab {
	dbs := testenv.StartDBs(t)
	m, _ := sbdb.FullDatabaseModel()
	sb, err := ops.Open(context.Background(), m, ops.SessionOptions{Remotes: []string{dbs.SB}, Monitor: []client.MonitorOption{
		client.WithTable(&sbdb.PortBinding{}), client.WithTable(&sbdb.SNAT{}), client.WithTable(&sbdb.SNATBlock{})}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	l := &snatLab{t: t, dbs: dbs, sb: sb}
	l.do(ovsdb.Operation{Op: "insert", Table: "Datapath", UUIDName: "dp", Row: ovsdb.Row{"name": "vx", "type": "vxnet",
		"tunnel_key": 70, "vpc": snatVPC, "gateway_mac": "02:00:00:00:00:01"}})
	return l
}

func (l *snatLab) do(txn ...ovsdb.Operation) []ovsdb.OperationResult {
	l.t.Helper()
	res, err := ops.Transact(context.Background(), l.sb, txn...)
	if err != nil {
		l.t.Fatal(err)
	}
	return res
}

// southd starts a southd with its own metrics; the returned func stops it.
func (l *snatLab) southd() func() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	l.reg = prometheus.NewRegistry()
	d := southd.New(southd.Config{NB: []string{l.dbs.NB}, SB: []string{l.dbs.SB}, Tick: 50 * time.Millisecond,
		Log: testenv.Logger(l.t), Metrics: southd.NewMetrics(l.reg)})
	go func() { d.Run(ctx); close(done) }()
	stop := func() { cancel(); <-done }
	l.t.Cleanup(stop)
	return stop
}

func (l *snatLab) addPort(name string, key int) {
	l.t.Helper()
	var dp string
	for _, r := range l.do(ovsdb.Operation{Op: "select", Table: "Datapath", Where: []ovsdb.Condition{{Column: "name", Function: "==", Value: "vx"}}}) {
		dp = r.Rows[0]["_uuid"].(ovsdb.UUID).GoUUID
	}
	l.do(ovsdb.Operation{Op: "insert", Table: "Port_Binding", Row: ovsdb.Row{"logical_port": name, "datapath": ovsdb.UUID{GoUUID: dp},
		"vpc": snatVPC, "tunnel_key": key, "mac": fmt.Sprintf("02:00:00:00:00:%02x", key), "ips": ovsdb.OvsSet{GoSet: []any{fmt.Sprintf("10.0.0.%d", key)}}}})
}

func (l *snatLab) setPort(name string, row ovsdb.Row) {
	l.t.Helper()
	l.do(ovsdb.Operation{Op: "update", Table: "Port_Binding", Where: []ovsdb.Condition{{Column: "logical_port", Function: "==", Value: name}}, Row: row})
}

func (l *snatLab) setSNAT(block int, addrs ...string) {
	l.t.Helper()
	set := make([]any, len(addrs))
	for i, a := range addrs {
		set[i] = a
	}
	row := ovsdb.Row{"vpc": snatVPC, "network": "internet", "addresses": ovsdb.OvsSet{GoSet: set}, "block_size": block}
	where := []ovsdb.Condition{{Column: "vpc", Function: "==", Value: snatVPC}}
	if len(ops.Rows[sbdb.SNAT](l.sb)) == 0 {
		l.do(ovsdb.Operation{Op: "insert", Table: "SNAT", Row: row})
	} else {
		l.do(ovsdb.Operation{Op: "update", Table: "SNAT", Where: where, Row: row})
	}
}

// blocks renders the southbound's blocks per port: "addr:lo" in order.
func (l *snatLab) blocks() map[string][]string {
	out := map[string][]string{}
	for _, b := range ops.Rows[sbdb.SNATBlock](l.sb) {
		out[b.LogicalPort] = append(out[b.LogicalPort], fmt.Sprintf("%s:%d", b.Address, b.PortLo))
	}
	for _, bs := range out {
		sort.Strings(bs)
	}
	return out
}

func (l *snatLab) uuids() []string {
	var out []string
	for _, b := range ops.Rows[sbdb.SNATBlock](l.sb) {
		out = append(out, b.UUID)
	}
	sort.Strings(out)
	return out
}

// want waits until the blocks are exactly want.
func (l *snatLab) want(what string, want map[string][]string) {
	l.t.Helper()
	testenv.Eventually(l.t, 5*time.Second, what, func() error {
		if got := l.blocks(); fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("blocks %v, want %v", got, want)
		}
		return nil
	})
}

func (l *snatLab) metric(name string) float64 {
	fams, err := l.reg.Gather()
	if err != nil {
		l.t.Fatal(err)
	}
	sum := 0.0
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

// Against a real southbound: one block per port, more on demand, the
// last ones freed when demand drops, a deleted port's block reused, none
// for a port with an EIP or moved out, exhaustion counted once per
// port, and a restarted southd moving nothing.
func TestSNATBlocksInTheSouthbound(t *testing.T) {
	l := newSNATLab(t)
	for i, p := range []string{"p1", "p2", "p3", "p4"} {
		l.addPort(p, i+1)
	}
	l.setPort("p4", ovsdb.Row{"eip": "203.0.113.99", "eip_network": "internet"})
	// 16384 ports a block: 3 blocks an address (16384, 32768, 49152).
	l.setSNAT(16384, "203.0.113.10", "203.0.113.9")
	stop := l.southd()
	l.want("first blocks", map[string][]string{"p1": {"203.0.113.9:16384"}, "p2": {"203.0.113.9:32768"}, "p3": {"203.0.113.9:49152"}})
	str := func(s *string) string {
		if s == nil {
			return "none"
		}
		return *s
	}
	testenv.Eventually(t, 5*time.Second, "each block says its port's MAC and vxnet", func() error {
		dp := l.do(ovsdb.Operation{Op: "select", Table: "Datapath", Where: []ovsdb.Condition{{Column: "name", Function: "==", Value: "vx"}}})[0].
			Rows[0]["_uuid"].(ovsdb.UUID).GoUUID
		for _, b := range ops.Rows[sbdb.SNATBlock](l.sb) {
			mac := fmt.Sprintf("02:00:00:00:00:%02x", b.LogicalPort[1]-'0')
			if b.MAC == nil || *b.MAC != mac || b.Datapath == nil || *b.Datapath != dp {
				return fmt.Errorf("block of %s: MAC %s vxnet %s, want %s and %s", b.LogicalPort, str(b.MAC), str(b.Datapath), mac, dp)
			}
		}
		return nil
	})

	l.setPort("p1", ovsdb.Row{"snat_demand": 3})
	l.want("p1 asks for 3", map[string][]string{"p1": {"203.0.113.10:16384", "203.0.113.10:32768", "203.0.113.9:16384"},
		"p2": {"203.0.113.9:32768"}, "p3": {"203.0.113.9:49152"}})

	l.setPort("p2", ovsdb.Row{"snat_demand": 3}) // one block left: p2 lacks one
	l.want("p2 gets the last block", map[string][]string{"p1": {"203.0.113.10:16384", "203.0.113.10:32768", "203.0.113.9:16384"},
		"p2": {"203.0.113.10:49152", "203.0.113.9:32768"}, "p3": {"203.0.113.9:49152"}})
	testenv.Eventually(t, 2*time.Second, "exhaustion counted", func() error {
		if n := l.metric("courier_southd_snat_exhausted_total"); n != 1 {
			return fmt.Errorf("courier_southd_snat_exhausted_total = %v", n)
		}
		if used, all := l.metric("courier_southd_snat_blocks_used"), l.metric("courier_southd_snat_blocks"); used != 6 || all != 6 {
			return fmt.Errorf("blocks used %v of %v, want 6 of 6", used, all)
		}
		return nil
	})

	// p1 asks for one again: it keeps its first (lowest) block, and p2
	// gets what it lacked.
	l.setPort("p1", ovsdb.Row{"snat_demand": 1})
	l.want("p1 back to 1", map[string][]string{"p1": {"203.0.113.9:16384"},
		"p2": {"203.0.113.10:16384", "203.0.113.10:49152", "203.0.113.9:32768"}, "p3": {"203.0.113.9:49152"}})

	// A deleted port's block goes to the next port; an EIP and a move
	// out of the VPC free a port's blocks.
	l.do(ovsdb.Operation{Op: "delete", Table: "Port_Binding", Where: []ovsdb.Condition{{Column: "logical_port", Function: "==", Value: "p3"}}})
	l.addPort("p5", 5)
	l.want("p5 reuses p3's block", map[string][]string{"p1": {"203.0.113.9:16384"},
		"p2": {"203.0.113.10:16384", "203.0.113.10:49152", "203.0.113.9:32768"}, "p5": {"203.0.113.9:49152"}})
	l.setPort("p5", ovsdb.Row{"eip": "203.0.113.98", "eip_network": "internet"})
	l.setPort("p2", ovsdb.Row{"vpc": snatVPC + 1})
	l.want("EIP and move free blocks", map[string][]string{"p1": {"203.0.113.9:16384"}})
	l.setPort("p2", ovsdb.Row{"vpc": snatVPC})
	l.want("p2 back", map[string][]string{"p1": {"203.0.113.9:16384"},
		"p2": {"203.0.113.10:16384", "203.0.113.9:32768", "203.0.113.9:49152"}})

	// Restart: the new southd reads the blocks back and writes none.
	before := l.uuids()
	stop()
	l.southd()
	time.Sleep(time.Second)
	if after := l.uuids(); !slices.Equal(before, after) {
		t.Errorf("a restarted southd moved blocks:\nbefore %v\nafter  %v", before, after)
	}
	if n := l.metric("courier_southd_snat_block_writes_total"); n != 0 {
		t.Errorf("a restarted southd wrote %v blocks", n)
	}

	// An address removed: its blocks go, and come back where free, a
	// port's first block before another's further ones.
	l.setSNAT(16384, "203.0.113.10")
	l.want("address .9 removed", map[string][]string{"p1": {"203.0.113.10:32768"},
		"p2": {"203.0.113.10:16384", "203.0.113.10:49152"}})
	// A new block size: every block again; 32768 leaves one an address.
	l.setSNAT(32768, "203.0.113.10", "203.0.113.11")
	l.want("block size 32768", map[string][]string{"p1": {"203.0.113.10:32768"}, "p2": {"203.0.113.11:32768"}})
	// The SNAT row deleted: no blocks.
	l.do(ovsdb.Operation{Op: "delete", Table: "SNAT", Where: []ovsdb.Condition{{Column: "vpc", Function: "==", Value: snatVPC}}})
	l.want("SNAT deleted", map[string][]string{})
	if st := l.metric("courier_southd_snat_blocks"); st != 0 {
		t.Errorf("courier_southd_snat_blocks = %v after the SNAT went", st)
	}
}

// A block written by somebody else for a VPC without SNAT is freed, and
// the port that needs it gets it, in one pass or the next.
func TestSNATForeignBlockFreedAndReused(t *testing.T) {
	l := newSNATLab(t)
	l.addPort("p1", 1)
	l.addPort("p2", 2)
	l.setSNAT(32768, "203.0.113.9", "203.0.113.10")
	l.southd()
	l.want("first blocks", map[string][]string{"p1": {"203.0.113.9:32768"}, "p2": {"203.0.113.10:32768"}})
	// Somebody takes .11's only block, and the same transaction makes
	// southd need it.
	l.addPort("p3", 3)
	l.do(
		ovsdb.Operation{Op: "insert", Table: "SNAT_Block", Row: ovsdb.Row{"vpc": 9, "logical_port": "intruder",
			"address": "203.0.113.11", "port_lo": 32768, "port_hi": 65535}},
		ovsdb.Operation{Op: "update", Table: "SNAT", Where: []ovsdb.Condition{{Column: "vpc", Function: "==", Value: snatVPC}},
			Row: ovsdb.Row{"addresses": ovsdb.OvsSet{GoSet: []any{"203.0.113.9", "203.0.113.10", "203.0.113.11"}}}})
	// VPC 9 has no SNAT: southd frees the intruder's block, then p3
	// gets it.
	l.want("p3 gets .11", map[string][]string{"p1": {"203.0.113.9:32768"}, "p2": {"203.0.113.10:32768"}, "p3": {"203.0.113.11:32768"}})
	for _, b := range ops.Rows[sbdb.SNATBlock](l.sb) {
		if strings.Contains(b.LogicalPort, "intruder") {
			t.Errorf("the intruder's block stayed: %+v", b)
		}
	}
}
