package sandbox

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// host-down, host-up and underlay-replace refuse a host the sandbox
// does not have, naming the ones it has, before touching anything;
// underlay-replace refuses a host that is down; the commands refuse a
// wrong number of arguments, saying how to call them; and a recorded
// sandbox keeps its hostd arguments for the hostd host-up starts. No
// root needed: the state is a file.
func TestHostDownRefusesUnknownHosts(t *testing.T) {
	dir := t.TempDir()
	st := State{Prefix: "cx-", Hosts: []HostState{{Name: "hv1", VTEP: "192.168.100.1"}, {Name: "gw1", VTEP: "192.168.100.201", Gateway: true, Down: true}},
		HostdArgs: []string{"--refresh", "1ms"}}
	b, _ := json.Marshal(st)
	if err := os.WriteFile(filepath.Join(dir, "sandbox.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"host-down", "hv9"}, `no host "hv9" in the sandbox (its hosts: hv1 gw1)`},
		{[]string{"host-up", "gw7"}, `no host "gw7" in the sandbox (its hosts: hv1 gw1)`},
		{[]string{"host-down"}, "usage: courier-sandbox host-down HOST"},
		{[]string{"host-up", "hv1", "gw1"}, "usage: courier-sandbox host-up HOST"},
		{[]string{"underlay-replace", "hv2"}, `no host "hv2" in the sandbox (its hosts: hv1 gw1)`},
		{[]string{"underlay-replace"}, "usage: courier-sandbox underlay-replace HOST"},
		{[]string{"underlay-replace", "gw1"}, "host gw1 is down (courier-sandbox host-up gw1 first)"},
		{[]string{"vm-add", "hv1"}, "usage: courier-sandbox vm-add [--dhcp] HOST PORT"},
		{[]string{"vm-del"}, "usage: courier-sandbox vm-del PORT"},
		{[]string{"vm-move", "p1"}, "usage: courier-sandbox vm-move PORT HOST"},
		{[]string{"vm-migrate", "p1", "hv1", "x"}, "usage: courier-sandbox vm-migrate PORT HOST"},
	} {
		var out bytes.Buffer
		err := App(&out).Run(append([]string{"courier-sandbox", "--run-dir", dir}, c.args...))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", strings.Join(c.args, " "), err, c.want)
		}
	}
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(s.args, " ") != "--refresh 1ms" {
		t.Errorf("reopened sandbox's hostd arguments %q, want those it was started with", s.args)
	}
}

// A hostd that died leaves its pid file: the sandbox does not take the
// pid it names for a running hostd (status, host-up), whether the process
// is gone or the pid is now another program's.
func TestDeadHostdIsNotRunning(t *testing.T) {
	dir := t.TempDir()
	s := &Sandbox{RunDir: dir}
	for _, pid := range []int{os.Getpid(), 1 << 22} { // this test's process; beyond pid_max
		if err := os.WriteFile(s.hostdPid("hv1"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := s.HostdPID("hv1"); got != 0 {
			t.Errorf("pid file naming %d (no hostd): HostdPID %d, want 0", pid, got)
		}
	}
}
