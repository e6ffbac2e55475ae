// Package ready is how a Courier daemon tells the tool that started it
// (courier-ctl, the sandbox) that it is up, so that the tool can fail
// loudly when the daemon dies at start-up instead of reporting success.
//
// The starter passes the write end of a pipe as a file descriptor named
// by $COURIER_READY_FD; the daemon writes "READY=1\n" on it once its
// configuration is read and its listeners are open (from then on it only
// reconnects, it does not exit on its own) and closes it. The starter
// reads: the message means up; end of file without it means the daemon
// exited first (every copy of the write end is closed then); nothing
// within a time limit means it hangs. This is Open vSwitch's --detach
// handshake, a pipe from the daemon to its starter, with the message of
// systemd's sd_notify. A pipe, unlike sd_notify's socket, needs no path
// and crosses network namespaces (hostd runs in the host's).
package ready

import (
	"fmt"
	"os"
	"strconv"
)

// FDEnv names the environment variable holding the descriptor.
const FDEnv = "COURIER_READY_FD"

// Message is what a daemon writes when it is up.
const Message = "READY=1\n"

// Notify tells the starter, if there is one, that this daemon is up. It
// does so once: the variable is cleared, so that a later call cannot
// write to whatever file has reused the descriptor.
func Notify() error {
	v, ok := os.LookupEnv(FDEnv)
	if !ok {
		return nil
	}
	os.Unsetenv(FDEnv)
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return fmt.Errorf("$%s=%q is not a descriptor to report readiness on", FDEnv, v)
	}
	f := os.NewFile(uintptr(fd), "readiness pipe")
	defer f.Close()
	if _, err := f.WriteString(Message); err != nil {
		return fmt.Errorf("report readiness: %w", err)
	}
	return nil
}
