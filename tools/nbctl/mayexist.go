package nbctl

import (
	"fmt"
	"slices"
	"strings"

	"github.com/courier-sdn/courier/schema/nbdb"
	"github.com/courier-sdn/courier/tools/cmdline"
)

// --may-exist means "make sure this exists as given": a row that exists
// with other attributes is an error naming each one that differs, not a
// silent success that leaves the caller believing its values are set.

// diffs are the attributes of an existing row that differ from a
// command's.
type diffs []string

func (d *diffs) add(what, have, want string) {
	*d = append(*d, fmt.Sprintf("%s %s, not %s", what, have, want))
}

// err is nil when nothing differs.
func (d diffs) err(kind, name string) error {
	if len(d) == 0 {
		return nil
	}
	return fmt.Errorf("--may-exist: %s %s already exists with another %s", kind, name, strings.Join(d, "; "))
}

func nameOf(v *nbdb.VPC) string {
	if v == nil {
		return "-"
	}
	return v.Name
}

func list(s []string) string {
	s = slices.Sorted(slices.Values(s))
	if len(s) == 0 {
		return "[]"
	}
	return strings.Join(s, ",")
}

// samePort compares port-add's arguments with the port that exists.
func (st *state) samePort(old *nbdb.Port, vx *nbdb.Vxnet, macArg string, ipArgs []string, inv *cmdline.Invocation) error {
	var d diffs
	if ov := st.portVxnet[old.UUID]; ov != vx {
		name := "-"
		if ov != nil {
			name = ov.Name
		}
		d.add("vxnet", name, vx.Name)
	}
	if mac, err := parseMAC(macArg); err != nil || mac != old.MAC {
		d.add("MAC", old.MAC, macArg)
	}
	ips := splitList(ipArgs)
	if len(ips) == 1 && ips[0] == "unknown" {
		ips = nil
	}
	if list(ips) != list(old.IPs) {
		d.add("IPs", list(old.IPs), list(ips))
	}
	if vips := inv.Values("vip"); list(vips) != list(old.VirtualIPs) {
		d.add("virtual IPs", list(old.VirtualIPs), list(vips))
	}
	if c := inv.Value("chassis"); c != str(old.RequestedChassis) && !(c == "" && old.RequestedChassis == nil) {
		d.add("chassis", str(old.RequestedChassis), c)
	}
	on := old.PortSecurity == nil || *old.PortSecurity
	if inv.Has("no-port-security") == on {
		d.add("port security", map[bool]string{true: "on", false: "off"}[on], map[bool]string{true: "on", false: "off"}[!on])
	}
	return d.err("port", old.Name)
}
