package e2e

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/courier-sdn/courier/internal/lab"
	"github.com/courier-sdn/courier/internal/testenv"
	"github.com/courier-sdn/courier/tools/sandbox"
)

// vmNames declares w1, w10, w11 and w12 in one vxnet and starts them:
// names that share a prefix.
func (e *env) vmNames() {
	e.t.Helper()
	e.nb("vpc-add", "v", "--", "vxnet-add", "v", "x", "10.3.0.0/24",
		"--", "port-add", "x", "w1", "02:00:00:04:00:0b", "10.3.0.11",
		"--", "port-add", "x", "w10", "02:00:00:04:00:14", "10.3.0.20",
		"--", "port-add", "x", "w11", "02:00:00:04:00:15", "10.3.0.21",
		"--", "port-add", "x", "w12", "02:00:00:04:00:16", "10.3.0.22")
	for _, v := range []struct{ host, port string }{{"hv1", "w1"}, {"hv1", "w10"}, {"hv2", "w11"}, {"hv1", "w12"}} {
		e.vm(v.host, v.port)
	}
	e.nb("sync")
}

// hostSide reports whether a VM's host-side interface exists on host.
func (e *env) hostSide(host, port string) bool {
	e.t.Helper()
	var found bool
	err := lab.Do(e.s.HostNS(host), func() error {
		_, err := netlink.LinkByName("v-" + port)
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		found = err == nil
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return found
}

func (e *env) vmNS(port string) bool {
	_, err := os.Stat(filepath.Join("/var/run/netns", e.s.VMNS(port)))
	return err == nil
}

// vm-del w1 also removed w10, w11 and w12: it deleted every namespace
// whose name began with w1's.
func TestVMDelRemovesOnlyThatVM(t *testing.T) {
	e := start(t, 2, 1)
	e.vmNames()
	if err := e.s.DelVM("w1"); err != nil {
		t.Fatal(err)
	}
	if e.vmNS("w1") || e.hostSide("hv1", "w1") {
		t.Errorf("w1 is still there (namespace %v, host side %v)", e.vmNS("w1"), e.hostSide("hv1", "w1"))
	}
	for _, v := range []struct{ host, port string }{{"hv1", "w10"}, {"hv2", "w11"}, {"hv1", "w12"}} {
		if _, ok := e.s.HasVM(v.port); !ok || !e.vmNS(v.port) || !e.hostSide(v.host, v.port) {
			t.Errorf("deleting w1 took %s with it (recorded %v, namespace %v, host side %v)",
				v.port, ok, e.vmNS(v.port), e.hostSide(v.host, v.port))
		}
	}
	e.mustPing("w10", "10.3.0.21")
	e.mustPing("w10", "10.3.0.22")
	e.mustPing("w11", "10.3.0.22")
}

// A VM deleted and at once added again failed with "file exists": its
// old veth was still being torn down with its namespace.
func TestVMReAddedRightAfterDelete(t *testing.T) {
	e := start(t, 2, 1)
	e.vmNames()
	for i := 0; i < 10; i++ {
		if err := e.s.DelVM("w1"); err != nil {
			t.Fatalf("delete %d: %v", i, err)
		}
		if err := e.s.AddVM(context.Background(), "hv1", "w1"); err != nil {
			t.Fatalf("add again %d: %v", i, err)
		}
	}
	e.mustPing("w1", "10.3.0.20")
	e.mustPing("w1", "10.3.0.21")
}

// A hostd that dies at start-up makes the sandbox's start fail, naming
// it and quoting its log: start used to succeed, and the first vm-add
// on that host waited in vain.
func TestSandboxStartFailsWhenHostdExits(t *testing.T) {
	testenv.Integration(t, "ip")
	testenv.Root(t)
	prefix := "ce" + testenv.ID() + "-"
	t.Cleanup(func() { lab.DestroyPrefix(prefix) })
	s, err := sandbox.Start(context.Background(), sandbox.Options{RunDir: testenv.RunDir(t), Prefix: prefix, Hosts: 1,
		BinDir: testenv.BinDir(t), HostdArgs: []string{"--role", "nonsense"}, Log: testenv.Logger(t)})
	if err == nil {
		s.Stop()
		t.Fatal("the sandbox started though its hostd cannot")
	}
	for _, want := range []string{"courier-hostd exited during start-up", `--role "nonsense"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q: %v", want, err)
		}
	}
}
