package nbclient_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/courier-sdn/courier/nbclient"
	"github.com/courier-sdn/courier/schema/nbdb"
)

// CreatePort writes the keys of the port's MAC and IP, or claims of
// addresses a key cannot hold (a virtual IP, and the fixed IPs of a port
// that has one): a second port with the same IP or MAC in the vxnet is
// refused by the database, whole, whether the first holds it by a key or
// a claim; ports sharing a virtual IP share its claim; a port with one
// IP and no virtual IP writes no claim.
func TestCreatePortClaimsItsAddresses(t *testing.T) {
	ctx, c := blueWeb(t)
	for _, p := range []*nbdb.Port{
		{Name: "vm1", MAC: "02:00:00:00:01:0a", IPs: []string{"10.0.1.10"}, VirtualIPs: []string{"10.0.1.100"}},
		{Name: "vm2", MAC: "02:00:00:00:01:0b", IPs: []string{"10.0.1.11"}, VirtualIPs: []string{"10.0.1.100"}},
		{Name: "vm4", MAC: "02:00:00:00:01:0d", IPs: []string{"10.0.1.4"}},
	} {
		if err := c.CreatePort(ctx, "web", p); err != nil {
			t.Fatalf("%s: %v", p.Name, err)
		}
	}
	for _, p := range []*nbdb.Port{
		{Name: "vm3", MAC: "02:00:00:00:01:0c", IPs: []string{"10.0.1.10"}},
		{Name: "vm3", MAC: "02:00:00:00:01:0a", IPs: []string{"10.0.1.13"}},
		{Name: "vm3", MAC: "02:00:00:00:01:0c", IPs: []string{"10.0.1.100"}},
		{Name: "vm3", MAC: "02:00:00:00:01:0c", IPs: []string{"10.0.1.20"}, VirtualIPs: []string{"10.0.1.4"}},
	} {
		err := c.CreatePort(ctx, "web", p)
		var re *nbclient.RefusedError
		if !errors.As(err, &re) || re.By != "database" {
			t.Errorf("port %s %v %v: %v, want a refusal by the database", p.MAC, p.IPs, p.VirtualIPs, err)
		}
	}
	for c.Port("vm4") == nil && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	vm1, vm2, vm4 := c.Port("vm1"), c.Port("vm2"), c.Port("vm4")
	if vm1 == nil || vm2 == nil || len(vm1.Claims) != 2 || len(vm2.Claims) != 2 || !strings.HasSuffix(vm1.MACKey, "/02:00:00:00:01:0a") {
		t.Fatalf("claims: %v, %v", vm1, vm2)
	}
	if vm4 == nil || len(vm4.Claims) != 0 || !strings.HasSuffix(vm4.IPKey, "/10.0.1.4") {
		t.Fatalf("a port with one IP: %v, want its keys and no claims", vm4)
	}
	shared := 0
	for _, u := range vm1.Claims {
		for _, v := range vm2.Claims {
			if u == v {
				shared++
			}
		}
	}
	if shared != 1 {
		t.Errorf("vm1 and vm2 share %d claims, want 1 (their virtual IP)", shared)
	}
	if c.Port("vm3") != nil {
		t.Error("a refused port was written")
	}
}
