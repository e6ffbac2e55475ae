package northd

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/ops/jsonrpc"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// answeringSB commits nothing: it encodes each transaction as the lock
// session would and answers every insert with a fresh UUID, so that a
// benchmark of writeSB counts what northd spends on a write and nothing
// of ovsdb-server's work.
type answeringSB struct{ inserts, ops int }

func (f *answeringSB) Transact(_ context.Context, txn ...ovsdb.Operation) ([]ovsdb.OperationResult, error) {
	res := make([]ovsdb.OperationResult, len(txn))
	var b []byte
	var err error
	for i := range txn {
		if b, err = jsonrpc.AppendOperation(b[:0], &txn[i]); err != nil {
			return nil, err
		}
		if txn[i].Op == ovsdb.OperationInsert {
			f.inserts++
			res[i].UUID = ovsdb.UUID{GoUUID: fmt.Sprintf("%08x-0000-4000-8000-000000000000", f.inserts)}
		}
	}
	f.ops += len(txn)
	return res, nil
}

// compiledBulk is a compiler that has compiled 64,000 ports in 253 vxnets
// and written nothing yet.
func compiledBulk() *compiler {
	n := newCompiler()
	n.pendingNB = bulkNB(64000).drain()
	n.run(true)
	n.sb.global = &sbdb.SBGlobal{UUID: "00000000-0000-4000-8000-00000000ffff"}
	return n
}

// BenchmarkWriteSB is northd's side of writing a 64,000-port bulk load to
// the southbound (Insert), and of comparing it all again when nothing
// changed (Compare, as after a takeover): building, encoding and writing
// through to the view, without a server.
func BenchmarkWriteSB(b *testing.B) {
	ctx := context.Background()
	write := func(n *compiler, d *dirtySet) int {
		txns, err := n.writeSB(ctx, &answeringSB{}, d, 1, 20000)
		if err != nil {
			b.Fatal(err)
		}
		// The daemon's compiler outlives every write; here nothing else
		// holds it, and a writer that no longer needs it would let the
		// collector free the compiled state in the middle of the write.
		runtime.KeepAlive(n)
		return txns
	}
	b.Run("Insert", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			n := compiledBulk()
			b.StartTimer()
			write(n, n.out)
		}
	})
	b.Run("Compare", func(b *testing.B) {
		n := compiledBulk()
		write(n, n.out)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			d := newDirtySet()
			d.full = true
			if txns := write(n, d); txns != 0 {
				b.Fatalf("nothing changed, yet %d transactions", txns)
			}
		}
	})
}
