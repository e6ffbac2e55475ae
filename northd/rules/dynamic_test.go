package rules

import (
	"net/netip"
	"strings"
	"testing"
)

func TestExcludeIPs(t *testing.T) {
	p := netip.MustParsePrefix("10.0.1.0/24")
	for _, c := range []struct{ in, want, err string }{
		{"", "", ""},
		{"10.0.1.2", "10.0.1.2-10.0.1.2", ""},
		{"10.0.1.2 10.0.1.100..10.0.1.120", "10.0.1.2-10.0.1.2 10.0.1.100-10.0.1.120", ""},
		{"10.0.1.2,10.0.1.5..10.0.1.6", "10.0.1.2-10.0.1.2 10.0.1.5-10.0.1.6", ""},
		{"10.0.2.2", "", "options:exclude_ips: 10.0.2.2 is outside vxnet web's CIDR 10.0.1.0/24"},
		{"10.0.1.9..10.0.1.3", "", "range 10.0.1.9..10.0.1.3 ends before it starts"},
		{"bogus", "", `"bogus" is not an IPv4 address`},
		{"10.0.1.2..", "", `"" is not an IPv4 address`},
	} {
		rs, err := ExcludeIPs("web", p, c.in)
		var got []string
		for _, r := range rs {
			got = append(got, r.Lo.String()+"-"+r.Hi.String())
		}
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ExcludeIPs(%q): error %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || strings.Join(got, " ") != c.want {
			t.Errorf("ExcludeIPs(%q) = %v, %v; want %s", c.in, got, err, c.want)
		}
	}
}

func TestParseMACPrefix(t *testing.T) {
	for _, c := range []struct{ in, want, err string }{
		{"0a:58:00", "0a:58:00", ""},
		{"0A:58:C0", "0a:58:c0", ""},
		{"01:00:00", "", "multicast"},
		{"0a:c0:00", "", "reserved for gateway MACs"},
		{"0a:58", "", "not three octets"},
		{"0a:58:00:01", "", "not three octets"},
		{"zz:00:00", "", "not three octets"},
	} {
		got, err := ParseMACPrefix(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseMACPrefix(%q): error %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ParseMACPrefix(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}
