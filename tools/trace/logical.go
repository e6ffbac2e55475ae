package trace

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/courier-sdn/courier/pipeline"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// The logical trace walks the southbound's logical flows, as ovn-trace
// does: for each stage in order, the first flow (highest priority) whose
// match holds, and its actions. Runtime state is the southbound's: where
// bindings are, which chassis are hubs. What only a data plane knows (a
// learned path's age, a port's budget, a hub's word that an address is
// unknown) is taken as the common case, and said so in the notes.

// env evaluates matches for one stage of one chassis.
type env struct {
	w        *world
	p        *packet
	chassis  string // where the pipeline runs
	from     string // from the tunnel: the sending chassis
	target   netip.Addr
	outport  string // sg_ingress: the local port delivered to
	internet bool   // sg_egress: the packet leaves through the port's EIP
}

func (e *env) Value(f string) (pipeline.Value, bool) {
	switch f {
	case "inport":
		return pipeline.Value{Str: e.w.inport.LogicalPort, Kind: pipeline.KString}, true
	case "inport.mac":
		return pipeline.Value{MAC: e.w.inport.MAC, Kind: pipeline.KMAC}, true
	case "dst.mac":
		b, ok := e.w.lookup(e.target)
		return pipeline.Value{MAC: b.mac, Kind: pipeline.KMAC}, ok
	}
	v, ok := e.p.vals[f]
	return v, ok
}

func (e *env) Bool(f string) bool {
	b, known := e.w.lookup(e.target)
	switch f {
	case "inport.security":
		return e.w.inport.PortSecurity
	case "dst.known":
		return known && b.chassis != ""
	case "dst.local":
		return known && b.chassis != "" && b.chassis == e.chassis
	case "chassis.hub":
		return slices.Contains(e.w.hubs, e.chassis)
	case "inport.eip":
		return e.w.inport.Eip != nil
	case "eip.gateway":
		// a physical network is served by the port's own host (nat.go)
		return e.w.inport.EipNetwork != nil && (physical(e.w.inport) || e.w.served(*e.w.inport.EipNetwork))
	case "inport.snat":
		return e.w.inport.Eip == nil && e.w.snat != nil
	case "snat.gateway":
		return e.w.snat != nil && e.w.served(e.w.snat.Network)
	case "from.hub":
		return slices.Contains(e.w.hubs, e.from)
	}
	return e.p.bools[f] // dst.unknown, inport.over_budget, from.path_host: not known here
}

func (e *env) AddrSet(f string) []netip.Addr {
	var out []netip.Addr
	pb := e.w.inport
	for _, s := range append(append([]string{}, pb.IPs...), pb.VirtualIPs...) {
		if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, a)
		}
	}
	for _, l := range e.w.learned {
		if l.LogicalPort == pb.LogicalPort {
			if a, err := netip.ParseAddr(l.IP); err == nil {
				out = append(out, a)
			}
		}
	}
	return out
}

// firstMatch is the flow of stage on dp that decides, or nil.
func (e *env) firstMatch(dp *sbdb.Datapath, stage string) (*sbdb.LogicalFlow, error) {
	for _, f := range e.w.flows[dp.UUID] {
		if f.Stage != stage {
			continue
		}
		m, err := pipeline.ParseMatch(f.Match)
		if err != nil {
			return nil, fmt.Errorf("flow %s: %w", f.UUID, err)
		}
		if pipeline.Eval(m, e) {
			return f, nil
		}
	}
	return nil, nil
}

// walk runs one direction's stages on one chassis, from stage index i,
// and returns the hop and how it ended: the deciding action, and for an
// output the chassis it goes to ("" for a local port).
type walkEnd struct {
	action  string // drop, output, reply, hub, consumed, teach, tell_unknown, forget_path
	reason  string
	next    string // the chassis the packet goes to
	nextVNI int
	port    string // a local port it is delivered to
}

