package pipeline

import (
	"encoding/json"
	"net/netip"
	"os"
	"strings"
	"testing"
)

func TestParseMatchRoundTrip(t *testing.T) {
	cases := []struct{ in, out string }{
		{"1", "1"},
		{"ip4.dst == 10.0.1.0/24", "ip4.dst == 10.0.1.0/24"},
		{"inport.security && eth.src != inport.mac", "inport.security && eth.src != inport.mac"},
		{"arp.op == 1 && arp.tpa == 10.0.1.1", "arp.op == 1 && arp.tpa == 10.0.1.1"},
		{"!arp && !ip4", "!arp && !ip4"},
		{"ip.ttl <= 1", "ip.ttl <= 1"},
		{"eth.type == {0x800, 0x806}", "eth.type == {2048, 2054}"},
		{"(ip4 || arp) && dst.known", "(ip4 || arp) && dst.known"},
		{"inport.security && ip4 && ip4.src != inport.addrs", "inport.security && ip4 && ip4.src != inport.addrs"},
		{"eth.dst == 0A:C0:00:00:00:01", "eth.dst == 0a:c0:00:00:00:01"},
	}
	for _, c := range cases {
		e, err := ParseMatch(c.in)
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		if e.String() != c.out {
			t.Errorf("%q printed as %q, want %q", c.in, e.String(), c.out)
		}
		if _, err := ParseMatch(e.String()); err != nil {
			t.Errorf("%q: printed form does not parse: %v", c.in, err)
		}
	}
}

func TestParseMatchErrors(t *testing.T) {
	for _, in := range []string{
		"", "ip4.dst", "ip4 == 1", "foo.bar == 1", "ip4.dst == 10.0.0.256", "eth.src == 10.0.0.1",
		"ip4.dst == 10.0.0.0/24 &&", "(ip4", "ip4.dst <= 10.0.0.1", "eth.src == inport.addrs", "arp.op == {1, ", "ip4 & arp",
	} {
		if e, err := ParseMatch(in); err == nil {
			t.Errorf("%q parsed as %v", in, e)
		}
	}
}

