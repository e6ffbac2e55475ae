package nbclient_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/courier-sdn/courier/internal/testenv"
	"github.com/courier-sdn/courier/nbclient"
	"github.com/courier-sdn/courier/schema/nbdb"
)

// An orchestrator makes a group with its rules in one call, puts a port
// in it, and takes it out again.
func TestSecurityGroupVerbs(t *testing.T) {
	ctx, c := blueWeb(t)
	if err := c.CreatePort(ctx, "web", &nbdb.Port{Name: "vm1", MAC: "02:00:00:00:01:0a", IPs: []string{"10.0.1.10"}}); err != nil {
		t.Fatal(err)
	}
	lo, cidr := 80, "10.0.0.0/8"
	rules := []*nbdb.SecurityGroupRule{{Direction: "ingress", Protocol: "tcp", PortMin: &lo, PortMax: &lo, RemoteCidr: &cidr}}
	if err := c.CreateSecurityGroup(ctx, "blue", "web", rules); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateSecurityGroup(ctx, "nope", "web", nil); err == nil {
		t.Error("a group in a VPC that does not exist was created")
	}
	var g string
	for g == "" && ctx.Err() == nil {
		g = c.SecurityGroup("blue", "web")
		time.Sleep(10 * time.Millisecond)
	}
	if err := c.SetPortGroups(ctx, "vm1", []string{g}); err != nil {
		t.Fatal(err)
	}
	for ctx.Err() == nil && !slices.Equal(c.Port("vm1").SecurityGroups, []string{g}) {
		time.Sleep(10 * time.Millisecond)
	}
	if ctx.Err() != nil {
		t.Fatalf("vm1's groups: %v", c.Port("vm1").SecurityGroups)
	}
	if err := c.DeleteSecurityGroup(ctx, "blue", "web"); err != nil {
		t.Fatal(err)
	}
	for ctx.Err() == nil && len(c.Port("vm1").SecurityGroups) != 0 {
		time.Sleep(10 * time.Millisecond)
	}
	if ctx.Err() != nil {
		t.Fatalf("vm1 still in the deleted group")
	}
}

// blueWeb dials a fresh northbound with VPC blue and its vxnet web
// (10.0.1.0/24).
func blueWeb(t *testing.T) (context.Context, *nbclient.Client) {
	t.Helper()
	dbs := testenv.StartDBs(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	c, err := nbclient.Dial(ctx, dbs.NB, nbclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if err := c.CreateVPC(ctx, &nbdb.VPC{Name: "blue"}); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateVxnet(ctx, "blue", &nbdb.Vxnet{Name: "web", Cidr: "10.0.1.0/24"}); err != nil {
		t.Fatal(err)
	}
	return ctx, c
}
