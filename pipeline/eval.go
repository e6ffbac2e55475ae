package pipeline

import (
	"net/netip"
	"slices"
)

// Env gives a match the values of a packet's fields and of the symbols
// the data plane resolves (inport.*, dst.*): courier-trace evaluates
// logical flows against one.
type Env interface {
	// Value returns a non-boolean field's value; false when the packet
	// has no such field (arp.tpa of an IPv4 packet).
	Value(field string) (Value, bool)
	// Bool returns a boolean field.
	Bool(field string) bool
	// AddrSet returns the addresses of a set field (inport.addrs).
	AddrSet(field string) []netip.Addr
	// Groups returns the security groups a group field's port is in
	// (inport.sg, outport.sg, src.sg, dst.sg).
	Groups(field string) []string
}

// Eval says whether a match holds in env. A comparison with a field the
// packet does not have is false, whichever the operator, as a missing
// prerequisite is in OVN.
func Eval(e Expr, env Env) bool {
	switch x := e.(type) {
	case Const:
		return bool(x)
	case Bool:
		return env.Bool(x.Field)
	case Not:
		return !Eval(x.X, env)
	case And:
		for _, t := range x {
			if !Eval(t, env) {
				return false
			}
		}
		return true
	case Or:
		for _, t := range x {
			if Eval(t, env) {
				return true
			}
		}
		return false
	case Cmp:
		return evalCmp(x, env)
	}
	return false
}

func evalCmp(c Cmp, env Env) bool {
	if GroupFields[c.Field] {
		return evalGroups(c, env.Groups(c.Field))
	}
	lhs, ok := env.Value(c.Field)
	if !ok {
		return false
	}
	if c.Op == "<=" || c.Op == ">=" {
		r, ok := resolve(c.Values[0], env)
		if c.Op == ">=" {
			return ok && lhs.Int >= r.Int
		}
		return ok && lhs.Int <= r.Int
	}
	any := false
	for _, v := range c.Values {
		if v.Field != "" && Fields[v.Field] == KAddrSet {
			for _, a := range env.AddrSet(v.Field) {
				any = any || (lhs.Kind == KIPv4 && lhs.Prefix.Addr() == a)
			}
			continue
		}
		r, ok := resolve(v, env)
		any = any || (ok && equal(lhs, r))
	}
	if c.Op == "!=" {
		return !any
	}
	return any
}

// resolve gives a value that names another field that field's value.
func resolve(v Value, env Env) (Value, bool) {
	if v.Field == "" {
		return v, true
	}
	return env.Value(v.Field)
}

// equal: lhs is r, or, for an address and a prefix, lies inside it.
func equal(lhs, r Value) bool {
	switch r.Kind {
	case KIPv4, KAddrSet:
		return r.Prefix.Contains(lhs.Prefix.Addr())
	case KMAC:
		return lhs.MAC == r.MAC
	case KString:
		return lhs.Str == r.Str
	}
	return lhs.Int == r.Int
}

// evalGroups: a port is in a group if any of its groups is named; != is
// in none of them.
func evalGroups(c Cmp, groups []string) bool {
	any := false
	for _, v := range c.Values {
		any = any || slices.Contains(groups, v.Str)
	}
	if c.Op == "!=" {
		return !any
	}
	return any
}