func TestParseActions(t *testing.T) {
	as, err := ParseActions("ttl_dec; eth.src = 0a:c0:00:00:00:01; route(nexthop=10.0.1.5, vni=5001);")
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 3 || as[1].Name != "set" || as[2].Name != "route" {
		t.Fatalf("parsed %+v", as)
	}
	if v, _ := as[2].Arg("vni"); v != "5001" {
		t.Errorf("vni arg %q", v)
	}
	if got := FormatActions(as); got != "ttl_dec; eth.src = 0a:c0:00:00:00:01; route(nexthop=10.0.1.5, vni=5001);" {
		t.Errorf("printed %q", got)
	}
	for _, in := range []string{"", "next", "frob;", "drop(x", "eth.src = 10.0.0.1;", "nope = 1;"} {
		if _, err := ParseActions(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

// The schema's Logical_Flow.stage enum and the stage table must agree.
func TestSchemaStagesMatchTable(t *testing.T) {
	b, err := os.ReadFile("../schema/sb.ovsschema")
	if err != nil {
		t.Fatal(err)
	}
	var s map[string]any
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	dig := func(m any, keys ...string) any {
		for _, k := range keys {
			m = m.(map[string]any)[k]
		}
		return m
	}
	enum := dig(s, "tables", "Logical_Flow", "columns", "stage", "type", "key", "enum").([]any)
	var names []string
	for _, n := range enum[1].([]any) {
		names = append(names, n.(string))
	}
	var want []string
	for _, st := range Stages {
		want = append(want, st.Name)
	}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Fatalf("schema stages %v, table %v", names, want)
	}
}

type testEnv struct {
	vals   map[string]string
	bools  map[string]bool
	set    []netip.Addr
	groups map[string][]string
}

func (e testEnv) Value(f string) (Value, bool) {
	s, ok := e.vals[f]
	if !ok {
		return Value{}, false
	}
	v, err := ParseValue(s, Fields[f])
	return v, err == nil
}
func (e testEnv) Bool(f string) bool          { return e.bools[f] }
func (e testEnv) AddrSet(string) []netip.Addr { return e.set }
func (e testEnv) Groups(f string) []string    { return e.groups[f] }

func TestEval(t *testing.T) {
	env := testEnv{vals: map[string]string{"ip4.src": "10.0.1.5", "ip4.dst": "10.0.2.9", "eth.src": "02:00:00:00:00:01",
		"inport.mac": "02:00:00:00:00:01", "ip.ttl": "1", "inport": "vm1"},
		bools: map[string]bool{"ip4": true, "inport.security": true}, set: []netip.Addr{netip.MustParseAddr("10.0.1.5")},
		groups: map[string][]string{"inport.sg": {"db", "web"}}}
	for m, want := range map[string]bool{
		"1": true, "0": false, "ip4": true, "arp": false, "!arp && ip4": true,
		"ip4.dst == 10.0.2.0/24": true, "ip4.dst == 10.0.1.0/24": false, "ip4.dst == {10.0.1.0/24, 10.0.2.9}": true,
		"inport.security && eth.src != inport.mac": false, "eth.src == inport.mac": true,
		"inport.security && ip4 && ip4.src != inport.addrs": false, "ip4.dst != inport.addrs": true,
		"ip.ttl <= 1": true, "arp.tpa == 10.0.2.9": false, "arp.tpa != 10.0.2.9": false,
		`inport == "vm1"`: true, `inport == "vm2"`: false, "arp || ip4.src == 10.0.1.5": true,
		`inport.sg == "web"`: true, `inport.sg == "db"`: true, `inport.sg == "ops"`: false, `inport.sg != "web"`: false,
		`inport.sg != "ops"`: true, `inport.sg == {"ops", "db"}`: true, `dst.sg == "web"`: false,
	} {
		e, err := ParseMatch(m)
		if err != nil {
			t.Fatalf("%s: %v", m, err)
		}
		if got := Eval(e, env); got != want {
			t.Errorf("%s: %v, want %v", m, got, want)
		}
	}
}

// Action arguments may be sets and quoted strings; they print as parsed,
// and dhcp_reply's read back.
func TestActionArgumentsRoundTrip(t *testing.T) {
	in := `dhcp_reply(router=10.0.1.1, netmask=255.255.255.0, lease=3600, dns={10.0.0.2, 192.0.2.53}, domain="a b.internal", routes={192.168.0.0/16});`
	acts, err := ParseActions(in)
	if err != nil {
		t.Fatal(err)
	}
	if got := FormatActions(acts); got != in {
		t.Errorf("printed as\n%s\nwant\n%s", got, in)
	}
	r, err := ParseDHCPReply(acts[0])
	if err != nil {
		t.Fatal(err)
	}
	if r.Netmask != 24 || r.Lease != 3600 || len(r.DNS) != 2 || r.Domain != "a b.internal" || len(r.Routes) != 1 || r.Router.String() != "10.0.1.1" {
		t.Errorf("%+v", r)
	}
	for _, bad := range []string{"dhcp_reply(dns={10.0.0.2);", "dhcp_reply(router=);", `dhcp_reply(domain="x);`} {
		if _, err := ParseActions(bad); err == nil {
			t.Errorf("%s parsed", bad)
		}
	}
	for _, bad := range []string{"dhcp_reply(router=10.0.1.1, netmask=255.0.255.0, lease=1);", "dhcp_reply(router=10.0.1.1, lease=1);",
		"dhcp_reply(router=10.0.1.1, netmask=255.255.255.0, lease=1, color=red);"} {
		acts, err := ParseActions(bad)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseDHCPReply(acts[0]); err == nil {
			t.Errorf("%s read", bad)
		}
	}
}