func (e *env) walk(dir pipeline.Direction, dp func(pipeline.Stage) *sbdb.Datapath, target func(pipeline.Stage) netip.Addr, hop *Hop) walkEnd {
	stages := pipeline.Of(dir)
	for i := 0; i < len(stages); {
		st := stages[i]
		d := dp(st)
		e.target = target(st)
		f, err := e.firstMatch(d, st.Name)
		if err != nil || f == nil {
			why := "no flow matched"
			if err != nil {
				why = err.Error()
			}
			hop.Steps = append(hop.Steps, Step{Stage: st.Name, Verdict: "drop", Detail: why})
			return walkEnd{action: "drop", reason: why}
		}
		acts, err := pipeline.ParseActions(f.Actions)
		if err != nil {
			hop.Steps = append(hop.Steps, Step{Stage: st.Name, Verdict: "drop", Detail: err.Error()})
			return walkEnd{action: "drop", reason: err.Error()}
		}
		prio := f.Priority
		step := Step{Stage: st.Name, Priority: &prio, Match: f.Match, Actions: f.Actions, Source: f.ExternalIDs["source"]}
		end, next := e.act(st, acts, &step)
		hop.Steps = append(hop.Steps, step)
		switch {
		case end != nil:
			return e.guard(dir, *end, hop)
		case next >= 0:
			i = slices.IndexFunc(stages, func(s pipeline.Stage) bool { return s.ID == next })
		default:
			// on along the main line: stages entered only by an action
			// are passed over
			for i++; i < len(stages) && pipeline.EnteredBy[stages[i].ID] != ""; i++ {
			}
		}
	}
	return walkEnd{action: "drop", reason: "end of pipeline"}
}

// act carries out a flow's actions; it returns how the walk ends, or
// the stage it goes on with (-1: the next one).
func (e *env) act(st pipeline.Stage, acts []pipeline.Action, step *Step) (*walkEnd, int) {
	step.Verdict = "next"
	if next := e.privateHairpin(st, step); next >= 0 {
		return nil, next
	}
	for _, a := range acts {
		arg, _ := a.Arg("")
		switch a.Name {
		case "next":
			return nil, -1
		case "drop":
			if arg == "" {
				arg = e.p.vals["error"].Str
			}
			step.Verdict, step.Reason, step.Detail = "drop", arg, "dropped: "+arg
			return &walkEnd{action: "drop", reason: arg}, -1
		case "dhcp":
			step.Detail = "a DHCP request: to the host's DHCP server"
			return nil, pipeline.DHCP
		case "icmp_error":
			e.p.vals["error"] = pipeline.Value{Str: arg, Kind: pipeline.KString}
			step.Detail = "cannot go on (" + arg + "): the VM is told why"
			return nil, pipeline.ICMPErr
		case "clamp_mss":
			step.Detail = "a TCP SYN: its MSS is lowered to what the path carries"
		case "dhcp_reply", "icmp4_error":
			step.Verdict, step.Detail = "reply", e.answer(a)
			return &walkEnd{action: "reply"}, -1
		case "arp_reply":
			mac := arg
			if mac == "dst.mac" {
				b, _ := e.w.lookup(e.target)
				mac = b.mac
			}
			step.Verdict, step.Detail = "reply", fmt.Sprintf("answered: %s is at %s", e.target, mac)
			if st.Dir == pipeline.FromPort {
				return &walkEnd{action: "reply"}, -1
			}
		case "icmp_reply":
			step.Verdict, step.Detail = "reply", "the gateway answers the ping"
			return &walkEnd{action: "reply"}, -1
		case "route":
			vni, _ := a.Arg("vni")
			e.target = e.p.addr("ip4.dst")
			if nh, ok := a.Arg("nexthop"); ok {
				e.target = netip.MustParseAddr(nh)
			}
			e.p.target = e.target
			fmt.Sscan(vni, &e.p.dvni)
			step.Detail = fmt.Sprintf("routed to %s in vni %s", e.target, vni)
		case "ttl_dec":
			e.p.setInt("ip.ttl", e.p.vals["ip.ttl"].Int-1)
		case "set":
			e.p.setMAC(a.Args[0].Key, a.Args[0].Value)
		case "hub":
			if st.ID != pipeline.ToHub {
				e.p.target = e.target
				step.Detail = "not known here: to a hub"
				return nil, pipeline.ToHub
			}
			step.Verdict = "output"
			return e.toHub(step), -1
		case "output", "teach":
			step.Verdict = "output"
			return e.output(step, a.Name == "teach"), -1
		case "eip_out":
			step.Detail = "no route in the VPC: outside, through the port's EIP if it has one"
			return nil, pipeline.EIPOut
		case "eip_snat":
			return e.eipOut(step)
		case "snat":
			e.internet = true
			step.Verdict, step.Detail = "output", fmt.Sprintf("source translated by SNAT to one of %v and a port of the port's blocks, to a gateway of %s",
				e.w.snat.Addresses, e.w.snat.Network)
			return &walkEnd{action: "output"}, -1
		case "tell_unknown":
			step.Verdict, step.Detail = "drop", "the hub does not know "+e.target.String()+": it tells the sender"
			return &walkEnd{action: "drop", reason: "hub_miss"}, -1
		case "forget_path":
			step.Verdict = "output"
			end := e.toHub(step)
			step.Detail += "; the sender is told to forget its path"
			return end, -1
		case "install_path", "note_unknown", "probe_reply", "note_hub":
			step.Verdict, step.Detail = "consumed", a.Name
			return &walkEnd{action: "consumed"}, -1
		}
	}
	return nil, -1
}

