package northd

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/courier-sdn/courier/pipeline"
)

// sg_egress and sg_ingress: a VPC's security groups, one flow per rule of
// each group (groups × rules, never ports: which ports are in a group is
// their identity, in their bindings). A rule's flow names its group
// (inport.sg on the sender's host, outport.sg on the receiver's) and, for
// a remote group, the other end's (dst.sg, src.sg), which the data plane
// reads from the identity a packet carries. Tracked connections pass
// first; what no rule allows is dropped. An open VPC enforces nothing.

func sgEgressFlows(b *flowBuilder, s scope) { sgFlows(b, s, pipeline.SGEgress, false) }

func sgIngressFlows(b *flowBuilder, s scope) { sgFlows(b, s, pipeline.SGIngress, true) }

func sgFlows(b *flowBuilder, s scope, stage int, ingress bool) {
	if s.vpc.open {
		b.add(stage, 0, "1", "next;")
		return
	}
	b.add(stage, 200, "ct.est", "allow;")
	b.add(stage, 150, "!ip4", "next;")
	for _, g := range s.vpc.groups {
		for _, r := range g.rules {
			if r.ingress == ingress {
				b.add(stage, 100, sgMatch(g.name, r), "allow;")
			}
		}
	}
	if ingress {
		b.add(stage, 0, "1", "drop(sg_ingress);")
	} else {
		b.add(stage, 0, "1", "drop(sg_egress);")
	}
}

// sgMatch is a rule's match: its group, protocol, ports and remote end.
func sgMatch(group string, r *cRule) string {
	self, addr, peer := "inport.sg", "ip4.dst", "dst.sg"
	if r.ingress {
		self, addr, peer = "outport.sg", "ip4.src", "src.sg"
	}
	terms := []string{fmt.Sprintf("%s == %q", self, group)}
	switch r.proto {
	case "tcp", "udp":
		terms = append(terms, r.proto)
		if r.portMin == r.portMax && r.portMin != 0 {
			terms = append(terms, r.proto+".dst == "+strconv.Itoa(r.portMin))
		} else if r.portMin != 0 {
			terms = append(terms, r.proto+".dst >= "+strconv.Itoa(r.portMin), r.proto+".dst <= "+strconv.Itoa(r.portMax))
		}
	case "icmp":
		terms = append(terms, "icmp4")
	default:
		terms = append(terms, "ip4")
	}
	switch {
	case r.remote != "":
		terms = append(terms, fmt.Sprintf("%s == %q", peer, r.remote))
	case r.cidr.Bits() > 0:
		terms = append(terms, addr+" == "+r.cidr.String())
	}
	return strings.Join(terms, " && ")
}
