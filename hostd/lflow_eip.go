package hostd

import "github.com/courier-sdn/courier/pipeline"

// EIPs: the translation itself needs no flow data (the addresses are the
// bindings'); the flows switch it on per VPC.

func compileEIPIn(fc *flowConfig, f *lflow) error {
	switch {
	case f.is("eip_dnat") && has(f.match, "dst.eip"):
		return fc.vpc(pipeline.VPCEIPIn)
	case f.is("unsnat") && has(f.match, "dst.snat"):
		return fc.vpc(pipeline.VPCSNATIn)
	case f.is("next"):
		return nil
	}
	return errNotImplemented
}

func compileEIPOut(fc *flowConfig, f *lflow) error {
	switch {
	case f.is("eip_snat"), f.is("drop", "no_gateway"), f.is("icmp_error", "no_route"):
		return nil // what the stage always does, once ip_route sends packets here
	case f.is("snat") && has(f.match, "inport.snat"):
		return fc.vpc(pipeline.VPCSNATOut)
	}
	return errNotImplemented
}
