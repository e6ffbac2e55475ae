// Command orchestrator is an example of an orchestrator driving Courier
// through nbclient: it declares a VPC with one vxnet and the ports of
// some VMs, then reports what Courier made of each port: refused (and
// why), accepted, or up on a chassis.
//
//	orchestrator --db unix:/var/run/courier/nb.sock --vpc blue --vxnet web --cidr 10.0.1.0/24 \
//	    vm1=02:00:00:00:01:0a,10.0.1.10 vm2=02:00:00:00:01:0b,10.0.1.11
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/courier-sdn/courier/nbclient"
	"github.com/courier-sdn/courier/schema/nbdb"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, out, errw io.Writer) int {
	fs := flag.NewFlagSet("orchestrator", flag.ContinueOnError)
	fs.SetOutput(errw)
	db := fs.String("db", "unix:/var/run/courier/nb.sock", "the northbound")
	vpc := fs.String("vpc", "blue", "the VPC")
	vxnet := fs.String("vxnet", "web", "its vxnet")
	cidr := fs.String("cidr", "10.0.1.0/24", "the vxnet's CIDR")
	wait := fs.String("wait", "accepted", "wait for each port to be accepted (compiled by northd) or up (programmed by its chassis)")
	timeout := fs.Duration("timeout", 30*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := declare(ctx, *db, *vpc, *vxnet, *cidr, *wait, fs.Args(), out); err != nil {
		fmt.Fprintln(errw, "orchestrator:", err)
		return 1
	}
	return 0
}

func declare(ctx context.Context, db, vpc, vxnet, cidr, wait string, ports []string, out io.Writer) error {
	c, err := nbclient.Dial(ctx, db, nbclient.Options{})
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.CreateVPC(ctx, &nbdb.VPC{Name: vpc}); err != nil {
		return err
	}
	if err := c.CreateVxnet(ctx, vpc, &nbdb.Vxnet{Name: vxnet, Cidr: cidr}); err != nil {
		return err
	}
	state := nbclient.Accepted
	if wait == "up" {
		state = nbclient.Up
	}
	var names []string
	for _, a := range ports {
		name, spec, _ := strings.Cut(a, "=")
		mac, ip, _ := strings.Cut(spec, ",")
		if err := c.CreatePort(ctx, vxnet, &nbdb.Port{Name: name, MAC: mac, IPs: []string{ip}}); err != nil {
			return err
		}
		names = append(names, name)
	}
	for _, name := range names {
		p, err := c.WaitPort(ctx, name, state)
		var refused *nbclient.RefusedError
		switch {
		case errors.As(err, &refused):
			fmt.Fprintf(out, "%s: refused: %s\n", name, refused.Reason)
		case err != nil:
			return err
		case *p.Up:
			fmt.Fprintf(out, "%s: up on %s\n", name, *p.Chassis)
		case p.Chassis != nil:
			fmt.Fprintf(out, "%s: accepted, bound to %s, not up yet\n", name, *p.Chassis)
		default:
			fmt.Fprintf(out, "%s: accepted, no chassis yet\n", name)
		}
	}
	return nil
}
