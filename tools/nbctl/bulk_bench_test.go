package nbctl_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/courier-sdn/courier/internal/testenv"
	"github.com/courier-sdn/courier/tools/nbctl"
)

// BenchmarkBulkChain: one chain of 2,000 port-adds over 253 vxnets, as
// the bench's bulk load sends them (in-process: no process start).
func BenchmarkBulkChain(b *testing.B) {
	db := testenv.StartDBs(b).NB
	args := []string{"init", "--", "vpc-add", "v"}
	for vx := 0; vx < 253; vx++ {
		args = append(args, "--", "vxnet-add", "v", fmt.Sprintf("x%d", vx), fmt.Sprintf("10.%d.%d.0/22", vx>>6, (vx&63)<<2))
	}
	o := nbctl.Options{DB: db, Wait: "none", Format: "table", LeaderOnly: true, Timeout: 60 * time.Second}
	if err := nbctl.Run(context.Background(), o, args, &bytes.Buffer{}); err != nil {
		b.Fatal(err)
	}
	chains := make([][]string, b.N)
	for i := range chains {
		for p := i * 2000; p < (i+1)*2000; p++ {
			vx, h := p%253, 2+p/253
			chains[i] = append(chains[i], "--", "port-add", fmt.Sprintf("x%d", vx), fmt.Sprintf("p%d", p),
				fmt.Sprintf("02:01:%02x:00:%02x:%02x", vx, h>>8, h&255), fmt.Sprintf("10.%d.%d.%d", vx>>6, (vx&63)<<2+h>>8, h&255))
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := nbctl.Run(context.Background(), o, chains[i][1:], &bytes.Buffer{}); err != nil {
			b.Fatal(err)
		}
	}
}
