package jsonrpc_test

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/courier-sdn/courier/internal/testenv"
	"github.com/courier-sdn/courier/ops/jsonrpc"
	"github.com/courier-sdn/courier/schema"
)

// Counting any byte as liveness must not keep a hung server's lock: a
// frozen server (its connections open, nothing sent) is given up after
// ProbeSilence intervals, so a standby can take over, and the lock is
// taken again once it answers.
func TestFrozenServerLosesTheLock(t *testing.T) {
	dbs := testenv.StartDBs(t)
	l := jsonrpc.NewLockSession([]string{dbs.SB}, nil, schema.SBName, "probe_test", 100*time.Millisecond, testenv.Logger(t))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go l.Run(ctx)
	held := func(want bool) func() error {
		return func() error {
			if l.Held() != want {
				return errors.New("not yet")
			}
			return nil
		}
	}
	testenv.Eventually(t, 10*time.Second, "the lock taken", held(true))
	pid := dbs.ServerPID("sb")
	if pid == 0 {
		t.Fatal("no southbound server")
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGCONT) })
	testenv.Eventually(t, 10*time.Second, "the lock given up while the server is frozen", held(false))
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "the lock taken again", held(true))
}
