package rules

import (
	"strings"
	"testing"
)

func TestDHCPOptions(t *testing.T) {
	d, err := DHCPOptions(nil, "Blue")
	if err != nil || d.Off || d.Domain != "blue.internal" || d.Lease != 43200 || d.DNS != "" || d.MTU != 0 {
		t.Errorf("defaults %+v %v", d, err)
	}
	d, err = DHCPOptions(map[string]string{"dns_servers": "{10.0.0.2, 192.0.2.53}", "domain_name": "corp.example",
		"lease_time": "3600", "mtu": "1400"}, "blue")
	if err != nil || d.DNS != "10.0.0.2, 192.0.2.53" || d.Domain != "corp.example" || d.Lease != 3600 || d.MTU != 1400 {
		t.Errorf("set %+v %v", d, err)
	}
	if d, _ := DHCPOptions(map[string]string{"dhcp": "false"}, "blue"); !d.Off {
		t.Error("dhcp=false left DHCP on")
	}
	if d, _ := DHCPOptions(nil, "my vpc!"); d.Domain != "" {
		t.Errorf("a VPC name that is no domain gave domain %q", d.Domain)
	}
	for opt, val := range map[string]string{
		"dhcp": "maybe", "dns_servers": "10.0.0.300", "domain_name": "a..b", "lease_time": "10", "mtu": "100000",
	} {
		_, err := DHCPOptions(map[string]string{opt: val}, "blue")
		if err == nil || !strings.Contains(err.Error(), opt) {
			t.Errorf("%s=%s: %v, want an error naming the option", opt, val, err)
		}
	}
}
