package dataplane_test

import (
	"net/netip"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/courier-sdn/courier/dataplane"
	"github.com/courier-sdn/courier/internal/lab"
	"github.com/courier-sdn/courier/pipeline"
)

// Security groups across real VXLAN between namespaces, through a hub
// and then direct: the sender's identity crosses in the VXLAN GBP field,
// the receiver checks it. VPC 1 enforces groups (web: a1, a4; db: a3; a2
// is in both); VPC 2, with the same CIDRs, is open.
//
//	web: egress anything; ingress icmp from web, tcp 5201 from db
//	db:  egress anything; ingress icmp from 10.0.2.0/24
func TestSecurityGroupsAcrossHosts(t *testing.T) {
	w := newWorld(t, "h1", "h2", "hub")
	const web, db = 1, 2
	const idWeb, idDB, idBoth = 1, 2, 3
	identity := map[string]uint32{"a1": idWeb, "a4": idWeb, "a3": idDB, "a2": idBoth}
	webRules := []dataplane.SGRule{
		{Group: web, Prefix: netip.MustParsePrefix("0.0.0.0/0")},
		{Group: web, Ingress: true, Proto: 1, RemoteGroup: web},
		{Group: web, Ingress: true, Proto: 6, PortMin: 5201, PortMax: 5201, RemoteGroup: db},
	}
	dbRules := []dataplane.SGRule{
		{Group: db, Prefix: netip.MustParsePrefix("0.0.0.0/0")},
		{Group: db, Ingress: true, Proto: 1, Prefix: netip.MustParsePrefix("10.0.2.0/24")},
	}
	sg := func(rules ...[]dataplane.SGRule) []dataplane.SGVPC {
		v := dataplane.SGVPC{VPC: 1, Identities: map[uint32][]uint32{idWeb: {web}, idDB: {db}, idBoth: {web, db}}}
		for _, r := range rules {
			v.Rules = append(v.Rules, r...)
		}
		return []dataplane.SGVPC{v}
	}
	hubVTEP := w.lab.Hosts["hub"].VTEP
	hubs := []dataplane.Hubs{{VPC: 1, VTEPs: []netip.Addr{hubVTEP}}, {VPC: 2, VTEPs: []netip.Addr{hubVTEP}}}
	state := func(h string, rules ...[]dataplane.SGRule) *dataplane.State {
		s := w.baseState(h)
		s.Hubs = hubs
		if h == "hub" {
			s.Bindings = w.bindings("hub")
		}
		for i := range s.VPCs {
			if s.VPCs[i].ID == 1 {
				s.VPCs[i].Flags |= pipeline.VPCSGEgress | pipeline.VPCSGIngress
			}
		}
		for i := range s.Ports {
			s.Ports[i].Identity = identity[s.Ports[i].Name]
		}
		s.SG = sg(rules...)
		return s
	}
	w.load(t, "hub", true)
	w.apply(t, "hub", state("hub", webRules, dbRules))
	for _, h := range []string{"h1", "h2"} {
		w.load(t, h, false)
		w.apply(t, h, state(h, webRules, dbRules))
	}
	drops := func(h string) map[string]uint64 {
		var d map[string]uint64
		lab.Do(w.lab.Hosts[h].NS, func() error { var err error; d, err = w.dp[h].Drops(); return err })
		return d
	}

	t.Run("icmp from a member of web, through the hub then direct", func(t *testing.T) {
		w.mustPing(t, "a1", "10.0.2.12") // a1 (web, h1) -> a4 (web, h2)
		w.mustPing(t, "a1", "10.0.2.12")
	})
	t.Run("icmp from db to web is denied at the receiver", func(t *testing.T) {
		before := drops("h1")["sg_ingress"]
		w.mustNotPing(t, "a3", "10.0.1.11") // a3 (db, h2) -> a1 (web, h1)
		if drops("h1")["sg_ingress"] == before {
			t.Errorf("h1 counted no sg_ingress drop: %v", drops("h1"))
		}
	})
	t.Run("icmp by prefix; a port in two groups", func(t *testing.T) {
		w.mustPing(t, "a4", "10.0.1.12") // a4 (10.0.2.12) -> a3 (db): from 10.0.2.0/24
		w.mustPing(t, "a2", "10.0.2.12") // a2 (web and db) -> a4 (web)
	})
	t.Run("tcp 5201 from db, replies both ways", func(t *testing.T) {
		w.tcp(t, "a3", "a1", "10.0.1.11")
	})
	t.Run("tcp 5201 from web is not allowed", func(t *testing.T) {
		srv := exec.Command("ip", "netns", "exec", w.lab.VMs["a1"].NS, "iperf3", "-s", "-1", "-p", "5201")
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { srv.Process.Kill(); srv.Wait() }()
		time.Sleep(300 * time.Millisecond)
		if out, err := lab.Exec(w.lab.VMs["a4"].NS, "timeout", "3", "iperf3", "-c", "10.0.1.11", "-p", "5201", "-t", "1", "--connect-timeout", "1000"); err == nil {
			t.Errorf("a4 (web) connected to a1:5201:\n%s", out)
		}
	})
	t.Run("VPC 2, same addresses, open", func(t *testing.T) { w.mustPing(t, "b1", "10.0.2.12") })
	t.Run("removing a rule cuts the open connection within its bound", func(t *testing.T) {
		// a1 pings a4 ten times a second for 3 s; after 1 s, web's
		// "icmp from web" goes on h2.
		done := make(chan string, 1)
		go func() {
			out, _ := lab.Exec(w.lab.VMs["a1"].NS, "ping", "-c", "30", "-i", "0.1", "-W", "1", "10.0.2.12")
			done <- out
		}()
		time.Sleep(time.Second)
		removed := time.Now()
		w.apply(t, "h2", state("h2", webRules[:1], webRules[2:], dbRules))
		applied := time.Since(removed)
		out := <-done
		m := regexp.MustCompile(`(\d+) received`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("ping output:\n%s", out)
		}
		n, _ := strconv.Atoi(m[1])
		t.Logf("%d/30 echoes answered; the rule's removal took %v to apply", n, applied)
		if n < 5 || n > 15 {
			t.Errorf("%d/30 echoes answered, want about 10 (cut at 1 s)", n)
		}
	})
}
