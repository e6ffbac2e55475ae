package northd_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/internal/testenv"
	"github.com/courier-sdn/courier/northd"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema"
	"github.com/courier-sdn/courier/schema/nbdb"
)

// BenchmarkBulkLoad loads one VPC with 253 vxnets and 64,000 ports into a
// real northbound and times northd's run that writes it to a real
// southbound. Use it with -cpuprofile to see where a bulk load goes;
// make bench measures the same thing from outside the process.
func BenchmarkBulkLoad(b *testing.B) {
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dbs := testenv.StartDBs(b)
		runs := make(chan northd.RunStats, 100)
		d := northd.New(northd.Config{NB: []string{dbs.NB}, SB: []string{dbs.SB}, Log: testenv.Logger(b), OnRun: func(a bool, st northd.RunStats) {
			if a && st.SBTxns > 1 {
				runs <- st
			}
		}})
		ctx, cancel := context.WithCancel(context.Background())
		go d.Run(ctx)
		m, _ := nbdb.FullDatabaseModel()
		s, err := ops.Open(ctx, m, ops.SessionOptions{Remotes: []string{dbs.NB}, Monitor: []client.MonitorOption{client.WithTable(&nbdb.NBGlobal{})}})
		if err != nil {
			b.Fatal(err)
		}
		txn := []ovsdb.Operation{{Op: "insert", Table: "VPC", UUIDName: "vpc", Row: ovsdb.Row{"name": "bench"}}}
		refs := make([][]any, 253)
		for p := 0; p < 64000; p++ {
			vx, host := p%253, 2+p/253
			txn = append(txn, ovsdb.Operation{Op: "insert", Table: "Port", UUIDName: "pt" + strconv.Itoa(p), Row: ovsdb.Row{
				"name": fmt.Sprintf("p%d", p), "mac": fmt.Sprintf("02:00:%02x:%02x:%02x:%02x", vx>>8, vx&255, host>>8, host&255),
				"ips": fmt.Sprintf("10.%d.%d.%d", vx>>8, vx&255, host), "mac_key": schema.NewScope(), "ip_key": schema.NewScope()}})
			refs[vx] = append(refs[vx], ovsdb.UUID{GoUUID: "pt" + strconv.Itoa(p)})
		}
		var vxRefs []any
		for i := 0; i < 253; i++ {
			txn = append(txn, ovsdb.Operation{Op: "insert", Table: "Vxnet", UUIDName: fmt.Sprintf("vx%d", i), Row: ovsdb.Row{
				"name": fmt.Sprintf("x%d", i), "cidr": fmt.Sprintf("10.%d.%d.0/24", i>>8, i&255), "ports": ovsdb.OvsSet{GoSet: refs[i]}}})
			vxRefs = append(vxRefs, ovsdb.UUID{GoUUID: fmt.Sprintf("vx%d", i)})
		}
		txn = append(txn, ovsdb.Operation{Op: "mutate", Table: "VPC", Where: []ovsdb.Condition{{Column: "_uuid", Function: "==", Value: ovsdb.UUID{GoUUID: "vpc"}}},
			Mutations: []ovsdb.Mutation{{Column: "vxnets", Mutator: "insert", Value: ovsdb.OvsSet{GoSet: vxRefs}}}})
		time.Sleep(500 * time.Millisecond)
		b.StartTimer()
		if _, err := ops.Transact(ctx, s, txn...); err != nil {
			b.Fatal(err)
		}
		st := <-runs
		b.StopTimer()
		b.ReportMetric(st.Compile.Seconds(), "compile-s")
		b.ReportMetric(st.WriteSB.Seconds(), "write-sb-s")
		b.ReportMetric(float64(st.SBTxns), "sb-txns")
		s.Close()
		cancel()
	}
}
