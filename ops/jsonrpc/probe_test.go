package jsonrpc

import (
	"net"
	"testing"
	"time"
)

// A server busy with a big commit answers nobody for seconds (issue #20):
// it is probed after one interval of silence and given up only after
// ProbeSilence intervals.
func TestProbeVerdict(t *testing.T) {
	const iv = 5 * time.Second
	for _, c := range []struct {
		silent     time.Duration
		echo, dead bool
	}{
		{0, false, false},
		{iv - time.Millisecond, false, false},
		{iv, true, false},
		{2 * iv, true, false},
		{ProbeSilence*iv - time.Millisecond, true, false},
		{ProbeSilence * iv, true, true},
	} {
		echo, dead := ProbeVerdict(c.silent, iv)
		if echo != c.echo || dead != c.dead {
			t.Errorf("silent %v: echo %v dead %v, want %v %v", c.silent, echo, dead, c.echo, c.dead)
		}
	}
}

// Bytes of a message still arriving count as liveness: a server streaming
// a 256,000-row update to this connection is not silent, though no whole
// message (and no echo reply) has arrived yet.
func TestPartOfAMessageCountsAsLiveness(t *testing.T) {
	client, server := net.Pipe()
	defer server.Close()
	r := newRPCConn(client, nil)
	defer r.conn.Close()
	long := time.Now().Add(-time.Hour)
	r.received.Store(long.UnixNano())
	if s := r.silentFor(time.Now()); s < time.Hour {
		t.Fatalf("silent for %v after being set an hour back", s)
	}
	// net.Pipe's Write returns once the reader has the bytes.
	if _, err := server.Write([]byte(`{"id":null,"method":"update","params":["x",{"T":{"u":{"new":{"s":"`)); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); r.silentFor(time.Now()) >= time.Hour; {
		if time.Now().After(deadline) {
			t.Fatal("bytes of an unfinished message did not count as a receipt")
		}
		time.Sleep(time.Millisecond)
	}
}
