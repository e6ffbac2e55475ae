package northd

import (
	"context"
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema/nbdb"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// groupedNB is bulkNB's VPC with its ports spread over groups groups of
// ten ingress rules each, as the security group benchmark declares them
// (tests/bench/sgprop.go); the last group is web.
func groupedNB(ports, groups int) (*fakeNB, *nbdb.SecurityGroup) {
	nb := bulkNB(ports)
	var vpc *nbdb.VPC
	for _, m := range nb.rows[nbdb.VPCTable] {
		vpc = m.(*nbdb.VPC)
	}
	var sgs []*nbdb.SecurityGroup
	for g := 0; g <= groups; g++ {
		sg := &nbdb.SecurityGroup{UUID: nb.uuid(), Name: fmt.Sprintf("g%d", g)}
		for r := 0; r < 10 && g < groups; r++ {
			lo, cidr := 1000+r, fmt.Sprintf("10.%d.0.0/16", g)
			rule := &nbdb.SecurityGroupRule{UUID: nb.uuid(), Direction: "ingress", Protocol: "tcp", PortMin: &lo, PortMax: &lo, RemoteCidr: &cidr}
			nb.put(nbdb.SecurityGroupRuleTable, rule)
			sg.Rules = append(sg.Rules, rule.UUID)
		}
		nb.put(nbdb.SecurityGroupTable, sg)
		vpc.SecurityGroups = append(vpc.SecurityGroups, sg.UUID)
		sgs = append(sgs, sg)
	}
	nb.put(nbdb.VPCTable, vpc)
	i := 0
	for _, m := range nb.rows[nbdb.PortTable] {
		p := m.(*nbdb.Port)
		p.SecurityGroups = []string{sgs[i%groups].UUID}
		i++
	}
	sgs[groups].Name = "web"
	return nb, sgs[groups]
}

// compiledFrom is a compiler that has compiled nb whole, with the
// southbound's SB_Global known, and written nothing yet.
func compiledFrom(nb *fakeNB) *compiler {
	n := newCompiler()
	n.sb.global = &sbdb.SBGlobal{UUID: "00000000-0000-4000-8000-00000000ffff"}
	n.pendingNB = nb.all()
	n.run(true)
	return n
}

// runAndWrite runs n's engine and writes the result to sb, as the
// daemon's runOnce does (its statuses are the caller's).
func runAndWrite(tb testing.TB, n *compiler, sb ops.Transactor) {
	tb.Helper()
	n.run(false)
	if _, err := n.writeSB(context.Background(), sb, n.out, 1, 20000); err != nil {
		tb.Fatal(err)
	}
}

// addPingRule adds an ingress ICMP rule to web and returns the rule.
func addPingRule(nb *fakeNB, web *nbdb.SecurityGroup) *nbdb.SecurityGroupRule {
	rule, cidr := &nbdb.SecurityGroupRule{UUID: nb.uuid(), Direction: "ingress", Protocol: "icmp"}, "0.0.0.0/0"
	rule.RemoteCidr = &cidr
	nb.put(nbdb.SecurityGroupRuleTable, rule)
	sg := *web
	sg.Rules = append(slices.Clone(web.Rules), rule.UUID)
	nb.put(nbdb.SecurityGroupTable, &sg)
	return rule
}

// BenchmarkRuleChange is northd's part of a security group rule added to
// (then removed from) a group of an 8,000-port VPC with 100 groups of ten
// rules: compiling it and writing the southbound and the statuses (to a
// southbound that answers without a server), as the propagation
// benchmark measures end to end.
func BenchmarkRuleChange(b *testing.B) {
	nb, web := groupedNB(8000, 100)
	n := compiledFrom(nb)
	step := func() {
		runAndWrite(b, n, &answeringSB{})
		nb.writeStatuses(n)
		n.consumed()
		// northd reads back the statuses it wrote, as the daemon does
		n.pendingNB = nb.drain()
		runAndWrite(b, n, &answeringSB{})
		n.consumed()
		runtime.KeepAlive(n)
	}
	step()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rule := addPingRule(nb, web)
		n.pendingNB = nb.drain()
		step()
		nb.put(nbdb.SecurityGroupTable, web)
		nb.del(nbdb.SecurityGroupRuleTable, rule.UUID)
		n.pendingNB = nb.drain()
		step()
	}
}