// answer says what a VM is answered with by dhcp_reply or icmp4_error.
func (e *env) answer(a pipeline.Action) string {
	if a.Name == "icmp4_error" {
		typ, _ := a.Arg("type")
		code, _ := a.Arg("code")
		s := fmt.Sprintf("the gateway %s sends ICMP type %s code %s (%s) back to the VM", deref(e.w.vxnet.GatewayIP), typ, code,
			e.p.vals["error"].Str)
		if _, ok := a.Arg("mtu"); ok {
			s += ", with the port's MTU"
		}
		return s
	}
	addr := "no address"
	if len(e.w.inport.IPs) > 0 {
		addr = e.w.inport.IPs[0]
	}
	r, err := pipeline.ParseDHCPReply(a)
	if err != nil {
		return "answered with DHCP, but the flow's options do not parse: " + err.Error()
	}
	return fmt.Sprintf("answered on the host with DHCP: %s/%d, router %s, lease %ds, hostname %s", addr, r.Netmask, r.Router,
		r.Lease, e.w.inport.LogicalPort)
}

func (e *env) toHub(step *Step) *walkEnd {
	var hubs []string
	for _, h := range e.w.hubs {
		if h != e.chassis {
			hubs = append(hubs, h)
		}
	}
	if len(hubs) == 0 {
		step.Verdict, step.Reason, step.Detail = "drop", "no_hub", "the VPC has no hub"
		return &walkEnd{action: "drop", reason: "no_hub"}
	}
	step.Detail = fmt.Sprintf("to hub %s (one of %v, by flow hash)", hubs[0], e.w.hubs)
	return &walkEnd{action: "output", next: hubs[0], nextVNI: e.p.dvni}
}

func (e *env) output(step *Step, teach bool) *walkEnd {
	b, ok := e.w.lookup(e.target)
	if !ok || b.chassis == "" {
		step.Verdict, step.Detail = "drop", e.target.String()+" is bound nowhere"
		return &walkEnd{action: "drop", reason: "no_binding"}
	}
	if b.chassis == e.chassis {
		step.Detail = "to local port " + b.port
		return &walkEnd{action: "output", port: b.port}
	}
	step.Detail = fmt.Sprintf("to %s on %s, vni %d", b.port, b.chassis, b.vni)
	if teach {
		step.Detail += "; the sender is taught where it lives"
	}
	return &walkEnd{action: "output", next: b.chassis, nextVNI: b.vni}
}

