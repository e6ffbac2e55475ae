package nbctl_test

import (
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/courier-sdn/courier/internal/testenv"
	"github.com/courier-sdn/courier/tools/nbctl"
)

// claims lists the addresses the northbound's ports hold, as
// address/kind, sorted: the keys on Port rows (a MAC's, kind mac; an
// IP's, kind ip; not per-port scopes) and the Address_Claim rows.
func claims(t *testing.T, db string) []string {
	t.Helper()
	var got []string
	for i, cols := range [][]string{{"Address_Claim", "address", "kind"}, {"Port", "mac_key"}, {"Port", "ip_key"}} {
		args := append([]string{"-f", "csv", "--no-headings", "dump", db, "Courier_Northbound"}, cols...)
		out, err := exec.Command("ovsdb-client", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("ovsdb-client dump: %v: %s", err, out)
		}
		_, rows, _ := strings.Cut(string(out), "\n") // after the table's name
		for _, f := range strings.Fields(strings.ReplaceAll(strings.ReplaceAll(rows, ",", "/"), `"`, "")) {
			switch _, addr, keyed := strings.Cut(f, "/"); {
			case i == 0:
				got = append(got, f)
			case keyed:
				got = append(got, addr+"/"+cols[1][:len(cols[1])-4])
			}
		}
	}
	slices.Sort(got)
	return got
}

// TestClashRefusesTheChainWhole: a chain of port-adds one of which takes
// an address a port in the database holds (read by no command: the
// claim index refuses it at commit) is refused whole, with the message
// naming the address and its holder, and leaves nothing behind.
func TestClashRefusesTheChainWhole(t *testing.T) {
	db := testenv.StartDBs(t).NB
	mustNB(t, db, "init", "--", "vpc-add", "v", "--", "vxnet-add", "v", "web", "10.0.1.0/24",
		"--", "port-add", "web", "held", "02:00:00:00:01:0a", "10.0.1.10", "--vip", "10.0.1.100")
	before := claims(t, db)
	for _, c := range []struct{ clash, refusal string }{
		{"02:00:00:00:01:21 10.0.1.10", "IP 10.0.1.10 is already used by port held in vxnet web"},
		{"02:00:00:00:01:0a 10.0.1.21", "MAC 02:00:00:00:01:0a is already used by port held in vxnet web"},
		{"02:00:00:00:01:21 10.0.1.100", "IP 10.0.1.100 is a virtual IP of another port in vxnet web"},
		{"02:00:00:00:01:21 10.0.1.21 --vip 10.0.1.10", "virtual IP 10.0.1.10 is the fixed IP of port held in vxnet web"},
	} {
		args := append(append([]string{"port-add", "web", "a", "02:00:00:00:01:01", "10.0.1.3", "--", "port-add", "web", "b"},
			strings.Fields(c.clash)...), "--", "port-add", "web", "z", "02:00:00:00:01:02", "10.0.1.2")
		if _, err := nb(db, args...); errText(err) != c.refusal {
			t.Errorf("%s: got %v, want %q", strings.Join(args, " "), err, c.refusal)
		}
		if out := mustNB(t, db, "port-list", "web"); strings.Count(out, "\n") != 2 {
			t.Errorf("after a refused chain, port-list shows:\n%s", out)
		}
		if now := claims(t, db); !slices.Equal(now, before) {
			t.Errorf("after a refused chain, claims %v, want %v", now, before)
		}
	}
}

// TestClaimsFollowPorts: a port's claims are replaced when its addresses
// change and go with it when it is deleted, whether directly or with its
// vxnet; a virtual IP shared by ports is one claim, kept while one of
// them lists it.
func TestClaimsFollowPorts(t *testing.T) {
	db := testenv.StartDBs(t).NB
	mustNB(t, db, "init", "--", "vpc-add", "v", "--", "vxnet-add", "v", "web", "10.0.1.0/24")
	steps := []struct {
		args    string
		refusal string
		claims  []string
	}{
		{"port-add web p 02:00:00:00:01:0a 10.0.1.10", "", []string{"02:00:00:00:01:0a/mac", "10.0.1.10/ip"}},
		{"port-set p --ips 10.0.1.11", "", []string{"02:00:00:00:01:0a/mac", "10.0.1.11/ip"}},
		{"port-add web q 02:00:00:00:01:0b 10.0.1.10 --vip 10.0.1.100", "",
			[]string{"02:00:00:00:01:0a/mac", "02:00:00:00:01:0b/mac", "10.0.1.10/ip", "10.0.1.100/vip", "10.0.1.11/ip"}},
		{"port-set p --vips 10.0.1.100 --mac dynamic", "", []string{"02:00:00:00:01:0b/mac", "10.0.1.10/ip", "10.0.1.100/vip", "10.0.1.11/ip"}},
		{"port-del q", "", []string{"10.0.1.100/vip", "10.0.1.11/ip"}},
		{"port-add web r 02:00:00:00:01:0c 10.0.1.100", "IP 10.0.1.100 is a virtual IP of another port in vxnet web", nil},
		{"port-set p --vips none -- port-add web r 02:00:00:00:01:0c 10.0.1.100", "", []string{"02:00:00:00:01:0c/mac", "10.0.1.100/ip", "10.0.1.11/ip"}},
		{"port-add web s 02:00:00:00:01:0d 10.0.1.20 -- port-del s -- port-add web t 02:00:00:00:01:0e 10.0.1.20", "",
			[]string{"02:00:00:00:01:0c/mac", "02:00:00:00:01:0e/mac", "10.0.1.100/ip", "10.0.1.11/ip", "10.0.1.20/ip"}},
		{"vxnet-del web", "", []string{}},
	}
	for _, s := range steps {
		_, err := nb(db, strings.Fields(s.args)...)
		if errText(err) != s.refusal {
			t.Fatalf("%s: got %v, want %q", s.args, err, s.refusal)
		}
		if got := claims(t, db); s.claims != nil && !slices.Equal(got, s.claims) {
			t.Errorf("after %s: claims %v, want %v", s.args, got, s.claims)
		}
	}
}

