package nbctl_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/courier-sdn/courier/internal/central"
	"github.com/courier-sdn/courier/internal/testenv"
	"github.com/courier-sdn/courier/tools/nbctl"
)

// nbWait runs courier-nbctl --wait=sb, so that northd's allocations are
// written back when it returns.
func nbWait(t *testing.T, db string, args ...string) string {
	t.Helper()
	var out strings.Builder
	o := nbctl.Options{DB: db, Wait: "sb", Format: "table", LeaderOnly: true, Timeout: 20 * time.Second}
	if err := nbctl.Run(context.Background(), o, args, &out); err != nil {
		t.Fatalf("courier-nbctl %s: %v", strings.Join(args, " "), err)
	}
	return out.String()
}

// port-add without addresses, or with the word dynamic, gets them from
// northd; port-list, show and get show them.
func TestPortAddDynamic(t *testing.T) {
	dbs := testenv.StartDBs(t, central.Daemons("", "")[0])
	db := dbs.NB
	nbWait(t, db, "init", "--", "vpc-add", "web", "--", "vxnet-add", "web", "front", "10.0.1.0/24")
	nbWait(t, db, "set", "Vxnet", "front", "options:exclude_ips=10.0.1.2..10.0.1.9")
	nbWait(t, db, "port-add", "front", "fixed", "02:00:00:00:01:0a", "10.0.1.10")
	nbWait(t, db, "port-add", "front", "d1")
	nbWait(t, db, "port-add", "front", "d2", "02:00:00:00:01:99", "dynamic")
	nbWait(t, db, "port-add", "front", "d3", "dynamic", "10.0.1.50")

	got := strings.TrimSpace(nbWait(t, db, "get", "Port", "d1", "dynamic_addresses"))
	if !strings.HasPrefix(got, `"0a:58:00:`) || !strings.HasSuffix(got, ` 10.0.1.11"`) {
		t.Fatalf("d1's dynamic_addresses = %s, want a 0a:58:00 MAC and 10.0.1.11 (the lowest free past the exclusions)", got)
	}
	d1 := strings.Trim(got, `"`)
	list := nbWait(t, db, "port-list", "front")
	for _, want := range []string{"dynamic (" + strings.Fields(d1)[0] + ")", "dynamic (10.0.1.11)", "dynamic (10.0.1.12)",
		"02:00:00:00:01:99"} {
		if !strings.Contains(list, want) {
			t.Errorf("port-list lacks %q:\n%s", want, list)
		}
	}
	if d3 := nbWait(t, db, "get", "Port", "d3", "dynamic_addresses"); !strings.Contains(d3, " 10.0.1.50") {
		t.Errorf("d3 (dynamic MAC, fixed IP): dynamic_addresses %s", d3)
	}
	if show := nbWait(t, db, "show"); !strings.Contains(show, "port d1: dynamic ("+strings.Fields(d1)[0]+") dynamic (10.0.1.11)") {
		t.Errorf("show:\n%s", show)
	}
	// A bad exclude_ips refuses the vxnet's dynamic ports, not the
	// vxnet; a bad mac_prefix refuses ports with dynamic MACs.
	nbWait(t, db, "set", "Vxnet", "front", "options:exclude_ips=10.0.2.1")
	if l := nbWait(t, db, "vxnet-list"); !strings.Contains(l, "ok; options:exclude_ips: 10.0.2.1 is outside vxnet front's CIDR") {
		t.Errorf("vxnet-list with a bad exclude_ips:\n%s", l)
	}
	if l := nbWait(t, db, "port-list"); !strings.Contains(l, "error: vxnet front's options:exclude_ips: 10.0.2.1 is outside") ||
		strings.Contains(l, "error: vxnet front's options:exclude_ips: 10.0.2.1 is outside vxnet front's CIDR 10.0.1.0/24\n"+"fixed") {
		t.Errorf("port-list with a bad exclude_ips:\n%s", l)
	}
	nbWait(t, db, "set", "Vxnet", "front", "options:exclude_ips=10.0.1.2..10.0.1.9", "--",
		"set", "NB_Global", ".", "options:mac_prefix=01:00:00")
	if l := nbWait(t, db, "port-list"); !strings.Contains(l, "error: NB_Global options:mac_prefix 01:00:00 would make multicast MACs") {
		t.Errorf("port-list with a multicast mac_prefix:\n%s", l)
	}
	nbWait(t, db, "remove", "NB_Global", ".", "options", "mac_prefix")
	if got := nbWait(t, db, "get", "Port", "d1", "dynamic_addresses"); !strings.Contains(got, " 10.0.1.11\"") {
		t.Errorf("after the options were repaired, d1's dynamic_addresses = %s, want 10.0.1.11 again", got)
	}

	// A fixed port that takes d1's IP wins; d1 moves to the next free one.
	nbWait(t, db, "port-set", "fixed", "--ips", "10.0.1.11")
	if got := nbWait(t, db, "get", "Port", "d1", "dynamic_addresses"); !strings.Contains(got, " 10.0.1.10\"") {
		t.Errorf("after fixed took 10.0.1.11, d1's dynamic_addresses = %s, want 10.0.1.10", got)
	}
}
