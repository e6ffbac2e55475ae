package nbclient_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/courier-sdn/courier/internal/testenv"
	"github.com/courier-sdn/courier/nbclient"
	"github.com/courier-sdn/courier/schema/nbdb"
)

// An orchestrator adds a network and an EIP, binds and unbinds it; a
// bind of a bound EIP, or an unbind from the wrong port, changes nothing.
func TestEIPVerbs(t *testing.T) {
	dbs := testenv.StartDBs(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := nbclient.Dial(ctx, dbs.NB, nbclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.CreateVPC(ctx, &nbdb.VPC{Name: "blue"}))
	must(c.CreateVxnet(ctx, "blue", &nbdb.Vxnet{Name: "web", Cidr: "10.0.1.0/24"}))
	must(c.CreatePort(ctx, "web", &nbdb.Port{Name: "vm1", MAC: "02:00:00:00:01:0a", IPs: []string{"10.0.1.10"}}))
	must(c.CreatePort(ctx, "web", &nbdb.Port{Name: "vm2", MAC: "02:00:00:00:01:0b", IPs: []string{"10.0.1.11"}}))
	must(c.CreateExternalNetwork(ctx, &nbdb.ExternalNetwork{Name: "internet", Kind: "public", Cidrs: []string{"203.0.113.0/24"}}))
	if err := c.CreateEIP(ctx, "nowhere", "203.0.113.9", ""); err == nil {
		t.Error("an EIP of a network that does not exist was created")
	}
	for ctx.Err() == nil && c.Port("vm2") == nil {
		time.Sleep(10 * time.Millisecond)
	}
	must(c.CreateEIP(ctx, "internet", "203.0.113.5", ""))
	must(c.BindEIP(ctx, "203.0.113.5", "vm1"))
	if err := c.BindEIP(ctx, "203.0.113.5", "vm2"); err == nil || !strings.Contains(err.Error(), "not an unbound EIP") {
		t.Errorf("binding a bound EIP: %v", err)
	}
	if err := c.UnbindEIP(ctx, "203.0.113.5", "vm2"); err == nil {
		t.Error("unbinding from a port it is not bound to succeeded")
	}
	vm1 := c.Port("vm1").UUID
	for ctx.Err() == nil && (c.EIP("203.0.113.5") == nil || c.EIP("203.0.113.5").Port == nil || *c.EIP("203.0.113.5").Port != vm1) {
		time.Sleep(10 * time.Millisecond)
	}
	must(c.UnbindEIP(ctx, "203.0.113.5", "vm1"))
	for ctx.Err() == nil && c.EIP("203.0.113.5").Port != nil {
		time.Sleep(10 * time.Millisecond)
	}
	must(c.DeleteEIP(ctx, "203.0.113.5"))
	for ctx.Err() == nil && c.EIP("203.0.113.5") != nil {
		time.Sleep(10 * time.Millisecond)
	}
	if ctx.Err() != nil {
		t.Fatal("the EIP's changes did not come back")
	}
}
