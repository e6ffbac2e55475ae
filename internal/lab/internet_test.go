package lab

import (
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	"github.com/courier-sdn/courier/internal/testenv"
)

// routeTo is the internet's route to public as ip prints it, one line
// per next hop, "" when there is none.
func routeTo(t *testing.T, l *Lab, public string) string {
	t.Helper()
	out, err := exec.Command("ip", "-n", l.InternetNS(), "route", "show", public).CombinedOutput()
	if err != nil {
		t.Fatalf("ip route show %s: %v: %s", public, err, out)
	}
	return strings.TrimSpace(string(out))
}

func hop(route, dev string) string {
	for _, line := range strings.Split(route, "\n") {
		if strings.Contains(line, "dev "+dev+" ") || strings.HasSuffix(line, "dev "+dev) {
			return strings.TrimSpace(line)
		}
	}
	return ""
}

// The internet reaches each gateway over a link of its own: a gateway's
// link going down (either end) marks its next hop dead, every link down
// leaves no route (the kernel deletes it), and links up again with
// RouteInternet give back the route and the links' own routes (from
// their peer addresses), as the sandbox's host-up does. Before, one
// bridge kept a dead gateway's next hop alive.
func TestInternetLinksTakeTheirNextHops(t *testing.T) {
	testenv.Integration(t, "ip", "ping")
	testenv.Root(t)
	l, err := New("clab"+testenv.ID()+"-", netip.MustParsePrefix("192.168.100.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Destroy() })
	var gws []*Host
	for i, n := range []string{"gw1", "gw2"} {
		h, err := l.AddHost(n, i+1)
		if err != nil {
			t.Fatal(err)
		}
		gws = append(gws, h)
	}
	public := netip.MustParsePrefix("203.0.113.0/24")
	in, err := l.AddInternet(netip.MustParsePrefix("198.51.100.10/24"), public, gws)
	if err != nil {
		t.Fatal(err)
	}
	if in.Uplinks["gw1"] != netip.MustParseAddr("198.51.100.1") || in.Uplinks["gw2"] != netip.MustParseAddr("198.51.100.2") {
		t.Fatalf("uplinks %v", in.Uplinks)
	}
	reach := func(gw string) bool {
		_, err := Exec(in.NS, "ping", "-c1", "-W1", in.Uplinks[gw].String())
		return err == nil
	}
	r := routeTo(t, l, public.String())
	for _, g := range []string{"gw1", "gw2"} {
		if h := hop(r, "i-"+g); h == "" || strings.Contains(h, "dead") || !reach(g) {
			t.Fatalf("%s: next hop %q, reachable %v; route:\n%s", g, h, reach(g), r)
		}
	}

	if err := SetLinks(l.UplinkEnds(gws[0]), false); err != nil {
		t.Fatal(err)
	}
	r = routeTo(t, l, public.String())
	if h := hop(r, "i-gw1"); !strings.Contains(h, "dead") {
		t.Errorf("gw1's link down: its next hop %q, want dead; route:\n%s", h, r)
	}
	if h := hop(r, "i-gw2"); h == "" || strings.Contains(h, "dead") {
		t.Errorf("gw1's link down: gw2's next hop %q, want alive; route:\n%s", h, r)
	}
	// Only the gateway's end down: the internet's end loses its carrier.
	if err := SetLinks(l.UplinkEnds(gws[0]), true); err != nil {
		t.Fatal(err)
	}
	if err := SetLinks(l.UplinkEnds(gws[1])[:1], false); err != nil {
		t.Fatal(err)
	}
	if h := hop(routeTo(t, l, public.String()), "i-gw2"); !strings.Contains(h, "dead") {
		t.Errorf("gw2's own end down: its next hop %q, want dead", h)
	}
	if err := SetLinks(append(l.UplinkEnds(gws[0]), l.UplinkEnds(gws[1])...), false); err != nil {
		t.Fatal(err)
	}
	if r := routeTo(t, l, public.String()); r != "" {
		t.Errorf("every link down: route %q, want none", r)
	}
	if err := l.RouteInternet(public, in.Uplinks); err != nil {
		t.Errorf("RouteInternet with every link down: %v", err)
	}

	if err := SetLinks(append(l.UplinkEnds(gws[0]), l.UplinkEnds(gws[1])...), true); err != nil {
		t.Fatal(err)
	}
	if up, err := LinksUp(append(l.UplinkEnds(gws[0]), l.UplinkEnds(gws[1])...)); !up || err != nil {
		t.Errorf("links up %v (%v)", up, err)
	}
	if err := l.RouteInternet(public, in.Uplinks); err != nil {
		t.Fatal(err)
	}
	r = routeTo(t, l, public.String())
	for _, g := range []string{"gw1", "gw2"} {
		if h := hop(r, "i-"+g); h == "" || strings.Contains(h, "dead") || !reach(g) {
			t.Errorf("after the links came back, %s: next hop %q, reachable %v; route:\n%s", g, h, reach(g), r)
		}
	}
}
