package northd

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema/nbdb"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// fakeSBFlows is the southbound's Logical_Flow table as the monitor shows
// it: what northd's writes committed (read from the view's write-through,
// answeringSB commits everything it is sent) and what somebody else
// changed. Its changes come back to northd as monitor updates.
type fakeSBFlows struct {
	rows    map[string]*sbdb.LogicalFlow
	pending ops.Changes
}

func (f *fakeSBFlows) set(u string, now *sbdb.LogicalFlow) {
	old := f.rows[u]
	if now == nil {
		if old == nil {
			return
		}
		delete(f.rows, u)
	} else {
		cp := *now
		cp.ExternalIDs = maps.Clone(now.ExternalIDs)
		now = &cp
		f.rows[u] = now
	}
	c := &ops.Change{UUID: u}
	if old != nil {
		c.Old = old
	}
	if now != nil {
		c.New = now
	}
	// as northd's southbound tracker does (daemon.go)
	f.pending.Merge(ops.Changes{KeepBrief: true, Tables: map[string]map[string]*ops.Change{sbdb.LogicalFlowTable: {u: c}}})
}

// committed folds what a write did to the view into the table.
func (f *fakeSBFlows) committed(before map[string]*sbdb.LogicalFlow, v *sbView) {
	for u, was := range before {
		if v.lfByUUID[u] == nil && was != nil {
			f.set(u, nil)
		}
	}
	for u, now := range v.lfByUUID {
		if before[u] != now {
			f.set(u, now)
		}
	}
}

func (f *fakeSBFlows) drain() ops.Changes {
	c := f.pending
	f.pending = ops.Changes{}
	return c
}

// failingSB answers as answeringSB does until its budget of
// transactions is spent, then fails every transaction.
type failingSB struct {
	answeringSB
	left int
}

func (f *failingSB) Transact(ctx context.Context, txn ...ovsdb.Operation) ([]ovsdb.OperationResult, error) {
	if f.left <= 0 {
		return nil, errors.New("connection reset")
	}
	f.left--
	return f.answeringSB.Transact(ctx, txn...)
}