// logical traces p from the inport through the southbound's flows, on to
// the chassis it goes to, until it is delivered or stops.
func logical(w *world, p *packet) *Trace {
	tr := &Trace{Mode: "logical", Packet: p.summary(), Notes: []string{
		"what only a data plane knows is taken as the common case: learned paths fresh, budgets not spent, " +
			"no hub's word that the destination is unknown, every hub answering; --chassis runs the real program instead"}}
	chassis := deref(w.inport.Chassis)
	if chassis == "" {
		chassis = deref(w.inport.RequestedChassis)
		tr.Notes = append(tr.Notes, w.inport.LogicalPort+" is not bound: traced as if on its requested chassis")
	}
	p.dvni = w.vxnet.TunnelKey
	e := &env{w: w, p: p, chassis: chassis}
	hop := Hop{Chassis: chassis, Direction: string(pipeline.FromPort), From: w.inport.LogicalPort}
	end := e.walk(pipeline.FromPort, e.datapathOf(pipeline.FromPort), e.targetOf, &hop)
	tr.Hops = append(tr.Hops, hop)
	for n := 0; end.action == "output" && end.next != "" && n < 4; n++ {
		e = &env{w: w, p: p, chassis: end.next, from: e.chassis}
		p.dvni = end.nextVNI
		hop := Hop{Chassis: end.next, Direction: string(pipeline.FromTunnel), From: hop.Chassis, VNI: uint32(end.nextVNI)}
		end = e.walk(pipeline.FromTunnel, e.datapathOf(pipeline.FromTunnel), e.targetOf, &hop)
		tr.Hops = append(tr.Hops, hop)
	}
	last := tr.Hops[len(tr.Hops)-1]
	switch end.action {
	case "output":
		if end.port == "" { // out of the VPC: to a gateway or the physical network
			tr.Outcome, tr.Chassis = Left, last.Chassis
			tr.Detail = fmt.Sprintf("left the VPC on %s: %s", last.Chassis, stepOf(last, "eip_out").Detail)
			break
		}
		tr.Outcome, tr.Port, tr.Chassis = Delivered, end.port, last.Chassis
		tr.Detail = fmt.Sprintf("delivered to %s on %s", end.port, last.Chassis)
	case "reply":
		tr.Outcome, tr.Chassis, tr.Detail = Answered, last.Chassis, "answered on "+last.Chassis
	case "consumed":
		tr.Outcome, tr.Chassis, tr.Detail = Consumed, last.Chassis, "kept by "+last.Chassis
	default:
		tr.Outcome, tr.Reason, tr.Chassis = Dropped, end.reason, last.Chassis
		tr.Detail = fmt.Sprintf("dropped on %s at %s: %s", last.Chassis, last.Steps[len(last.Steps)-1].Stage, end.reason)
	}
	return tr
}

// stepOf is a hop's step of a stage (empty if it has none).
func stepOf(h Hop, stage string) Step {
	for _, s := range h.Steps {
		if s.Stage == stage {
			return s
		}
	}
	return Step{}
}

// datapathOf says on which datapath each stage of a direction runs.
func (e *env) datapathOf(dir pipeline.Direction) func(pipeline.Stage) *sbdb.Datapath {
	return func(st pipeline.Stage) *sbdb.Datapath {
		switch {
		case st.Datapath == pipeline.DPVPC:
			return e.w.vpc
		case dir == pipeline.FromPort:
			return e.w.vxnet
		}
		if dp := e.w.byVNI[e.p.dvni]; dp != nil {
			return dp
		}
		return e.w.vxnet
	}
}

// targetOf is the address a stage resolves.
func (e *env) targetOf(st pipeline.Stage) netip.Addr {
	switch {
	case e.p.bools["arp"]:
		return e.p.addr("arp.tpa")
	case st.ID == pipeline.DstLookup || st.ID == pipeline.ToHub || st.Dir == pipeline.FromTunnel:
		if e.p.target.IsValid() {
			return e.p.target
		}
	}
	return e.p.addr("ip4.dst")
}
