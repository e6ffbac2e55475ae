package hostd

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/courier-sdn/courier/dataplane"
	"github.com/courier-sdn/courier/pipeline"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// What a VM is told (#13): the compilers of the stages that answer it,
// and each port's DHCP answer, built from its vxnet's dhcp_reply flow.

func compileDHCP(fc *flowConfig, f *lflow) error {
	switch {
	case f.is("dhcp_reply"):
		r, err := pipeline.ParseDHCPReply(f.last)
		if err != nil {
			return err
		}
		if fc.dhcp == nil { // one flow's own result (flowParts) starts empty
			fc.dhcp = map[string]pipeline.DHCPReply{}
		}
		fc.dhcp[f.dp.UUID] = r
		return fc.vx(f, pipeline.VxDHCP)
	case f.is("drop", "dhcp_unsupported"), f.is("drop", "dhcp_no_address"):
		return nil
	}
	return errNotImplemented
}

// icmpErrors are the errors the data plane sends (bpf/stage_icmp_err.h),
// by the reason that leads to them.
var icmpErrors = map[string]struct {
	typ, code string
	flag      uint32
}{
	"ttl_exceeded": {"11", "0", pipeline.VxICMPTTL},
	"no_route":     {"3", "0", pipeline.VxICMPUnreach},
	"oversize":     {"3", "4", pipeline.VxICMPFrag},
}

func compileICMPErr(fc *flowConfig, f *lflow) error {
	switch {
	case f.is("icmp4_error"):
		why, ok := find(f.match, "error")
		want, known := icmpErrors[why.Str]
		if !ok || !known {
			return fmt.Errorf("this data plane sends ICMP errors only for ttl_exceeded, no_route and oversize")
		}
		typ, _ := f.last.Arg("type")
		code, _ := f.last.Arg("code")
		mtu, _ := f.last.Arg("mtu")
		if typ != want.typ || code != want.code || (why.Str == "oversize") != (mtu == "inport.mtu") {
			with := ""
			if why.Str == "oversize" {
				with = ", mtu=inport.mtu"
			}
			return fmt.Errorf("for %s this data plane sends icmp4_error(type=%s, code=%s%s)", why.Str, want.typ, want.code, with)
		}
		return fc.vx(f, want.flag)
	case f.is("drop"):
		return nil
	}
	return errNotImplemented
}

// portDHCP is what a port's DHCP answers say: its vxnet's dhcp_reply,
// its name as hostname, the host's overlay MTU unless the vxnet says
// otherwise. nil when its vxnet answers no DHCP.
func portDHCP(replies map[string]pipeline.DHCPReply, pb *sbdb.PortBinding, dp *sbdb.Datapath, mtu int) *dataplane.DHCP {
	r, ok := replies[dp.UUID]
	if !ok || len(pb.IPs) == 0 {
		return nil
	}
	d := &dataplane.DHCP{Router: r.Router, MTU: mtu, DNS: r.DNS, Domain: r.Domain, Hostname: pb.LogicalPort,
		Routes: r.Routes, Lease: time.Duration(r.Lease) * time.Second}
	if r.MTU > 0 {
		d.MTU = r.MTU
	}
	if ip, err := netip.ParseAddr(pb.IPs[0]); err == nil {
		d.Subnet = netip.PrefixFrom(ip, r.Netmask).Masked()
	}
	return d
}
