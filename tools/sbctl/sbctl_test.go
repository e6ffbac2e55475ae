package sbctl_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/courier-sdn/courier/internal/testenv"
	"github.com/courier-sdn/courier/tools/sbctl"
)

// courier-sbctl failed at once while its database was restarting; reading
// is always safe to retry, so it waits within its timeout.
func TestReadWaitsOutARestart(t *testing.T) {
	dbs := testenv.StartDBs(t)
	if err := dbs.StopServer("sb"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		done <- sbctl.Run(context.Background(), dbs.SB, nil, "table", 10*time.Second, []string{"chassis-list"}, &bytes.Buffer{})
	}()
	time.Sleep(300 * time.Millisecond)
	if err := dbs.StartServer(t.Context(), "sb"); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	if err := <-done; err != nil {
		t.Fatalf("chassis-list across a restart: %v", err)
	}
	t.Logf("answered %v after the server was back (%v after the call)", time.Since(back).Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}
