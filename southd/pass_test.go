package southd_test

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/courier-sdn/courier/internal/testenv"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/ops/jsonrpc"
	"github.com/courier-sdn/courier/schema"
	"github.com/courier-sdn/courier/schema/nbdb"
	"github.com/courier-sdn/courier/schema/sbdb"
	"github.com/courier-sdn/courier/southd"
)

// Passes between full ones read only what changed (pass.go). After
// random changes to ports, claims, bindings' up and chassis liveness,
// the southbound and northbound must settle, well before the next full
// pass could repair anything, where a full pass would leave them: every
// port's up and chassis as its binding's, every claimed port nobody
// requested bound to a live claimer. Replay a history with
// COURIER_SOUTHD_SEED.
func TestChangesDecideAsAFullPass(t *testing.T) {
	seed := time.Now().UnixNano()
	if s := os.Getenv("COURIER_SOUTHD_SEED"); s != "" {
		seed, _ = strconv.ParseInt(s, 10, 64)
	}
	t.Logf("seed %d (COURIER_SOUTHD_SEED replays it)", seed)
	r := rand.New(rand.NewSource(seed))
	w := newWorld(t)
	hosts := []string{"hv1", "hv2", "hv3"}
	for _, h := range hosts {
		w.addChassis(t, h, false)
	}
	reg := prometheus.NewRegistry()
	m := southd.NewMetrics(reg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	d := southd.New(southd.Config{NB: []string{w.dbs.NB}, SB: []string{w.dbs.SB}, DeadAfter: deadAfter,
		Tick: 50 * time.Millisecond, Log: testenv.Logger(t), Metrics: m})
	go func() { d.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	nbM, _ := nbdb.FullDatabaseModel()
	nb, err := ops.Open(context.Background(), nbM, ops.SessionOptions{Remotes: []string{w.dbs.NB},
		Monitor: []client.MonitorOption{client.WithTable(&nbdb.Port{})}})
	if err != nil {
		t.Fatal(err)
	}
	defer nb.Close()

	w.nb(t, "sb", "vpc-add", "v", "--", "vxnet-add", "v", "x", "10.9.0.0/24")
	const n = 24
	present := map[int]bool{}
	for i := 0; i < n; i++ {
		w.nb(t, "none", "port-add", "x", port(i), fmt.Sprintf("02:00:00:00:09:%02x", i), fmt.Sprintf("10.9.0.%d", 10+i))
		present[i] = true
	}
	for step := 0; step < 120; step++ {
		w.randomStep(t, r, hosts, present)
		time.Sleep(time.Duration(r.Intn(60)) * time.Millisecond) // hosts die meanwhile (deadAfter)
		if step%12 == 11 {
			settled(t, w, nb, hosts)
		}
	}
	settled(t, w, nb, hosts)
	passes := func(read string) float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "courier_southd_passes_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "read" && l.GetValue() == read {
						return m.GetCounter().GetValue()
					}
				}
			}
		}
		return 0
	}
	if passes("changes") == 0 {
		t.Fatalf("no pass read only the changes (full passes: %v)", passes("full"))
	}
	t.Logf("passes: %v reading changes, %v full", passes("changes"), passes("full"))
}

func port(i int) string { return fmt.Sprintf("p%02d", i) }