// recordingSB answers as answeringSB does and keeps the operations.
type recordingSB struct {
	answeringSB
	txn []ovsdb.Operation
}

func (f *recordingSB) Transact(ctx context.Context, txn ...ovsdb.Operation) ([]ovsdb.OperationResult, error) {
	f.txn = append(f.txn, txn...)
	return f.answeringSB.Transact(ctx, txn...)
}

// A rule added to a group rebuilds and compares only the sg stages of
// its VPC's routing datapath, not the VPC's and its vxnets' every flow,
// and writes one flow; the southbound's echo of that write marks nothing
// to compare again, while a flow somebody else changed does.
func TestRuleChangeComparesOnlyItsStages(t *testing.T) {
	nb, web := groupedNB(300, 4)
	n := compiledFrom(nb)
	runAndWrite(t, n, &answeringSB{})
	n.consumed()
	nb.writeStatuses(n)
	n.pendingNB = nb.drain()
	n.run(false)
	n.consumed()

	rule := addPingRule(nb, web)
	n.pendingNB = nb.drain()
	n.run(false)
	want := map[string]map[string]bool{"vpc:bench": {"sg_egress": true, "sg_ingress": true}}
	if len(n.out.flowDPs) != 0 || !reflect.DeepEqual(n.out.flowStages, want) {
		t.Fatalf("compared whole: %v, by stage: %v; want only %v", n.out.flowDPs, n.out.flowStages, want)
	}
	rec := &recordingSB{}
	if _, err := n.writeSB(context.Background(), rec, n.out, 1, 20000); err != nil {
		t.Fatal(err)
	}
	n.consumed()
	var inserted []string
	for _, op := range rec.txn {
		if op.Table == sbdb.LogicalFlowTable {
			inserted = append(inserted, fmt.Sprintf("%s %v", op.Op, op.Row["match"]))
		}
	}
	if len(inserted) != 1 || !strings.Contains(inserted[0], "icmp4") {
		t.Fatalf("flow operations %v, want the new rule's insert", inserted)
	}

	// The statuses northd writes come back: nothing is compiled again.
	nb.writeStatuses(n)
	n.pendingNB = nb.drain()
	if len(n.pendingNB.Table(nbdb.SecurityGroupRuleTable)) == 0 {
		t.Fatal("the new rule's status was not written")
	}
	topo := n.topo
	n.run(false)
	if n.topo != topo {
		t.Fatal("a rule's status read back compiled the topology again")
	}
	if !n.out.nbSGRule[rule.UUID] {
		t.Fatal("a rule's status read back is not compared")
	}
	n.consumed()

	var u string
	for uuid, f := range n.sb.lfByUUID {
		if strings.Contains(f.Match, "icmp4") && f.Stage == "sg_ingress" && strings.Contains(f.Match, "web") {
			u = uuid
		}
	}
	echo := *n.sb.lfByUUID[u]
	n.pendingSB = ops.Changes{Tables: map[string]map[string]*ops.Change{sbdb.LogicalFlowTable: {u: {UUID: u, New: &echo}}}}
	n.run(false)
	if len(n.out.flowDPs)+len(n.out.flowStages) != 0 {
		t.Fatalf("northd's own write read back marks %v %v to compare", n.out.flowDPs, n.out.flowStages)
	}
	n.consumed()
	edited := echo
	edited.Actions = "next;"
	n.pendingSB = ops.Changes{Tables: map[string]map[string]*ops.Change{sbdb.LogicalFlowTable: {u: {UUID: u, Old: &echo, New: &edited}}}}
	n.run(false)
	if !n.out.flowDPs["vpc:bench"] {
		t.Fatalf("a flow changed by somebody else is not compared again: %v", n.out.flowDPs)
	}
}
