package nbctl_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/courier-sdn/courier/internal/testenv"
	"github.com/courier-sdn/courier/tools/cmdline"
	"github.com/courier-sdn/courier/tools/nbctl"
	"github.com/courier-sdn/courier/tools/sbctl"
)

// The pictures parse (Graphviz's dot turns them into SVG) and name
// every object: VPCs, vxnets, ports, routes, and with --runtime the
// chassis ports run on, the hubs and what was learned.
func TestShowDraws(t *testing.T) {
	testenv.Integration(t, "dot")
	dbs := testenv.StartDBs(t)
	db := dbs.NB
	mustNB(t, db, "vpc-add", "blue", "--", "vxnet-add", "blue", "web", "10.0.1.0/24", "--", "vxnet-add", "blue", "db", "10.0.2.0/24")
	mustNB(t, db, "port-add", "web", "vm1", "02:00:00:00:01:0a", "10.0.1.10", "--", "port-add", "db", "vm2", "02:00:00:00:02:0a", "10.0.2.10")
	mustNB(t, db, "route-add", "blue", "192.168.0.0/16", "10.0.1.10", "--", "set", "VPC", "blue", "status:tunnel_key=7",
		"--", "set", "Port", "vm1", "up=true", "chassis=hv1")
	sb := func(args ...string) {
		t.Helper()
		if err := sbctl.RunWith(context.Background(), sbctl.Options{DB: dbs.SB, Timeout: 10 * time.Second}, args, &bytes.Buffer{}); err != nil {
			t.Fatalf("courier-sbctl %s: %v", strings.Join(args, " "), err)
		}
	}
	sb("create", "Chassis", "name=hv1", "encap_ip=192.0.2.1", "--", "create", "Chassis", "name=hv2", "encap_ip=192.0.2.2", "roles=hub",
		"--", "create", "Hub", "vpc=7", "chassis=hv2",
		"--", "create", "Learned_Binding", "vpc=7", "vni=5", "ip=10.0.1.99", "mac=\"02:00:00:00:01:63\"", "kind=virtual_ip", "chassis=hv1",
		"logical_port=vm1", "seq=1", "timestamp=1", "accepted=true")

	var out bytes.Buffer
	o := nbctl.Options{DB: db, SB: dbs.SB, Wait: "none", Format: "table", Timeout: 10 * time.Second}
	if err := nbctl.Run(context.Background(), o, []string{"show", "--format", "dot", "--runtime"}, &out); err != nil {
		t.Fatal(err)
	}
	dot := out.String()
	svg := render(t, dot)
	for _, name := range []string{"vpc blue", "vxnet web", "vxnet db", "port vm1", "port vm2", "route 192.168.0.0/16",
		"chassis hv1", "chassis hv2", "hub", "learned 10.0.1.99", "up on hv1"} {
		if !strings.Contains(dot, name) || !strings.Contains(svg, name) {
			t.Errorf("the picture does not name %q:\n%s", name, dot)
		}
	}

	out.Reset()
	if err := nbctl.Run(context.Background(), o, []string{"show", "--format", "svg"}, &out); err != nil || !strings.HasPrefix(strings.TrimSpace(out.String()), "<?xml") {
		t.Errorf("show --format svg: %v %.80q", err, out.String())
	}
	// -f json: the same tree, structured.
	out.Reset()
	o.Format = "json"
	if err := nbctl.Run(context.Background(), o, []string{"show"}, &out); err != nil {
		t.Fatal(err)
	}
	var tree []struct {
		Name   string
		Vxnets []struct {
			Name  string
			Ports []struct {
				Name    string
				IPs     []string
				Up      *bool
				Chassis *string
			}
		}
	}
	if err := json.Unmarshal(out.Bytes(), &tree); err != nil || len(tree) != 1 || len(tree[0].Vxnets) != 2 {
		t.Fatalf("show -f json: %v\n%s", err, out.String())
	}
	if p := tree[0].Vxnets[1].Ports[0]; p.Name != "vm1" || p.Up == nil || !*p.Up || *p.Chassis != "hv1" || p.IPs[0] != "10.0.1.10" {
		t.Errorf("show -f json: %+v", p)
	}

	// courier-sbctl draws the running world.
	out.Reset()
	err := sbctl.RunWith(context.Background(), sbctl.Options{DB: dbs.SB, Style: cmdline.Style{Format: "table"}, Timeout: 10 * time.Second},
		[]string{"show", "--format", "dot", "--runtime"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	svg = render(t, out.String())
	for _, name := range []string{"chassis hv1", "chassis hv2", "learned 10.0.1.99"} {
		if !strings.Contains(svg, name) {
			t.Errorf("courier-sbctl's picture does not name %q:\n%s", name, out.String())
		}
	}
}

func render(t *testing.T, dot string) string {
	t.Helper()
	cmd := exec.Command("dot", "-Tsvg")
	cmd.Stdin = strings.NewReader(dot)
	svg, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("dot -Tsvg: %v\n%s\n%s", err, svg, dot)
	}
	return string(svg)
}
