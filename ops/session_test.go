package ops_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"

	"github.com/courier-sdn/courier/internal/testenv"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema/nbdb"
)

// A daemon reopens sessions after every failure; a closed session must
// leave nothing behind (goroutines, caches).
func TestClosedSessionsLeaveNothing(t *testing.T) {
	dbs := testenv.StartDBs(t)
	m, _ := nbdb.FullDatabaseModel()
	open := func() {
		tr := ops.NewTracker()
		s, err := ops.Open(context.Background(), m, ops.SessionOptions{Remotes: []string{dbs.NB}, Tracker: tr,
			EchoInterval: time.Second, Monitor: []client.MonitorOption{client.WithTable(&nbdb.NBGlobal{})}})
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		<-s.Done()
	}
	open()
	time.Sleep(200 * time.Millisecond)
	before := runtime.NumGoroutine()
	for i := 0; i < 20; i++ {
		open()
	}
	var after int
	for i := 0; i < 50; i++ {
		time.Sleep(100 * time.Millisecond)
		if after = runtime.NumGoroutine(); after <= before+2 {
			return
		}
	}
	buf := make([]byte, 1<<20)
	n := runtime.Stack(buf, true)
	t.Fatalf("goroutines grew from %d to %d over 20 closed sessions:\n%s", before, after, buf[:n])
}
