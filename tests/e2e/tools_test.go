package e2e

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/courier-sdn/courier/tools/dpctl"
	"github.com/courier-sdn/courier/tools/sbctl"
)

// The operator's tools show what the running system holds: courier-sbctl
// the southbound, courier-dpctl a host's kernel maps.
func TestOperatorTools(t *testing.T) {
	e := start(t, 3, 2)
	e.blue()
	e.mustPing("w1", "10.0.2.10") // hv3 learns d1 on hv2 through a hub

	sb := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		if err := sbctl.Run(context.Background(), e.s.SB(), nil, "table", 10*time.Second, args, &out); err != nil {
			t.Fatalf("courier-sbctl %s: %v", strings.Join(args, " "), err)
		}
		return out.String()
	}
	dp := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		full := append([]string{"courier-dpctl", "--pin-root", e.s.State.PinRoot}, args...)
		if err := dpctl.App(&out).Run(full); err != nil {
			t.Fatalf("courier-dpctl %s: %v", strings.Join(args, " "), err)
		}
		return out.String()
	}
	expect := func(what, out string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: no %q in:\n%s", what, w, out)
			}
		}
	}
	expect("show", sb("show"), "hv1", "hv2", "hv3", e.vtep("hv2").String(), "hub", "w1", "d1")
	expect("chassis-list", sb("chassis-list"), "hv1", "hv3")
	expect("datapath-list", sb("datapath-list"), "vpc:blue", "vxnet:web", "vxnet:db")
	hv3 := sb("binding-list", "--chassis", "hv3")
	expect("binding-list --chassis hv3", hv3, "w1", "w2", "d2", "10.0.1.10")
	if strings.Contains(hv3, "d1") || strings.Contains(hv3, "w3") {
		t.Errorf("binding-list --chassis hv3 lists other hosts' ports:\n%s", hv3)
	}
	expect("lflow-list", sb("lflow-list", "vxnet:web"), "port_sec", "arp")
	expect("hub-list", sb("hub-list"), "vpc:blue", "hv1", "hv2")
	if out := sb("learned-list"); strings.Count(strings.TrimSpace(out), "\n") != 0 {
		t.Errorf("learned-list: nothing was announced, yet:\n%s", out)
	}

	expect("dpctl ports", dp("--chassis", "hv3", "ports"), "vni")
	expect("dpctl vxnets", dp("--chassis", "hv3", "vxnets"), "10.0.1.0/24", "10.0.2.0/24")
	expect("dpctl routes", dp("--chassis", "hv3", "routes"), "10.0.2.0/24")
	expect("dpctl hubs", dp("--chassis", "hv3", "hubs"), e.vtep("hv1").String(), e.vtep("hv2").String())
	expect("dpctl cache", dp("--chassis", "hv3", "cache"), "10.0.2.10", e.vtep("hv2").String())
	expect("dpctl counters", dp("--chassis", "hv3", "counters"), "port_rx", "learn_installed")
	// blue enforces its default group: anything out, in from its members.
	expect("dpctl sg", dp("--chassis", "hv3", "sg"), "identity 1", "egress any 0.0.0.0/0", "ingress any group")
	expect("dpctl ct", dp("--chassis", "hv3", "ct"), "10.0.2.10", "by the port", "allowed")
	expect("dpctl cache-flush", dp("--chassis", "hv3", "cache-flush", "10.0.2.10"), "forgot 1 learned paths")
	holds := func() bool {
		for k := range e.cache("hv3") {
			if strings.HasSuffix(k, "/10.0.2.10") {
				return true
			}
		}
		return false
	}
	if holds() {
		t.Error("cache-flush left the entry")
	}
	e.mustPing("w1", "10.0.2.10") // relearned through a hub
	if !holds() {
		t.Error("the flushed path was not learned again")
	}
}