// sbFlowLines renders the flows a table holds, by datapath name.
func sbFlowLines(rows map[string]*sbdb.LogicalFlow, v *sbView) string {
	var lines []string
	for _, f := range rows {
		lines = append(lines, fmt.Sprintf("lf %s %s %d %s -> %s", v.dpName(f.Datapath), f.Stage, f.Priority, f.Match, f.Actions))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func wantFlowLines(n *compiler) string {
	var lines []string
	for dp, fs := range n.flows.byDP {
		if n.desiredDP(dp) == nil {
			continue
		}
		for _, f := range fs {
			lines = append(lines, fmt.Sprintf("lf %s %s %d %s -> %s", dp, f.stage, f.priority, f.match, f.actions))
		}
	}
	sort.Strings(lines)
	return strings.Join(slices.Compact(lines), "\n") // flows alike are one row
}

// The southbound a random sequence of changes is written to, run by run
// (flows read back through the monitor, some flows changed by somebody
// else, some writes failing and retried as the daemon does, some group
// statuses overwritten by an operator), ends up holding exactly what a
// fresh compile of the same northbound wants: a stage-filtered compare,
// an echo taken for northd's own or a status read back without a compile
// leaves nothing stale.
func TestIncrementalWritesEqualFull(t *testing.T) {
	ctx := context.Background()
	for seed := int64(1); seed <= 60; seed++ {
		r := rand.New(rand.NewSource(seed))
		nb := newFakeNB()
		g := &generator{r: r, nb: nb}
		db := &fakeSBFlows{rows: map[string]*sbdb.LogicalFlow{}}
		inc := newCompiler()
		inc.sb.global = &sbdb.SBGlobal{UUID: "00000000-0000-4000-8000-00000000ffff"}
		inc.pendingNB = nb.drain()
		needFull := true
		var sb answeringSB
		step := func() {
			inc.pendingSB.Merge(db.drain())
			inc.run(needFull)
			var tx ops.Transactor = &sb
			if r.Intn(15) == 0 {
				tx = &failingSB{answeringSB: sb, left: r.Intn(2)}
			}
			before := maps.Clone(inc.sb.lfByUUID)
			_, err := inc.writeSB(ctx, tx, inc.out, 1, 1+r.Intn(40))
			if fs, ok := tx.(*failingSB); ok {
				sb = fs.answeringSB // keep the UUIDs it handed out unique
			}
			db.committed(before, inc.sb)
			if err != nil {
				needFull = true // daemon.go: compare everything on the next run
				return
			}
			nb.groupsDirty = inc.out
			nb.writeStatuses(inc)
			inc.consumed()
			needFull = false
		}
		step()
		for i := 0; i < 150; i++ {
			for j := 0; j < 1+r.Intn(3); j++ {
				g.step()
			}
			switch r.Intn(12) {
			case 0: // somebody else edits, deletes or adds a flow
				var us []string
				for u := range db.rows {
					us = append(us, u)
				}
				sort.Strings(us)
				if len(us) > 0 {
					u := us[r.Intn(len(us))]
					f := *db.rows[u]
					switch r.Intn(3) {
					case 0:
						f.Actions = "drop;"
						db.set(u, &f)
					case 1:
						if c := db.pending.Table(sbdb.LogicalFlowTable)[u]; c != nil && c.Old == nil {
							// a row whose insert has not been read back yet:
							// TestFlowDeletedBeforeItsEchoIsRestored
							break
						}
						db.set(u, nil)
					default:
						f.Match += " && 1"
						f.UUID = fmt.Sprintf("ffffffff-%04d-4000-8000-000000000000", i)
						db.set(f.UUID, &f)
					}
				}
			case 2: // a VPC renamed, opened or closed with its groups in one batch
				if _, m := g.pick(nbdb.VPCTable); m != nil {
					vpc := *m.(*nbdb.VPC)
					vpc.Name = fmt.Sprintf("renamed%d", i)
					open := r.Intn(2) == 0
					vpc.Open = &open
					g.nb.put(nbdb.VPCTable, &vpc)
					g.groupStep()
				}
			case 1: // an operator overwrites a group's or a rule's status
				if _, m := g.pick(nbdb.SecurityGroupRuleTable); m != nil {
					row := *m.(*nbdb.SecurityGroupRule)
					row.Status = map[string]string{"state": "ok", "by": "operator"}
					nb.put(nbdb.SecurityGroupRuleTable, &row)
				}
				if _, m := g.pick(nbdb.SecurityGroupTable); m != nil {
					row := *m.(*nbdb.SecurityGroup)
					row.Status = map[string]string{"state": "error", "error": "operator"}
					nb.put(nbdb.SecurityGroupTable, &row)
				}
			}
			inc.pendingNB.Merge(nb.drain())
			step()
		}
		// Let the writes and statuses come back, with no failure.
		for range 3 {
			inc.pendingNB.Merge(nb.drain())
			inc.pendingSB.Merge(db.drain())
			inc.run(needFull)
			before := maps.Clone(inc.sb.lfByUUID)
			if _, err := inc.writeSB(ctx, &sb, inc.out, 1, 20000); err != nil {
				t.Fatal(err)
			}
			db.committed(before, inc.sb)
			nb.groupsDirty = inc.out
			nb.writeStatuses(inc)
			inc.consumed()
			needFull = false
		}

		full := newCompiler()
		full.pendingNB = nb.all()
		full.run(true)
		if a, b := sbFlowLines(db.rows, inc.sb), wantFlowLines(full); a != b {
			t.Fatalf("seed %d: the southbound's flows are not what a full compile wants:\n%s", seed, diffLines(a, b))
		}
		for u, m := range nb.rows[nbdb.SecurityGroupRuleTable] {
			if want := full.sgRuleStatus(u); want != nil && !reflect.DeepEqual(m.(*nbdb.SecurityGroupRule).Status, want) {
				t.Fatalf("seed %d: rule %s has status %v, want %v", seed, u, m.(*nbdb.SecurityGroupRule).Status, want)
			}
		}
		for u, m := range nb.rows[nbdb.SecurityGroupTable] {
			if want := full.sgStatus(u); want != nil && !reflect.DeepEqual(m.(*nbdb.SecurityGroup).Status, want) {
				t.Fatalf("seed %d: group %s has status %v, want %v", seed, u, m.(*nbdb.SecurityGroup).Status, want)
			}
		}
	}
}

// A flow northd inserted and somebody else deleted before the monitor
// delivered the insert reaches northd as nothing at all (ops.Changes.Merge
// drops a row inserted and deleted in one batch), while the view took the
// row when the write committed: northd believes the flow is there and
// never writes it again, until a full compare (a takeover, a failed
// write).
func TestFlowDeletedBeforeItsEchoIsRestored(t *testing.T) {
	ctx := context.Background()
	nb, _ := groupedNB(10, 1)
	n := compiledFrom(nb)
	db := &fakeSBFlows{rows: map[string]*sbdb.LogicalFlow{}}
	var sb answeringSB
	write := func() {
		before := maps.Clone(n.sb.lfByUUID)
		if _, err := n.writeSB(ctx, &sb, n.out, 1, 20000); err != nil {
			t.Fatal(err)
		}
		db.committed(before, n.sb)
		n.consumed()
	}
	write()
	// The inserts are still on their way when somebody deletes one.
	us := slices.Sorted(maps.Keys(db.rows))
	db.set(us[len(us)/2], nil)
	for range 3 {
		n.pendingSB = db.drain()
		n.run(false)
		write()
	}
	if a, b := sbFlowLines(db.rows, n.sb), wantFlowLines(n); a != b {
		t.Fatalf("the southbound's flows are not what northd wants:\n%s", diffLines(a, b))
	}
}

// Two rules of a group alike compile to two flows with one key
// (sg_ingress, 100, the match). Both were inserted, and the view, which
// indexes a datapath's flows by key, kept only the second: once the rules
// were deleted the first stayed in the southbound, allowing what no rule
// allows any more, and deleting its datapath (a VPC renamed) failed on
// the flow's strong reference at every retry.
func TestRulesAlikeLeaveNoFlowBehind(t *testing.T) {
	ctx := context.Background()
	nb, web := groupedNB(10, 1)
	cidr, port := "0.0.0.0/0", 22
	var twins []string
	for range 2 {
		r := &nbdb.SecurityGroupRule{UUID: nb.uuid(), Direction: "ingress", Protocol: "tcp", PortMin: &port, PortMax: &port, RemoteCidr: &cidr}
		nb.put(nbdb.SecurityGroupRuleTable, r)
		twins = append(twins, r.UUID)
	}
	sg := *web
	sg.Rules = append(slices.Clone(web.Rules), twins...)
	nb.put(nbdb.SecurityGroupTable, &sg)
	n := compiledFrom(nb)
	db := &fakeSBFlows{rows: map[string]*sbdb.LogicalFlow{}}
	var sb answeringSB
	write := func() {
		t.Helper()
		before := maps.Clone(n.sb.lfByUUID)
		if _, err := n.writeSB(ctx, &sb, n.out, 1, 20000); err != nil {
			t.Fatal(err)
		}
		db.committed(before, n.sb)
		n.consumed()
		n.pendingSB = db.drain()
		n.run(false)
		n.consumed()
	}
	write()
	nb.put(nbdb.SecurityGroupTable, web)
	for _, u := range twins {
		nb.del(nbdb.SecurityGroupRuleTable, u)
	}
	n.pendingNB = nb.drain()
	n.run(false)
	write()
	for _, f := range db.rows {
		if strings.Contains(f.Match, "tcp.dst == 22") {
			t.Fatalf("a flow of the rules deleted is still in the southbound: %s %s", f.Stage, f.Match)
		}
	}
}

// Two rows of one flow already in the southbound (written by a northd
// before flows alike were one row) reach the view as the monitor
// delivers them; one displaces the other from the view's index, and the
// next write deletes the displaced one rather than leaving a row no
// compare would ever reach.
func TestTwinFlowsInTheSouthboundAreDeleted(t *testing.T) {
	ctx := context.Background()
	nb, _ := groupedNB(10, 1)
	n := compiledFrom(nb)
	var sb answeringSB
	if _, err := n.writeSB(ctx, &sb, n.out, 1, 20000); err != nil {
		t.Fatal(err)
	}
	n.consumed()
	var one *sbdb.LogicalFlow
	for _, f := range n.sb.lfByUUID {
		if f.Stage == "sg_ingress" && f.Priority == 100 {
			one = f
		}
	}
	twin := *one
	twin.UUID = "00000000-0000-4000-8000-0000000000aa"
	n.pendingSB = ops.Changes{Tables: map[string]map[string]*ops.Change{sbdb.LogicalFlowTable: {twin.UUID: {UUID: twin.UUID, New: &twin}}}}
	n.run(false)
	rec := &recordingSB{}
	if _, err := n.writeSB(ctx, rec, n.out, 1, 20000); err != nil {
		t.Fatal(err)
	}
	n.consumed()
	deleted := map[string]bool{}
	for _, op := range rec.txn {
		if op.Table == sbdb.LogicalFlowTable && op.Op == ovsdb.OperationDelete {
			for _, c := range op.Where {
				if u, ok := c.Value.(ovsdb.UUID); ok {
					deleted[u.GoUUID] = true
				}
			}
		}
	}
	if len(deleted) != 1 || !(deleted[one.UUID] || deleted[twin.UUID]) {
		t.Fatalf("deleted %v, want one of the twins %s, %s", deleted, one.UUID, twin.UUID)
	}
	if len(n.sb.twins) != 0 || len(rec.txn) == 0 {
		t.Fatalf("twins left in the view: %v", n.sb.twins)
	}
	rec.txn = nil
	if _, err := n.writeSB(ctx, rec, n.out, 1, 20000); err != nil || len(rec.txn) != 0 {
		t.Fatalf("a write after the twin went sends %v (%v)", rec.txn, err)
	}
}
