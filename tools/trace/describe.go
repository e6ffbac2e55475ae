package trace

import (
	"fmt"

	"github.com/courier-sdn/courier/dataplane"
	"github.com/courier-sdn/courier/pipeline"
)

// Each stage's record, said in words: what the stage decided, and from
// what (a test checks every stage of pipeline.Stages has a describer).
var describers = map[int]func(r dataplane.StageRecord, n namer) string{
	pipeline.PortSec: func(r dataplane.StageRecord, n namer) string {
		s := "from port " + n.port(r.Ifindex)
		if pipeline.HitName(r.Hit) == "port_addr" {
			s += ", from one of its addresses"
		}
		return s
	},
	pipeline.ARPRsp: func(r dataplane.StageRecord, n namer) string {
		switch pipeline.VerdictName(r.Verdict) {
		case "reply":
			return fmt.Sprintf("answered on the host: %s is at %s (%s)", r.Addr, r.MAC, hitWords(r.Hit))
		case "consumed":
			if pipeline.HitName(r.Hit) == "port_addr" {
				return "a probe for the port's own address: not answered"
			}
			return "an announcement: kept on the host"
		case "next":
			return fmt.Sprintf("%s is not known here: to a hub", r.Addr)
		}
		return ""
	},
	pipeline.L2Lookup: func(r dataplane.StageRecord, n namer) string {
		switch pipeline.VerdictName(r.Verdict) {
		case "reply":
			return "the gateway answers the ping"
		case "output":
			return destination(r, n)
		case "next":
			if pipeline.HitName(r.Hit) == "gateway" {
				return "for the gateway MAC: routed"
			}
			return fmt.Sprintf("%s is not known here: to a hub", r.Addr)
		}
		return ""
	},
	pipeline.IPRoute: func(r dataplane.StageRecord, n namer) string {
		if r.Next == pipeline.EIPOut {
			return "no route in the VPC: outside, through the port's EIP if it has one"
		}
		return fmt.Sprintf("route to %s in vni %d; TTL-1, the gateway's MAC as source", r.Addr, r.VNI)
	},
	pipeline.DstLookup: func(r dataplane.StageRecord, n namer) string {
		if pipeline.VerdictName(r.Verdict) == "output" {
			return destination(r, n)
		}
		return fmt.Sprintf("%s is not known here (%s): to a hub", r.Addr, hitWords(r.Hit))
	},
	pipeline.ToHub: func(r dataplane.StageRecord, n namer) string {
		if pipeline.VerdictName(r.Verdict) != "output" {
			return hitWords(r.Hit)
		}
		return fmt.Sprintf("to hub %s, vni %d (%s)", n.host(r.VTEP), r.VNI, hitWords(r.Hit))
	},
	pipeline.TunAdmit: func(r dataplane.StageRecord, n namer) string {
		return fmt.Sprintf("vni %d, a vxnet this host serves", r.VNI)
	},
	pipeline.TunLearn: func(r dataplane.StageRecord, n namer) string {
		if pipeline.VerdictName(r.Verdict) == "output" {
			return "a probe: answered to " + n.host(r.VTEP)
		}
		return fmt.Sprintf("a learn message about %s (%s)", r.Addr, hitWords(r.Hit))
	},
	pipeline.TunARP: func(r dataplane.StageRecord, n namer) string {
		if r.Flags&tellUnknown != 0 {
			return fmt.Sprintf("the hub does not know %s: it tells the sender %s", r.Addr, n.host(r.VTEP))
		}
		if r.VTEP.IsValid() {
			return fmt.Sprintf("the hub answers: %s is at %s, back to %s", r.Addr, r.MAC, n.host(r.VTEP))
		}
		return "a hub's answer, to port " + n.port(r.Ifindex)
	},
	pipeline.DHCP: func(r dataplane.StageRecord, n namer) string {
		if pipeline.VerdictName(r.Verdict) == "consumed" {
			return "a DHCP message that needs no answer (a release, a decline, a request to another server)"
		}
		if !r.Addr.IsValid() || r.Addr.IsUnspecified() {
			return "answered on the host with DHCP, no address (an INFORM's answer or a NAK)"
		}
		return fmt.Sprintf("answered on the host with DHCP: %s for port %s (%s)", r.Addr, n.port(r.Ifindex), hitWords(r.Hit))
	},
	pipeline.ICMPErr: func(r dataplane.StageRecord, n namer) string {
		why := pipeline.DropName(r.Reason)
		if pipeline.HitName(r.Hit) == "budget" {
			return "not told: the port spent its budget of ICMP errors (" + why + ")"
		}
		return "the gateway tells the VM with an ICMP error: " + why
	},
	pipeline.SGEgress:  func(r dataplane.StageRecord, n namer) string { return sgWords(r, "egress", "sending") },
	pipeline.SGIngress: func(r dataplane.StageRecord, n namer) string { return sgWords(r, "ingress", "receiving") },
	pipeline.EIPIn: func(r dataplane.StageRecord, n namer) string {
		if r.Addr.IsValid() && !r.Addr.IsUnspecified() {
			return fmt.Sprintf("for an EIP of a local port: destination translated to %s", r.Addr)
		}
		return "not for an EIP of this host"
	},
	pipeline.EIPOut: func(r dataplane.StageRecord, n namer) string {
		if pipeline.VerdictName(r.Verdict) == "output" {
			return fmt.Sprintf("source translated to the port's EIP %s, to gateway %s", r.Addr, n.host(r.VTEP))
		}
		if pipeline.VerdictName(r.Verdict) == "next" { // to icmp_err
			return "no way out: no EIP or SNAT for the port; the VM is told there is no route"
		}
		return "no EIP or no gateway: " + pipeline.DropName(r.Reason)
	},
	pipeline.TunLookup: func(r dataplane.StageRecord, n namer) string {
		if r.Flags&tellUnknown != 0 {
			return fmt.Sprintf("the hub does not know %s: it tells the sender %s", r.Addr, n.host(r.VTEP))
		}
		if pipeline.VerdictName(r.Verdict) == "output" {
			return destination(r, n)
		}
		return hitWords(r.Hit)
	},
}

