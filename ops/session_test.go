package ops_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
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

// A session whose connection dropped just as Open returned never ended:
// libovsdb's disconnect notice is a send that nobody receives if the
// session's watcher is not waiting yet, so the loss went unnoticed until
// the echo probe, 5 s later (a hostd missed a database restart that way).
// A proxy closes each connection right after passing the monitor's reply.
func TestSessionLostAsOpenReturnsEnds(t *testing.T) {
	dbs := testenv.StartDBs(t)
	proxy := cutAfterMonitor(t, strings.TrimPrefix(dbs.NB, "unix:"))
	m, _ := nbdb.FullDatabaseModel()
	missed, opened := 0, 0
	for range 100 {
		s, err := ops.Open(context.Background(), m, ops.SessionOptions{Remotes: []string{"unix:" + proxy},
			Monitor: []client.MonitorOption{client.WithTable(&nbdb.NBGlobal{})}})
		if err != nil {
			continue // the cut came first: Open failed, which is fine
		}
		opened++
		select {
		case <-s.Done():
		case <-time.After(500 * time.Millisecond):
			missed++
		}
		s.Close()
	}
	if opened < 50 {
		t.Fatalf("only %d of 100 sessions opened before the cut", opened)
	}
	if missed > 0 {
		t.Errorf("%d of %d sessions whose connection was cut did not end", missed, opened)
	}
}

// cutAfterMonitor proxies to the server at socket and closes each
// connection right after passing on the answer to a monitor request.
func cutAfterMonitor(t *testing.T, socket string) string {
	path := filepath.Join(testenv.RunDir(t), "cut.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("unix", socket)
			if err != nil {
				c.Close()
				continue
			}
			var monitorID atomic.Pointer[string]
			go pipeJSON(c, s, func(id string, msg []byte) bool {
				if bytes.Contains(msg, []byte(`"monitor`)) && bytes.Contains(msg, []byte(`"NB_Global"`)) {
					monitorID.Store(&id)
				}
				return true
			})
			go pipeJSON(s, c, func(id string, _ []byte) bool {
				p := monitorID.Load()
				return p == nil || *p != id
			})
		}
	}()
	return path
}

// pipeJSON copies JSON-RPC messages from src to dst; when more says
// false, it copies that message and closes both.
func pipeJSON(src, dst net.Conn, more func(id string, msg []byte) bool) {
	defer src.Close()
	defer dst.Close()
	dec := json.NewDecoder(src)
	for {
		var msg json.RawMessage
		if err := dec.Decode(&msg); err != nil {
			return
		}
		var head struct {
			ID json.RawMessage `json:"id"`
		}
		json.Unmarshal(msg, &head)
		last := !more(string(head.ID), msg)
		if _, err := dst.Write(msg); err != nil || last {
			return
		}
	}
}
