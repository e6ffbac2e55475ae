package lab

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// netnsDir is where named namespaces are mounted (iproute2's
// NETNS_RUN_DIR; /var/run is /run).
const netnsDir = "/run/netns"

var netnsDirOnce struct {
	sync.Once
	err error
}

// sharedNetnsDir makes netnsDir a mount point of its own with shared
// propagation, as `ip netns add` does before it mounts a namespace.
// netns.NewNamed mounts onto the directory as it finds it: if it is not a
// mount point yet, a later `ip netns add` (another test, an operator)
// binds the directory over itself and hides what was mounted before, and
// deleting those namespaces fails (EINVAL) and leaves them behind. Once a
// process; a lock on the directory keeps two processes from both
// binding it.
func sharedNetnsDir() error {
	netnsDirOnce.Do(func() { netnsDirOnce.err = makeSharedNetnsDir() })
	return netnsDirOnce.err
}

func makeSharedNetnsDir() error {
	if err := os.MkdirAll(netnsDir, 0o755); err != nil {
		return err
	}
	lock, err := os.Open(netnsDir) // the directory itself: no lock file left behind
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return err
	}
	err = unix.Mount("", netnsDir, "none", unix.MS_SHARED|unix.MS_REC, "")
	if errors.Is(err, unix.EINVAL) { // not a mount point yet
		if err := unix.Mount(netnsDir, netnsDir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("mount --bind %s %s: %w", netnsDir, netnsDir, err)
		}
		err = unix.Mount("", netnsDir, "none", unix.MS_SHARED|unix.MS_REC, "")
	}
	if err != nil {
		return fmt.Errorf("mount --make-shared %s: %w", netnsDir, err)
	}
	return nil
}