// describe turns a stage's record into a step.
func describe(r dataplane.StageRecord, n namer) Step {
	st := Step{Stage: pipeline.Stages[r.Stage].Name, Verdict: pipeline.VerdictName(r.Verdict), Hit: pipeline.HitName(r.Hit),
		Flags: pipeline.TraceFlagNames(r.Flags)}
	if st.Verdict == "drop" {
		st.Reason = pipeline.DropName(r.Reason)
		st.Detail = "dropped: " + st.Reason
		if d, ok := pipeline.DropByName(st.Reason); ok {
			st.Detail += " (" + d.Doc + ")"
		}
		return st
	}
	if d := describers[r.Stage]; d != nil {
		st.Detail = d(r, n)
	}
	return st
}

// destination says where an output goes.
func destination(r dataplane.StageRecord, n namer) string {
	if !r.VTEP.IsValid() {
		return fmt.Sprintf("to local port %s (%s)", n.port(r.Ifindex), hitWords(r.Hit))
	}
	return fmt.Sprintf("to %s, vni %d, %s (%s)", n.host(r.VTEP), r.VNI, r.MAC, hitWords(r.Hit))
}

func hitWords(hit int) string {
	for _, h := range pipeline.Hits {
		if h.ID == hit {
			return h.Doc
		}
	}
	return "?"
}

// HasDescriber says whether a stage's records are put in words (the
// spine test, pipeline/spine_test.go).
func HasDescriber(stage int) bool { return describers[stage] != nil }

// sgWords says what a security group stage decided.
func sgWords(r dataplane.StageRecord, dir, side string) string {
	switch {
	case pipeline.VerdictName(r.Verdict) == "drop":
		if pipeline.HitName(r.Hit) == "ct" {
			return "denied: a tracked connection no " + dir + " rule allows any more (" + pipeline.DropName(r.Reason) + ")"
		}
		return "denied: no " + dir + " rule of the " + side + " port's security groups allows it (" + pipeline.DropName(r.Reason) + ")"
	case pipeline.HitName(r.Hit) == "ct":
		return "allowed: a tracked connection"
	case r.Flags&sgPending != 0:
		return "allowed, pending the receiver's check of an " + dir + " rule naming its group; now tracked"
	case pipeline.HitName(r.Hit) == "sg_rule":
		return "allowed by an " + dir + " rule of the " + side + " port's security groups; now tracked"
	}
	return "no security groups here (an open VPC, or not IPv4)"
}

// sgPending is TRF_SG_PENDING.
var sgPending = traceFlag("sg_pending")
