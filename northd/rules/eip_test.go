package rules

import (
	"strings"
	"testing"
)

func TestExtnetAndEIPChecks(t *testing.T) {
	ps, err := ParseExtnetCIDRs([]string{"203.0.113.0/24", "198.18.0.8/30"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		ip, err string
	}{
		{"203.0.113.10", ""},
		{"198.18.0.9", ""},
		{"203.0.114.1", "outside external network inet (203.0.113.0/24, 198.18.0.8/30)"},
		{"203.0.113.0", "network or broadcast"},
		{"203.0.113.255", "network or broadcast"},
		{"198.18.0.11", "network or broadcast"},
		{"2001:db8::1", "not an IPv4 address"},
	} {
		_, err := CheckEIP("inet", ps, c.ip)
		if (err == nil) != (c.err == "") || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Errorf("CheckEIP(%s) = %v, want %q", c.ip, err, c.err)
		}
	}
	for _, bad := range [][]string{nil, {"203.0.113.1/24"}, {"10.0.0.0/4"}, {"10.0.0.0/8", "10.1.0.0/16"}, {"x"}} {
		if _, err := ParseExtnetCIDRs(bad); err == nil {
			t.Errorf("ParseExtnetCIDRs(%v) accepted", bad)
		}
	}
}
