package guest

import (
	"bufio"
	"context"
	"net"
	"testing"
	"time"
)

// QEMU interleaves events with a command's answer; a migration's timing
// reads them (the source's STOP, the destination's RESUME), so they are
// kept, with QEMU's timestamps, rather than skipped.
func TestQMPKeepsEventsAndWaitsForOne(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	q := &QMP{c: client, r: bufio.NewReader(client)}
	go func() {
		defer server.Close()
		r := bufio.NewReader(server)
		r.ReadBytes('\n') // the command
		server.Write([]byte(`{"timestamp": {"seconds": 100, "microseconds": 250}, "event": "STOP"}` + "\n"))
		server.Write([]byte(`{"return": {"status": "completed"}}` + "\n"))
		server.Write([]byte(`{"timestamp": {"seconds": 100, "microseconds": 9000}, "event": "MIGRATION"}` + "\n"))
		server.Write([]byte(`{"timestamp": {"seconds": 101, "microseconds": 500}, "event": "RESUME"}` + "\n"))
	}()
	if _, err := q.Do("query-migrate", nil); err != nil {
		t.Fatal(err)
	}
	ev := q.Events()
	if len(ev) != 1 || ev[0].Name != "STOP" || !ev[0].At.Equal(time.Unix(100, 250_000)) {
		t.Errorf("events %+v, want STOP at 100.000250", ev)
	}
	if len(q.Events()) != 0 {
		t.Error("events are returned twice")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e, err := q.WaitEvent(ctx, "RESUME")
	if err != nil || !e.At.Equal(time.Unix(101, 500_000)) {
		t.Errorf("RESUME %+v, %v", e, err)
	}
}