// nbDo transacts on the northbound, as a writer other than southd.
func (w *world) nbDo(t *testing.T, txn ...ovsdb.Operation) {
	t.Helper()
	c, err := jsonrpc.Dial(w.dbs.NB, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var res []ovsdb.OperationResult
	if err := c.Call(context.Background(), "transact", append([]any{schema.NBName}, anys(txn)...), &res); err != nil {
		t.Fatal(err)
	}
}

func anys[T any](s []T) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// randomStep is one change a host, an orchestrator or a failure makes.
func (w *world) randomStep(t *testing.T, r *rand.Rand, hosts []string, present map[int]bool) {
	t.Helper()
	i, h := r.Intn(len(present)), hosts[r.Intn(len(hosts))]
	byName := func(table, col, v string) []ovsdb.Condition {
		return []ovsdb.Condition{{Column: col, Function: "==", Value: v}}
	}
	switch k := r.Intn(100); {
	case k < 35: // a host gains or loses a VM's interface
		op := ovsdb.MutateOperationInsert
		if r.Intn(2) == 0 {
			op = ovsdb.MutateOperationDelete
		}
		w.do(t, ovsdb.Operation{Op: "mutate", Table: "Chassis_Private", Where: byName("Chassis_Private", "name", h),
			Mutations: []ovsdb.Mutation{{Column: "claims", Mutator: op, Value: ovsdb.OvsSet{GoSet: []any{port(i)}}}}})
	case k < 70: // the port's host programs it, or stops
		w.do(t, ovsdb.Operation{Op: "update", Table: "Port_Binding",
			Where: append(byName("Port_Binding", "logical_port", port(i)), ovsdb.Condition{Column: "chassis", Function: "==",
				Value: ovsdb.OvsSet{GoSet: []any{h}}}),
			Row: ovsdb.Row{"up": ovsdb.OvsSet{GoSet: []any{r.Intn(3) > 0}}}})
	case k < 78: // somebody else writes a port's runtime state
		w.nbDo(t, ovsdb.Operation{Op: "update", Table: "Port", Where: byName("Port", "name", port(i)),
			Row: ovsdb.Row{"up": ovsdb.OvsSet{GoSet: []any{r.Intn(2) == 0}}, "chassis": ovsdb.OvsSet{GoSet: []any{"hv9"}}}})
	case k < 85: // the orchestrator deletes the port, or adds it back
		if present[i] {
			w.nb(t, "none", "port-del", port(i))
		} else {
			w.nb(t, "none", "port-add", "x", port(i), fmt.Sprintf("02:00:00:00:09:%02x", i), fmt.Sprintf("10.9.0.%d", 10+i))
		}
		present[i] = !present[i]
	case k < 92: // a host dies
		w.stopBeating(h)
	default: // and comes back
		w.mu.Lock()
		w.beating[h] = true
		w.mu.Unlock()
	}
}

// settled waits, for less than a full pass's period, until the
// databases show what a full pass decides.
func settled(t *testing.T, w *world, nb *ops.Session, hosts []string) {
	t.Helper()
	testenv.Eventually(t, 3*time.Second, "the decisions of a full pass", func() error {
		pbs := map[string]*sbdb.PortBinding{}
		for _, pb := range ops.Rows[sbdb.PortBinding](w.sb) {
			pbs[pb.LogicalPort] = pb
		}
		for _, p := range ops.Rows[nbdb.Port](nb) {
			var up *bool
			var ch *string
			if pb := pbs[p.Name]; pb != nil {
				u := pb.Chassis != nil && pb.Up != nil && *pb.Up
				up, ch = &u, pb.Chassis
			}
			if fmt.Sprint(deref(p.Up), deref(p.Chassis)) != fmt.Sprint(deref(up), deref(ch)) {
				return fmt.Errorf("port %s shows up=%v chassis=%v, its binding says %v %v", p.Name, deref(p.Up), deref(p.Chassis), deref(up), deref(ch))
			}
		}
		claimers := map[string][]string{}
		for _, c := range ops.Rows[sbdb.ChassisPrivate](w.sb) {
			if c.Alive != nil && *c.Alive {
				for _, name := range c.Claims {
					claimers[name] = append(claimers[name], c.Name)
				}
			}
		}
		for name, cs := range claimers {
			pb := pbs[name]
			if pb == nil || pb.RequestedChassis != nil {
				continue
			}
			if pb.Chassis == nil || !slices.Contains(cs, *pb.Chassis) {
				return fmt.Errorf("port %s, claimed by live %v, is bound to %v", name, cs, deref(pb.Chassis))
			}
		}
		for name, pb := range pbs {
			if a := alive(w, deref(pb.Chassis).(string)); pb.Chassis != nil && pb.Up != nil && *pb.Up && (a == nil || !*a) {
				return fmt.Errorf("port %s is up on dead %s", name, *pb.Chassis)
			}
		}
		return nil
	})
}

func deref[T any](p *T) any {
	if p == nil {
		return "-"
	}
	return *p
}
