package nbclient

import (
	"slices"
	"testing"

	"github.com/courier-sdn/courier/schema/nbdb"
)

func TestAddresses(t *testing.T) {
	s := func(v string) *string { return &v }
	for _, c := range []struct {
		p        nbdb.Port
		mac, ips string
	}{
		{nbdb.Port{MAC: "02:00:00:00:00:01", IPs: []string{"10.0.1.5"}}, "02:00:00:00:00:01", "10.0.1.5"},
		{nbdb.Port{MAC: "dynamic", IPs: []string{"dynamic"}}, "dynamic", "dynamic"},
		{nbdb.Port{MAC: "dynamic", IPs: []string{"dynamic"}, DynamicAddresses: s("0a:58:00:00:00:07 10.0.1.9")}, "0a:58:00:00:00:07", "10.0.1.9"},
		{nbdb.Port{MAC: "02:00:00:00:00:01", IPs: []string{"dynamic"}, DynamicAddresses: s("02:00:00:00:00:01 10.0.1.9")}, "02:00:00:00:00:01", "10.0.1.9"},
		{nbdb.Port{MAC: "dynamic", IPs: []string{"10.0.1.5"}, DynamicAddresses: s("0a:58:00:00:00:07 10.0.1.5")}, "0a:58:00:00:00:07", "10.0.1.5"},
	} {
		mac, ips := Addresses(&c.p)
		if mac != c.mac || !slices.Equal(ips, []string{c.ips}) {
			t.Errorf("Addresses(%s %v %v) = %s %v, want %s %s", c.p.MAC, c.p.IPs, c.p.DynamicAddresses, mac, ips, c.mac, c.ips)
		}
	}
}
