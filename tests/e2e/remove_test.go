package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"

	"github.com/courier-sdn/courier/internal/lab"
	"github.com/courier-sdn/courier/internal/testenv"
)

// The operations guide's removal of a hypervisor (docs/operations.md),
// step by step: stopping its hostd leaves its programs attached (a
// restart loses nothing); with hostd stopped for good, chassis-del
// removes its rows and southd does not bring them back; removing its
// pins detaches its programs from its VM ports, and deleting the VXLAN
// device leaves nothing of Courier attached on the machine.
func TestRemovedHypervisorLeavesNothing(t *testing.T) {
	e := start(t, 3, 2)
	e.blue()
	ns := e.s.HostNS("hv3")
	// attached counts the programs attached (tcx ingress) to each of the
	// host's interfaces, by name.
	attached := func() map[string]int {
		t.Helper()
		out := map[string]int{}
		err := lab.Do(ns, func() error {
			links, err := netlink.LinkList()
			if err != nil {
				return err
			}
			for _, l := range links {
				q, err := link.QueryPrograms(link.QueryOptions{Target: l.Attrs().Index, Attach: ebpf.AttachTCXIngress})
				if err != nil {
					return fmt.Errorf("%s: %w", l.Attrs().Name, err)
				}
				if n := len(q.Programs); n > 0 {
					out[l.Attrs().Name] = n
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got := attached(); got["courier0"] == 0 || len(got) < 4 {
		t.Fatalf("hv3's programs are not where the test expects them (its three VM ports and courier0): %v", got)
	}

	if err := e.s.StopHostd("hv3"); err != nil {
		t.Fatal(err)
	}
	if got := attached(); got["courier0"] == 0 || len(got) < 4 {
		t.Errorf("stopping hostd detached programs, which must keep forwarding: %v", got)
	}
	sbctl := func(args ...string) string {
		t.Helper()
		return testenv.Run(t, filepath.Join(testenv.BinDir(t), "courier-sbctl"), append([]string{"--db", e.s.SB()}, args...)...)
	}
	sbctl("chassis-del", "hv3")
	e.nb("sync") // a southd pass has gone by
	if out := sbctl("--bare", "--columns=name", "list", "Chassis_Private"); strings.Contains(out, "hv3") {
		t.Errorf("hv3's rows are back after chassis-del:\n%s", out)
	}

	if err := os.RemoveAll(filepath.Join(e.s.State.PinRoot, "hv3")); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ip", "netns", "exec", ns, "ip", "link", "del", "courier0").CombinedOutput(); err != nil {
		t.Fatalf("ip link del courier0: %v\n%s", err, out)
	}
	testenv.Eventually(t, 5*time.Second, "hv3's programs detached", func() error {
		if got := attached(); len(got) > 0 {
			return fmt.Errorf("still attached: %v", got)
		}
		return nil
	})
}
