package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/urfave/cli/v2"
)

// LogFlags are every daemon's logging options.
func LogFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error"},
		&cli.StringFlag{Name: "log-format", Value: "text", Usage: "text (key=value) or json, one record a line"},
		&cli.StringFlag{Name: "log-file", Usage: "log to `FILE` instead of standard error; SIGHUP reopens it (for logrotate)"},
	}
}

// OpenLog returns the logger LogFlags ask for. With --log-file, the file
// is reopened on SIGHUP until ctx ends, as Open vSwitch's daemons do
// for logrotate; without it SIGHUP is ignored rather than fatal.
func OpenLog(ctx context.Context, cx *cli.Context, component string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(cx.String("log-level"))); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", cx.String("log-level"))
	}
	var w io.Writer = os.Stderr
	if path := cx.String("log-file"); path != "" {
		f, err := openLogFile(path)
		if err != nil {
			return nil, err
		}
		w = f
		// Ask for SIGHUP before returning: a SIGHUP that came before
		// Notify would kill the process (its default action).
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		go f.reopenOnHangup(ctx, hup)
	} else {
		signal.Ignore(syscall.SIGHUP)
	}
	opts := &slog.HandlerOptions{Level: l}
	var h slog.Handler
	switch cx.String("log-format") {
	case "text":
		h = slog.NewTextHandler(w, opts)
	case "json":
		h = slog.NewJSONHandler(w, opts)
	default:
		return nil, fmt.Errorf("--log-format %q: want text or json", cx.String("log-format"))
	}
	return slog.New(h).With("component", component), nil
}

// logFile is a log file that can be reopened under its writers.
type logFile struct {
	path string
	mu   sync.Mutex
	f    *os.File
}

func openLogFile(path string) (*logFile, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("--log-file: %w", err)
	}
	return &logFile{path: path, f: f}, nil
}

func (l *logFile) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Write(p)
}

// reopen opens the path again (logrotate moved the old file away).
func (l *logFile) reopen() error {
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	l.mu.Lock()
	old := l.f
	l.f = f
	l.mu.Unlock()
	return old.Close()
}

func (l *logFile) reopenOnHangup(ctx context.Context, hup chan os.Signal) {
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			if err := l.reopen(); err != nil {
				fmt.Fprintf(os.Stderr, "reopen log file %s: %v\n", l.path, err)
			}
		}
	}
}
