package ctl_test

import (
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/courier-sdn/courier/internal/central"
	"github.com/courier-sdn/courier/internal/lab"
	"github.com/courier-sdn/courier/internal/pki"
	"github.com/courier-sdn/courier/internal/testenv"
)

// The operations guide's deployment (docs/operations.md, "Three central
// members, over TLS"), step by step, on three machines made of network
// namespaces: one PKI at the same path on every member, cluster-create
// --tls on the first with listeners without an address, cluster-join
// --tls on the others, every member's daemons given every member's TLS
// remotes. An operator then writes through one member and reads through
// another over TLS, and the deployment keeps compiling when the first
// member stops.
func TestTLSClusterAcrossThreeMachines(t *testing.T) {
	testenv.Integration(t, "ovs-appctl")
	testenv.Root(t)
	l, err := lab.New("crt"+testenv.ID()+"-", netip.MustParsePrefix("10.99.0.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Destroy() }) // last: after every member stopped
	bin := testenv.BinDir(t)
	pkiDir := filepath.Join(testenv.RunDir(t), "pki")
	ctl := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(filepath.Join(bin, "courier-ctl"), args...).CombinedOutput(); err != nil {
			t.Fatalf("courier-ctl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	ctl("pki", "init", "--dir", pkiDir)
	ctl("pki", "sign", "--dir", pkiDir, "--server", central.ServerIdentity)
	for _, n := range []string{"courier-northd", "courier-southd", "operator"} {
		ctl("pki", "sign", "--dir", pkiDir, n)
	}

	names := []string{"c1", "c2", "c3"}
	ips, dirs := make([]string, 3), make([]string, 3)
	var nbRemotes, sbCentral, sbChassis []string
	for i, n := range names {
		h, err := l.AddHost(n, i+1)
		if err != nil {
			t.Fatal(err)
		}
		ips[i], dirs[i] = h.VTEP.String(), testenv.RunDir(t)
		nbRemotes = append(nbRemotes, "ssl:"+ips[i]+":6641")
		sbChassis = append(sbChassis, "ssl:"+ips[i]+":6642")
		sbCentral = append(sbCentral, "ssl:"+ips[i]+":6645")
	}
	// member runs courier-ctl on member i's machine.
	member := func(i int, args ...string) (string, error) {
		full := append([]string{"netns", "exec", l.Hosts[names[i]].NS, filepath.Join(bin, "courier-ctl"), "--run-dir", dirs[i]}, args...)
		out, err := exec.Command("ip", full...).CombinedOutput()
		return string(out), err
	}
	for i := range names {
		t.Cleanup(func() {
			if t.Failed() {
				testenv.DumpLogs(t, dirs[i])
			}
			member(i, "stop")
		})
	}
	common := []string{"--tls", "--pki-dir", pkiDir, "--northd-metrics", "", "--southd-metrics", "",
		"--nb-remotes", strings.Join(nbRemotes, ","), "--sb-remotes", strings.Join(sbCentral, ",")}
	listen := []string{"--nb-listen", "pssl:6641", "--sb-listen", "pssl:6642", "--sb-central-listen", "pssl:6645"}
	create := append([]string{"cluster-create", "--nb-raft", "tcp:" + ips[0] + ":6643", "--sb-raft", "tcp:" + ips[0] + ":6644"}, listen...)
	if out, err := member(0, append(create, common...)...); err != nil {
		t.Fatalf("c1 cluster-create: %v\n%s", err, out)
	}
	for i := 1; i < 3; i++ {
		join := []string{"cluster-join", "--nb-raft", "tcp:" + ips[i] + ":6643", "--sb-raft", "tcp:" + ips[i] + ":6644",
			"--nb-peer", "tcp:" + ips[0] + ":6643", "--sb-peer", "tcp:" + ips[0] + ":6644"}
		if out, err := member(i, append(join, common...)...); err != nil {
			t.Fatalf("%s cluster-join: %v\n%s", names[i], err, out)
		}
	}
	for i, dir := range dirs {
		c := &central.Config{RunDir: dir}
		testenv.Eventually(t, 30*time.Second, names[i]+" joined", func() error {
			for _, d := range central.Databases {
				out, err := exec.Command("ovs-appctl", "-t", c.CtlSocket(d), "cluster/status", d.Name).CombinedOutput()
				if err != nil || !strings.Contains(string(out), "Status: cluster member") {
					return fmt.Errorf("%s: %s", d.Short, out)
				}
			}
			return nil
		})
	}

	// The operator, on c2 and c3, over TLS with its own certificate.
	op := pki.For(pkiDir, "operator")
	tool := func(i int, name string, args ...string) (string, error) {
		full := append([]string{"netns", "exec", l.Hosts[names[i]].NS, filepath.Join(bin, name),
			"-p", op.PrivateKey, "-c", op.Certificate, "-C", op.CACert, "--timeout", "30s"}, args...)
		out, err := exec.Command("ip", full...).CombinedOutput()
		return string(out), err
	}
	nbDB, sbDB := "--db="+strings.Join(nbRemotes, ","), "--db="+strings.Join(sbChassis, ",")
	if out, err := tool(1, "courier-nbctl", nbDB, "--wait=sb", "vpc-add", "blue", "--", "vxnet-add", "blue", "web", "10.0.1.0/24"); err != nil {
		t.Fatalf("courier-nbctl through c2: %v\n%s", err, out)
	}
	if out, err := tool(2, "courier-sbctl", sbDB, "datapath-list"); err != nil || !strings.Contains(out, "vxnet:web") {
		t.Fatalf("courier-sbctl through c3: %v\n%s", err, out)
	}
	if out, err := tool(2, "courier-sbctl", sbDB, "get-connection"); err != nil ||
		!strings.Contains(out, "role=courier-chassis pssl:6642") || !strings.Contains(out, "role=courier-central pssl:6645") {
		t.Fatalf("get-connection: %v\n%s", err, out)
	}

	// The first member goes: the others' servers and daemons carry on.
	if out, err := member(0, "stop"); err != nil {
		t.Fatalf("c1 stop: %v\n%s", err, out)
	}
	if out, err := tool(2, "courier-nbctl", nbDB, "--wait=sb", "vxnet-add", "blue", "db", "10.0.2.0/24"); err != nil {
		t.Fatalf("courier-nbctl with c1 down: %v\n%s", err, out)
	}
	// And comes back with the command the guide gives for a restart: a
	// member that is not the leader used to fail there, writing its TLS
	// configuration.
	if out, err := member(0, append(append([]string{"start"}, listen...), common...)...); err != nil {
		t.Fatalf("c1 start again: %v\n%s", err, out)
	}
	if out, err := tool(0, "courier-nbctl", nbDB, "--wait=sb", "vxnet-add", "blue", "app", "10.0.3.0/24"); err != nil {
		t.Fatalf("courier-nbctl through c1 again: %v\n%s", err, out)
	}
}