// TestTwoCLIsRaceForOneAddress: invocations racing to claim one address
// (each reads nothing that the other writes) are decided by the server:
// exactly one commits, the other is refused naming the winner. Before
// claims, a wait on the vxnet's whole port list did this.
func TestTwoCLIsRaceForOneAddress(t *testing.T) {
	db := testenv.StartDBs(t).NB
	mustNB(t, db, "init", "--", "vpc-add", "v", "--", "vxnet-add", "v", "web", "10.0.0.0/16")
	var winners []string
	for i := 0; i < 20; i++ {
		addr := fmt.Sprintf("10.0.%d.%d", 1+i/200, 2+i%200)
		errs := race(func(k int) error {
			_, err := nb(db, "port-add", "web", fmt.Sprintf("r%d-%d", i, k), fmt.Sprintf("02:00:00:00:%02x:%02x", k, i), addr)
			return err
		})
		won := slices.IndexFunc(errs, func(err error) bool { return err == nil })
		if won < 0 || errs[1-won] == nil {
			t.Fatalf("round %d: %v, %v: want exactly one to commit", i, errs[0], errs[1])
		}
		winners = append(winners, fmt.Sprintf("r%d-%d", i, won))
		want := fmt.Sprintf("IP %s is already used by port %s in vxnet web", addr, winners[i])
		if got := errs[1-won].Error(); got != want {
			t.Errorf("round %d: the loser got %q, want %q", i, got, want)
		}
	}
	if out := mustNB(t, db, "port-list", "web"); strings.Count(out, "\n") != 1+20 {
		t.Errorf("after 20 races, port-list:\n%s", out)
	}
	// A new virtual IP added to two ports at once: both commit, sharing
	// one claim (the loser of the insert reads again and shares it).
	for i := 0; i < 10; i++ {
		vip := fmt.Sprintf("10.0.9.%d", 2+i)
		errs := race(func(k int) error {
			_, err := nb(db, "port-set", winners[2*i+k], "--vips", vip)
			return err
		})
		if errs[0] != nil || errs[1] != nil {
			t.Errorf("round %d: a shared virtual IP added at once: %v, %v", i, errs[0], errs[1])
		}
	}
	if got := claims(t, db); len(got) != 2*20+10 {
		t.Errorf("%d claims after the races, want %d (20 ports' MAC and IP, 10 shared virtual IPs)", len(got), 2*20+10)
	}
}

// TestKeyAndClaimRaceForOneAddress: a port that holds an IP by its key
// (one fixed IP) and a port that claims it (two fixed IPs, so claim
// rows), racing, are decided by the server: exactly one commits (the
// claimant's wait that no key holds it, the key holder's wait that its
// vxnet's claims are those it read), the other is refused naming it.
func TestKeyAndClaimRaceForOneAddress(t *testing.T) {
	db := testenv.StartDBs(t).NB
	mustNB(t, db, "init", "--", "vpc-add", "v", "--", "vxnet-add", "v", "web", "10.0.0.0/16")
	for i := 0; i < 20; i++ {
		addr, other := fmt.Sprintf("10.0.1.%d", 2+i), fmt.Sprintf("10.0.2.%d", 2+i)
		names := []string{fmt.Sprintf("key%d", i), fmt.Sprintf("claim%d", i)}
		errs := race(func(k int) error {
			args := []string{"port-add", "web", names[k], fmt.Sprintf("02:00:00:00:%02x:%02x", k, i), addr}
			if k == 1 {
				args = append(args, other)
			}
			_, err := nb(db, args...)
			return err
		})
		won := slices.IndexFunc(errs, func(err error) bool { return err == nil })
		if won < 0 || errs[1-won] == nil {
			t.Fatalf("round %d: %v, %v: want exactly one to commit", i, errs[0], errs[1])
		}
		want := fmt.Sprintf("IP %s is already used by port %s in vxnet web", addr, names[won])
		if got := errs[1-won].Error(); got != want {
			t.Errorf("round %d: the loser got %q, want %q", i, got, want)
		}
	}
	if out := mustNB(t, db, "port-list", "web"); strings.Count(out, "\n") != 1+20 {
		t.Errorf("after 20 races, port-list:\n%s", out)
	}
}

