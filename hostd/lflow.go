package hostd

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"github.com/courier-sdn/courier/dataplane"
	"github.com/courier-sdn/courier/pipeline"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// Compiling logical flows for the data plane. The DVR is fixed-function:
// each stage implements a few behaviours, switched on per vxnet or VPC by
// flags, plus the routes of ip_route. A flow is compiled by recognising
// which behaviour it asks for; a flow this data plane does not implement
// is reported (log, metric, chassis status), never silently ignored.

// flowConfig is what one VPC's logical flows ask of the data plane.
type flowConfig struct {
	vxFlags  map[string]uint32 // vxnet datapath UUID -> flags
	vpcFlags uint32
	routes   []dataplane.Route
	errs     []string
}

// find returns the value a match compares field with ("==", single
// value), looking through conjunctions.
func find(e pipeline.Expr, field string) (pipeline.Value, bool) {
	switch x := e.(type) {
	case pipeline.Cmp:
		if x.Field == field && x.Op == "==" && len(x.Values) == 1 {
			return x.Values[0], true
		}
	case pipeline.And:
		for _, t := range x {
			if v, ok := find(t, field); ok {
				return v, true
			}
		}
	}
	return pipeline.Value{}, false
}

// has reports whether a boolean field appears positively in a match.
func has(e pipeline.Expr, field string) bool {
	switch x := e.(type) {
	case pipeline.Bool:
		return x.Field == field
	case pipeline.And:
		for _, t := range x {
			if has(t, field) {
				return true
			}
		}
	}
	return false
}

func compileFlows(vpc int, flows []*sbdb.LogicalFlow, dps map[string]*sbdb.Datapath) *flowConfig {
	fc := &flowConfig{vxFlags: map[string]uint32{}}
	for _, f := range flows {
		if err := fc.add(vpc, f, dps[f.Datapath]); err != nil {
			fc.errs = append(fc.errs, fmt.Sprintf("stage %s priority %d match (%s) actions (%s): %v",
				f.Stage, f.Priority, f.Match, f.Actions, err))
		}
	}
	return fc
}

func (fc *flowConfig) add(vpc int, f *sbdb.LogicalFlow, dp *sbdb.Datapath) error {
	if dp == nil {
		return fmt.Errorf("unknown datapath %s", f.Datapath)
	}
	m, err := pipeline.ParseMatch(f.Match)
	if err != nil {
		return err
	}
	acts, err := pipeline.ParseActions(f.Actions)
	if err != nil {
		return err
	}
	last := acts[len(acts)-1]
	reason, _ := last.Arg("")
	vx := func(flag uint32) error { fc.vxFlags[dp.UUID] |= flag; return nil }
	switch f.Stage {
	case "port_sec":
		switch {
		case last.Name == "drop" && reason == "spoof_mac":
			return vx(dataplane.VxPsecMAC)
		case last.Name == "drop" && reason == "spoof_ip":
			return vx(dataplane.VxPsecIP)
		case last.Name == "drop" && reason == "unsupported_proto", last.Name == "next":
			return nil // what the data plane always does
		}
	case "arp_rsp":
		switch {
		case last.Name == "arp_reply" && reason == "dst.mac":
			return vx(dataplane.VxARPProxy)
		case last.Name == "arp_reply":
			tpa, ok := find(m, "arp.tpa")
			if !ok || tpa.Prefix.Bits() != 32 || dp.GatewayIP == nil || tpa.Prefix.Addr().String() != *dp.GatewayIP || reason != dp.GatewayMAC {
				return fmt.Errorf("only the gateway's own address and MAC can be answered statically")
			}
			return vx(dataplane.VxARPGw)
		case last.Name == "hub":
			return vx(dataplane.VxARPMissHub)
		case last.Name == "drop" && reason == "arp_unanswered", last.Name == "next":
			return nil
		}
	case "l2_lookup":
		switch {
		case last.Name == "icmp_reply":
			return vx(dataplane.VxGwPing)
		case last.Name == "next":
			if v, ok := find(m, "eth.dst"); ok && v.MAC == dp.GatewayMAC {
				return vx(dataplane.VxL2Route)
			}
		case last.Name == "output":
			return vx(dataplane.VxL2Output)
		case last.Name == "hub":
			return vx(dataplane.VxL2MissHub)
		case last.Name == "drop" && reason == "l2_unknown_dst":
			return nil
		}
	case "ip_route":
		switch {
		case last.Name == "drop" && reason == "ttl_exceeded":
			fc.vpcFlags |= dataplane.VPCTTL
			return nil
		case last.Name == "drop" && reason == "no_route":
			return nil
		case last.Name == "route":
			dst, ok := find(m, "ip4.dst")
			if !ok {
				return fmt.Errorf("a route needs ip4.dst == PREFIX")
			}
			vniS, _ := last.Arg("vni")
			vni, err := strconv.Atoi(vniS)
			if err != nil {
				return fmt.Errorf("route without a vni")
			}
			r := dataplane.Route{VPC: uint32(vpc), Prefix: dst.Prefix, VNI: uint32(vni)}
			if nh, ok := last.Arg("nexthop"); ok {
				if r.Nexthop, err = netip.ParseAddr(nh); err != nil {
					return err
				}
			}
			fc.routes = append(fc.routes, r)
			return nil
		}
	case "dst_lookup":
		switch {
		case last.Name == "output" && has(m, "dst.local"):
			fc.vpcFlags |= dataplane.VPCDstLocal
			return nil
		case last.Name == "output" && has(m, "dst.known"):
			fc.vpcFlags |= dataplane.VPCDstKnown
			return nil
		case last.Name == "hub":
			fc.vpcFlags |= dataplane.VPCDstMissHub
			return nil
		}
	}
	return fmt.Errorf("not implemented by this data plane")
}

func parseMAC(s string) net.HardwareAddr {
	m, _ := net.ParseMAC(s)
	return m
}
