package e2e

import (
	"os/exec"
	"testing"
	"time"

	"github.com/courier-sdn/courier/tools/sandbox"
)

// Issue #16: an established connection survives hostd restarts on both
// ends and its VM's migration, with groups enforced throughout.
//
//	mover (client: egress anything) on hv2, then hv4
//	peer  (server: ingress tcp 5201 from client, egress anything) on hv3
//	other (the default group) on hv3
//
// The stream runs the other way (iperf3 -R: peer sends, mover receives),
// so after the move the first packets mover's new host sees are peer's,
// which mover's rules allow only as replies: tracked on the old host,
// they are picked up on the new one (ct_pickup).
func TestSecurityGroupsAcrossRestartsAndMigration(t *testing.T) {
	e := start(t, 4, 1)
	e.nb("vpc-add", "v", "--", "vxnet-add", "v", "x", "10.1.0.0/24",
		"--", "port-add", "x", "mover", "02:00:00:03:00:0b", "10.1.0.11", "--chassis", "hv2",
		"--", "port-add", "x", "peer", "02:00:00:03:00:0a", "10.1.0.10",
		"--", "port-add", "x", "other", "02:00:00:03:00:0c", "10.1.0.12",
		"--", "sg-add", "v", "client", "--", "sg-rule-add", "v/client", "egress", "any",
		"--", "sg-add", "v", "server", "--", "sg-rule-add", "v/server", "ingress", "tcp", "5201", "--remote-group", "client",
		"--", "sg-rule-add", "v/server", "egress", "any")
	e.nb("port-set", "mover", "--sg", "client", "--", "port-set", "peer", "--sg", "server")
	e.vm("hv2", "mover")
	e.vm("hv3", "peer")
	e.vm("hv3", "other")
	e.nb("sync")

	srv := exec.Command("ip", "netns", "exec", e.s.VMNS("peer"), "iperf3", "-s", "-1", "-p", "5201")
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	time.Sleep(300 * time.Millisecond)
	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := e.s.Exec("mover", "timeout", "30", "iperf3", "-c", "10.1.0.10", "-p", "5201", "-R", "-t", "12", "-b", "50M", "-J")
		done <- result{out, err}
	}()
	time.Sleep(2 * time.Second)
	for _, h := range []string{"hv3", "hv2"} {
		if err := e.s.RestartHostd(h); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
	}
	pickedBefore := e.counters("hv4")["ct_pickup"]
	e.nb("port-set", "mover", "--chassis", "hv4")
	// As courier-sandbox vm-migrate does: a sandbox opened afresh from
	// its run directory, whose lab knows its VMs by name only.
	op, err := sandbox.Open(e.s.RunDir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := op.MigrateVM(t.Context(), "mover", "hv4"); err != nil {
		t.Fatal(err)
	}
	var r result
	select {
	case r = <-done:
	case <-time.After(40 * time.Second):
		t.Fatal("the stream did not end 40 s after it started")
	}
	rep, err := parseIperf(r.out)
	if err != nil || r.err != nil {
		t.Fatalf("the stream across restarts and the move failed: %v %v", r.err, err)
	}
	n := len(rep.Intervals)
	if n < 10 || rep.Intervals[n-1].Sum.Bytes == 0 || rep.Intervals[n-2].Sum.Bytes == 0 {
		t.Errorf("the stream stopped: %d intervals, last ones %+v", n, rep.Intervals[max(0, n-3):])
	}
	t.Logf("%.1f MB received over %d s across two hostd restarts and a migration", rep.End.SumReceived.Bytes/1e6, n)
	if picked := e.counters("hv4")["ct_pickup"] - pickedBefore; picked == 0 {
		t.Errorf("hv4 picked up no connection: the stream's packets were allowed some other way")
	}

	t.Run("enforced on the new host", func(t *testing.T) {
		if !e.tcpOK("mover", "peer", "10.1.0.10") {
			t.Error("mover (client) -> peer:5201 failed")
		}
		if e.tcpOK("other", "peer", "10.1.0.10") {
			t.Error("other (default group) reached peer:5201, which allows client only")
		}
		if e.tcpOK("peer", "mover", "10.1.0.11") {
			t.Error("peer reached mover:5201: client has no ingress rule")
		}
		e.mustNotPing("peer", "10.1.0.11")
	})
}