// TestKeyAndClaimInterleaved: a writer whose IP is a key and one that
// claims it (two fixed IPs), the second committing between the first's
// reads and its commit: the first is refused naming the second, by its
// wait that the vxnet's claims (or, for a chain over many vxnets, the
// table's) are those it read, or that no key holds the claimed address.
func TestKeyAndClaimInterleaved(t *testing.T) {
	for _, others := range []int{0, 20} {
		for _, keyFirst := range []bool{true, false} {
			t.Run(fmt.Sprintf("%d other vxnets, key first %v", others, keyFirst), func(t *testing.T) {
				db := testenv.StartDBs(t).NB
				mustNB(t, db, "init", "--", "vpc-add", "v", "--", "vxnet-add", "v", "web", "10.0.0.0/16")
				key := []string{"port-add", "web", "key", "02:00:00:00:00:01", "10.0.1.2"}
				for o := 0; o < others; o++ {
					mustNB(t, db, "vxnet-add", "v", fmt.Sprintf("o%d", o), fmt.Sprintf("10.%d.0.0/16", 1+o))
					key = append(key, "--", "port-add", fmt.Sprintf("o%d", o), fmt.Sprintf("o%d", o), mac(1+o, 0), ip(1+o, 0))
				}
				claim := []string{"port-add", "web", "claim", "02:00:00:00:00:02", "10.0.1.2", "10.0.2.2"}
				first, second, winner := key, claim, "claim"
				if !keyFirst {
					first, second, winner = claim, key, "key"
				}
				nbctl.BeforeCommit(func() { mustNB(t, db, second...) })
				_, err := nb(db, first...)
				if want := "IP 10.0.1.2 is already used by port " + winner + " in vxnet web"; errText(err) != want {
					t.Errorf("the first writer: %v, want %q", err, want)
				}
			})
		}
	}
}

// race runs f(0) and f(1) at once and returns their errors.
func race(f func(k int) error) []error {
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make([]error, 2)
	for k := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[k] = f(k)
		}()
	}
	close(start)
	wg.Wait()
	return errs
}

// TestPortsWrittenWithoutClaims: a port an orchestrator wrote without
// claims is invisible to the claims until claim-sync gives it its own;
// the CLI changes and deletes it all the same.
func TestPortsWrittenWithoutClaims(t *testing.T) {
	db := testenv.StartDBs(t).NB
	mustNB(t, db, "init", "--", "vpc-add", "v", "--", "vxnet-add", "v", "web", "10.0.1.0/24")
	testenv.Run(t, "ovsdb-client", "transact", db, `["Courier_Northbound",
		{"op":"insert","table":"Port","uuid-name":"p","row":{"name":"raw","mac":"02:00:00:00:01:0a","ips":"10.0.1.10"}},
		{"op":"mutate","table":"Vxnet","where":[["name","==","web"]],"mutations":[["ports","insert",["named-uuid","p"]]]}]`)
	if got := claims(t, db); len(got) != 0 {
		t.Fatalf("claims of a raw port: %v", got)
	}
	mustNB(t, db, "claim-sync")
	if got, want := claims(t, db), []string{"02:00:00:00:01:0a/mac", "10.0.1.10/ip"}; !slices.Equal(got, want) {
		t.Errorf("after claim-sync: %v, want %v", got, want)
	}
	if _, err := nb(db, "port-add", "web", "x", "02:00:00:00:01:0b", "10.0.1.10"); errText(err) != "IP 10.0.1.10 is already used by port raw in vxnet web" {
		t.Errorf("port-add of the raw port's IP after claim-sync: %v", err)
	}
	mustNB(t, db, "claim-sync") // again: nothing to do
	mustNB(t, db, "port-set", "raw", "--ips", "10.0.1.11", "--", "port-add", "web", "x", "02:00:00:00:01:0b", "10.0.1.10")
	mustNB(t, db, "port-del", "raw")
	if got, want := claims(t, db), []string{"02:00:00:00:01:0b/mac", "10.0.1.10/ip"}; !slices.Equal(got, want) {
		t.Errorf("after the raw port's deletion: %v, want %v", got, want)
	}
}
