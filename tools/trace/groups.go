package trace

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/courier-sdn/courier/dataplane"
	"github.com/courier-sdn/courier/pipeline"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// Security groups in the logical trace: once a stage outputs what a port
// sends, sg_egress decides on the sender's chassis, and sg_ingress on
// the chassis of the port it is delivered to, as in the data plane.
// Groups come from the bindings' identities and the VPC's table of them.
// The packet is taken for a new connection (ct.est false, unless the
// microflow says ct.est). What leaves through a port's EIP goes to the
// internet, whose reserved identity is in no group (dst.sg names none);
// what comes in from it cannot be traced (a trace starts at a port).

// Groups names the groups of the port a group field stands for.
func (e *env) Groups(f string) []string {
	switch f {
	case "inport.sg", "src.sg":
		if e.p.outside {
			return nil // a hairpin: from an EIP, with no identity
		}
		return e.groupsOf(e.w.inport)
	case "outport.sg":
		return e.groupsOf(e.w.port(e.outport))
	case "dst.sg":
		if e.internet {
			return nil // to an EIP, a hairpin's too: the internet, in no group
		}
		b, ok := e.w.lookup(e.target)
		if !ok {
			return nil
		}
		return e.groupsOf(e.w.port(b.port))
	}
	return nil
}

func (e *env) groupsOf(pb *sbdb.PortBinding) []string {
	if pb == nil || pb.SgIdentity == nil || e.w.vpc == nil {
		return nil
	}
	gs := e.w.vpc.SecurityIdentities[strconv.Itoa(*pb.SgIdentity)]
	if gs == "" {
		return nil
	}
	return strings.Split(gs, ",")
}

// port is the binding of a port by name, or nil.
func (w *world) port(name string) *sbdb.PortBinding {
	for _, b := range w.bindings {
		if b.LogicalPort == name {
			return b
		}
	}
	return nil
}

// guard runs the security group stages an output passes: sg_egress for
// what a port sends, sg_ingress for what is delivered to a local port.
func (e *env) guard(dir pipeline.Direction, end walkEnd, hop *Hop) walkEnd {
	if end.action != "output" {
		return end
	}
	if dir == pipeline.FromPort {
		if end = e.sgStage("sg_egress", end, hop); end.action != "output" {
			return end
		}
		e.p.translate()
	}
	if end.port == "" {
		return end
	}
	e.outport = end.port
	return e.sgStage("sg_ingress", end, hop)
}

// sgStage runs one sg stage: allow or next goes on to end, drop drops.
func (e *env) sgStage(name string, end walkEnd, hop *Hop) walkEnd {
	st, ok := pipeline.ByName(name)
	if !ok || e.w.vpc == nil {
		return end
	}
	f, err := e.firstMatch(e.w.vpc, st.Name)
	if err != nil {
		hop.Steps = append(hop.Steps, Step{Stage: st.Name, Verdict: "drop", Detail: err.Error()})
		return walkEnd{action: "drop", reason: err.Error()}
	}
	if f == nil {
		return end // a southbound from before security groups: nothing to check
	}
	acts, err := pipeline.ParseActions(f.Actions)
	if err != nil {
		hop.Steps = append(hop.Steps, Step{Stage: st.Name, Verdict: "drop", Detail: err.Error()})
		return walkEnd{action: "drop", reason: err.Error()}
	}
	prio := f.Priority
	step := Step{Stage: st.Name, Priority: &prio, Match: f.Match, Actions: f.Actions, Source: f.ExternalIDs["source"], Verdict: "next"}
	last := acts[len(acts)-1]
	switch last.Name {
	case "drop":
		reason, _ := last.Arg("")
		step.Verdict, step.Reason, step.Detail = "drop", reason, "dropped: "+reason+" (no rule of the port's groups allows a new connection)"
		hop.Steps = append(hop.Steps, step)
		return walkEnd{action: "drop", reason: reason}
	case "allow":
		step.Detail = fmt.Sprintf("allowed (%s)", f.Match)
	default:
		step.Detail = "not subject to security groups"
	}
	if e.internet && st.Name == "sg_egress" {
		step.Detail += "; the other end is the internet, identity " + dataplane.IdentityString(pipeline.InternetIdentity) +
			", in no group: only a rule naming a prefix lets it go"
	}
	hop.Steps = append(hop.Steps, step)
	return end
}
