package lab

import (
	"os"
	"os/exec"
	"testing"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/courier-sdn/courier/internal/testenv"
)

// A namespace this package made must stay deletable after `ip netns add`
// (another test, an operator) makes its directory a mount point: on a
// fresh machine the directory is not one, and iproute2 then bound it over
// itself, hiding the first namespace; deleting it failed (EINVAL) and the
// namespace stayed (courier-sandbox stop: invalid argument). Run in a
// mount namespace of its own, with an empty /run, so that the host's
// /run/netns is not touched.
func TestNamespaceSurvivesIPNetnsAdd(t *testing.T) {
	if os.Getenv("COURIER_NETNS_CHILD") == "1" {
		netnsChild(t)
		return
	}
	testenv.Integration(t, "ip", "unshare")
	testenv.Root(t)
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", os.Args[0],
		"-test.run", "^TestNamespaceSurvivesIPNetnsAdd$", "-test.v")
	cmd.Env = append(os.Environ(), "COURIER_NETNS_CHILD=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("in a mount namespace of its own: %v\n%s", err, out)
	}
}

// netnsChild runs in its own mount namespace: an empty /run, one
// namespace made here, one by ip; both must go.
func netnsChild(t *testing.T) {
	if err := unix.Mount("tmpfs", "/run", "tmpfs", 0, ""); err != nil {
		t.Fatalf("mount tmpfs on /run: %v", err)
	}
	mine, theirs := "cnd"+testenv.ID()+"-a", "cnd"+testenv.ID()+"-b"
	if err := NewNS(mine); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ip", "netns", "add", theirs).CombinedOutput(); err != nil {
		netns.DeleteNamed(mine)
		t.Fatalf("ip netns add %s: %v %s", theirs, err, out)
	}
	defer exec.Command("ip", "netns", "del", theirs).Run()
	if err := netns.DeleteNamed(mine); err != nil {
		t.Errorf("delete %s after ip netns add: %v", mine, err)
	}
}
