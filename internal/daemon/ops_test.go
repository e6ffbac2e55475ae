package daemon

import (
	"context"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/urfave/cli/v2"
)

func flagsContext(t *testing.T, args ...string) *cli.Context {
	set := flag.NewFlagSet("t", flag.ContinueOnError)
	for _, f := range LogFlags() {
		if err := f.Apply(set); err != nil {
			t.Fatal(err)
		}
	}
	if err := set.Parse(args); err != nil {
		t.Fatal(err)
	}
	return cli.NewContext(cli.NewApp(), set, nil)
}

// --log-format json writes one JSON record a line to --log-file, and
// SIGHUP makes the daemon write to a fresh file where logrotate moved
// the old one away.
func TestLogFileJSONAndReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "d.log")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log, err := OpenLog(ctx, flagsContext(t, "--log-format", "json", "--log-file", path), "test")
	if err != nil {
		t.Fatal(err)
	}
	log.Info("first", "n", 1)
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	deadline := time.Now().Add(5 * time.Second)
	for {
		log.Info("second")
		if b, _ := os.ReadFile(path); strings.Contains(string(b), "second") || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	old, _ := os.ReadFile(path + ".1")
	var rec map[string]any
	if err := json.Unmarshal([]byte(strings.SplitN(string(old), "\n", 2)[0]), &rec); err != nil || rec["msg"] != "first" || rec["component"] != "test" {
		t.Errorf("rotated file: %q (%v)", old, err)
	}
	cur, _ := os.ReadFile(path)
	if !strings.Contains(string(cur), `"msg":"second"`) {
		t.Errorf("SIGHUP did not reopen the log file: %q", cur)
	}
}

// /readyz answers 503 until the daemon's session is established, and
// /healthz answers as long as the daemon runs.
func TestHealthEndpoints(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := &Health{}
	reg := NewRegistry()
	RegisterBuildInfo(reg, "test")
	if err := ServeMetrics(ctx, addr, reg, h, slogDiscard()); err != nil {
		t.Fatal(err)
	}
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz: %d", code)
	}
	if code, _ := get("/readyz"); code != 503 {
		t.Errorf("/readyz before the session: %d", code)
	}
	established := make(chan struct{})
	go reconnect(WithHealth(ctx, h), slogDiscard(), "test", func(ctx context.Context, up func()) error {
		up()
		close(established)
		<-ctx.Done()
		return nil
	}, nil, newBackoff(), sleep)
	<-established
	if code, _ := get("/readyz"); code != 200 {
		t.Errorf("/readyz with the session up: %d", code)
	}
	if _, body := get("/metrics"); !strings.Contains(body, `courier_build_info{component="test"`) {
		t.Errorf("/metrics lacks courier_build_info")
	}
}

func slogDiscard() *slog.Logger { return slog.New(slog.DiscardHandler) }
