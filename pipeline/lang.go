package pipeline

// The logical flow language: an OVN-like match/action language, small on
// purpose. Flows describe per-datapath policy; per-port facts are never
// spelled out in flows, they are symbols (inport.mac, dst.known) that the
// data plane resolves from bindings at run time. That keeps the number of
// flows independent of the number of ports.
//
// Grammar (EBNF):
//
//	match    = disj .
//	disj     = conj { "||" conj } .
//	conj     = unary { "&&" unary } .
//	unary    = "!" unary | "(" disj ")" | compare | field | "1" | "0" .
//	compare  = field ( "==" | "!=" | "<=" | ">=" ) operand .
//	operand  = value | "{" value { "," value } "}" .
//	value    = INTEGER | HEX | IPV4 [ "/" INTEGER ] | MAC | field .
//	field    = IDENT { "." IDENT } .
//
//	actions  = action ";" { action ";" } .
//	action   = IDENT [ "(" [ arg { "," arg } ] ")" ] | field "=" value .
//	arg      = [ IDENT "=" ] value | IDENT .
//
// A field on its own is a boolean field (ip4, arp, inport.security) or a
// predicate (dst.known). "==" against a set means "is one of", against a
// prefix "lies inside"; a field on the right-hand side is another packet or
// binding field (eth.src != inport.mac).

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Kind is a field's value type.
type Kind int

const (
	KBool Kind = iota
	KInt
	KMAC
	KIPv4
	KAddrSet // a set of IPv4 addresses known only at run time
	KString  // a name, in double quotes
)

// Fields are the symbols a match may use.
var Fields = map[string]Kind{
	"eth.src":         KMAC,
	"eth.dst":         KMAC,
	"eth.type":        KInt,
	"arp":             KBool,
	"arp.op":          KInt,
	"arp.sha":         KMAC,
	"arp.spa":         KIPv4,
	"arp.tpa":         KIPv4,
	"ip4":             KBool,
	"ip4.src":         KIPv4,
	"ip4.dst":         KIPv4,
	"ip.ttl":          KInt,
	"icmp4.type":      KInt,
	"inport.security": KBool,    // the port's binding has port security on
	"inport.mac":      KMAC,     // the port's MAC
	"inport.addrs":    KAddrSet, // the port's IPs and virtual IPs
	"dst.known":       KBool,    // the destination resolves to a binding
	"dst.local":       KBool,    // ... on this host
	"dst.mac":         KMAC,     // the resolved destination's MAC
	"dst.unknown":     KBool,    // a hub said lately that nobody has the destination

	"ip6":                KBool,
	"ip.proto":           KInt,
	"icmp4":              KBool,
	"icmp4.code":         KInt,
	"tcp":                KBool,
	"tcp.src":            KInt,
	"tcp.dst":            KInt,
	"udp":                KBool,
	"udp.src":            KInt,
	"udp.dst":            KInt,
	"inport":             KString, // the port a packet came from, by name (microflows)
	"inport.over_budget": KBool,   // the port spent its budget of packets to hubs
	"learn":              KBool,   // a learn message (dataplane/bpf/learn.h)
	"learn.op":           KInt,    // 1 learn, 2 forget, 3 unknown, 4 probe, 5 probe reply
	"from.hub":           KBool,   // from the tunnel: the sending host is one of the VPC's hubs
	"from.path_host":     KBool,   // ... the host this host's path to the address points to
	"chassis.hub":        KBool,   // this chassis is a hub of the VPC
	"tcp.syn":            KBool,   // a TCP SYN
	"pkt.too_big":        KBool,   // the frame (or a GSO packet's segments) is longer than the port's MTU
	"error":              KString, // icmp_err: why an earlier stage could not forward
	"inport.sg":          KString, // sg_egress: the sending port is in this security group
	"outport.sg":         KString, // sg_ingress: the receiving port is in this security group
	"src.sg":             KString, // sg_ingress: the sender's identity is in this group
	"dst.sg":             KString, // sg_egress: the destination's identity is in this group
	"ct.est":             KBool,   // the packet belongs to a tracked connection (either way)
	"inport.eip":         KBool,   // the sending port has an EIP
	"dst.eip":            KBool,   // from the tunnel: the destination is the EIP of a local port
	"eip.gateway":        KBool,   // eip_out: the EIP's network has a gateway
	"inport.snat":        KBool,   // the sending port is translated by its VPC's SNAT (no EIP of its own)
	"dst.snat":           KBool,   // from the tunnel: the destination is a SNAT address and port of a local port's connection
	"snat.gateway":       KBool,   // eip_out: the SNAT addresses' network has a gateway
}

// GroupFields are the fields that name a port's security groups: a port
// is in several, and field == "G" holds when G is one of them.
var GroupFields = map[string]bool{"inport.sg": true, "outport.sg": true, "src.sg": true, "dst.sg": true}

// Actions and their arguments.
var Actions = map[string]string{
	"next":       "continue with the next stage",
	"drop":       "drop(REASON): drop and count under a named reason; drop; keeps the reason of the icmp_error that led here",
	"arp_reply":  "arp_reply(MAC): answer the ARP request with MAC",
	"output":     "deliver to the resolved destination (local port or its host)",
	"hub":        "send to one of the VPC's hubs, chosen by flow hash",
	"route":      "route(vni=N) or route(nexthop=IP, vni=N): the destination vxnet, or a next hop in it",
	"ttl_dec":    "decrement the IPv4 TTL",
	"icmp_reply": "answer an ICMP echo request from the destination address",
	"set":        "FIELD = VALUE",

	"install_path": "install the direct path a hub taught",
	"forget_path":  "forget a learned path; from the tunnel, also tell the sender to forget the path that brought the packet",
	"note_unknown": "drop packets to an address a hub says nobody has, for a moment",
	"probe_reply":  "answer a hub liveness probe",
	"note_hub":     "record that a hub answered a probe",
	"teach":        "a hub: send on, and teach the sender where the destination lives",
	"tell_unknown": "a hub: tell the sender nobody has the destination",
	"dhcp":         "go on to the dhcp stage",
	"dhcp_reply":   "dhcp_reply(router=IP, netmask=MASK, lease=SECONDS[, mtu=N][, dns={IP, ...}][, domain=\"NAME\"][, routes={PREFIX, ...}]): answer a DHCP DISCOVER, REQUEST or INFORM with the port's own address, its name and these options",
	"icmp_error":   "go on to the icmp_err stage: tell the VM why (icmp_error(REASON))",
	"icmp4_error":  "icmp4_error(type=T, code=C[, mtu=inport.mtu]): turn the packet into that ICMP error from the gateway, back to the VM",
	"clamp_mss":    "lower a TCP SYN's MSS to what the path MTU carries",
	"allow":        "let the packet go on and track its connection: its later packets and replies pass without rules",
	"eip_out":      "go on to the eip_out stage",
	"eip_dnat":     "translate the destination, an EIP, to its port's address, and go on",
	"eip_snat":     "once the security groups passed it, translate the source to the port's EIP and send it to a gateway of the EIP's network",
	"snat":         "once the security groups passed it, translate the source to an address and port of the port's SNAT blocks (the connection's, or the next free one) and send it to a gateway of the addresses' network",
	"unsnat":       "translate the destination, a SNAT address and port, back to the connection's port address and port, and go on",
}

// Expr is a parsed match.
type Expr interface{ String() string }

// Or, And, Not, Cmp, Bool and Const are the match syntax tree.
type (
	Or  []Expr
	And []Expr
	Not struct{ X Expr }
	// Cmp compares a field with a value or a set of values.
	Cmp struct {
		Field  string
		Op     string // "==", "!=", "<=", ">="
		Values []Value
		Set    bool // written with braces
	}
	// Bool is a boolean field on its own.
	Bool  struct{ Field string }
	Const bool
)

// Value is a constant or a field reference.
type Value struct {
	Field  string // set when the value is another field
	Int    int64
	MAC    string
	Str    string
	Prefix netip.Prefix // an address is a /32
	Kind   Kind
}

func (v Value) String() string {
	switch {
	case v.Field != "":
		return v.Field
	case v.Kind == KMAC:
		return v.MAC
	case v.Kind == KString:
		return strconv.Quote(v.Str)
	case v.Kind == KIPv4:
		if v.Prefix.Bits() == 32 {
			return v.Prefix.Addr().String()
		}
		return v.Prefix.String()
	default:
		return strconv.FormatInt(v.Int, 10)
	}
}

func (e Or) String() string  { return join([]Expr(e), " || ") }
func (e And) String() string { return join([]Expr(e), " && ") }
func (e Not) String() string { return "!" + paren(e.X) }
func (e Bool) String() string {
	return e.Field
}
func (e Const) String() string {
	if e {
		return "1"
	}
	return "0"
}
func (e Cmp) String() string {
	if e.Set || len(e.Values) > 1 {
		vs := make([]string, len(e.Values))
		for i, v := range e.Values {
			vs[i] = v.String()
		}
		return fmt.Sprintf("%s %s {%s}", e.Field, e.Op, strings.Join(vs, ", "))
	}
	return fmt.Sprintf("%s %s %s", e.Field, e.Op, e.Values[0])
}

func paren(e Expr) string {
	switch e.(type) {
	case Or, And:
		return "(" + e.String() + ")"
	}
	return e.String()
}

func join(es []Expr, sep string) string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = paren(e)
	}
	return strings.Join(parts, sep)
}

// Action is one parsed action.
type Action struct {
	Name string
	Args []Arg
}

// Arg is an action argument: Key is empty for a positional one.
type Arg struct {
	Key   string
	Value string
}

// Arg returns the named (or, with key "", the first positional) argument.
func (a Action) Arg(key string) (string, bool) {
	for _, x := range a.Args {
		if x.Key == key {
			return x.Value, true
		}
	}
	return "", false
}

func (a Action) String() string {
	if a.Name == "set" && len(a.Args) == 1 {
		return a.Args[0].Key + " = " + a.Args[0].Value + ";"
	}
	if len(a.Args) == 0 {
		return a.Name + ";"
	}
	parts := make([]string, len(a.Args))
	for i, x := range a.Args {
		if x.Key != "" {
			parts[i] = x.Key + "=" + x.Value
		} else {
			parts[i] = x.Value
		}
	}
	return a.Name + "(" + strings.Join(parts, ", ") + ");"
}

// FormatActions prints actions canonically.
func FormatActions(as []Action) string {
	parts := make([]string, len(as))
	for i, a := range as {
		parts[i] = a.String()
	}
	return strings.Join(parts, " ")
}

// ---- lexer ----

type token struct {
	kind string // "id", "num", "op", "eof"
	text string
	pos  int
}

func lex(s string) ([]token, error) {
	var out []token
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			i++
		case c == '"':
			j := strings.IndexByte(s[i+1:], '"')
			if j < 0 {
				return nil, fmt.Errorf("unterminated string at %d", i)
			}
			out = append(out, token{"str", s[i+1 : i+1+j], i})
			i += j + 2
		case strings.ContainsRune("(){},;", rune(c)):
			out = append(out, token{"op", string(c), i})
			i++
		case c == '&' || c == '|' || c == '=' || c == '!' || c == '<' || c == '>':
			if i+1 < len(s) {
				two := s[i : i+2]
				if two == "&&" || two == "||" || two == "==" || two == "!=" || two == "<=" || two == ">=" {
					out = append(out, token{"op", two, i})
					i += 2
					continue
				}
			}
			if c == '!' || c == '=' {
				out = append(out, token{"op", string(c), i})
				i++
				continue
			}
			return nil, fmt.Errorf("unexpected %q at %d", c, i)
		case isWord(c):
			j := i
			for j < len(s) && (isWord(s[j]) || s[j] == '.' || s[j] == ':' || s[j] == '/') {
				j++
			}
			w := s[i:j]
			kind := "id"
			if c >= '0' && c <= '9' {
				kind = "num"
			}
			out = append(out, token{kind, w, i})
			i = j
		default:
			return nil, fmt.Errorf("unexpected %q at %d", c, i)
		}
	}
	return append(out, token{"eof", "", len(s)}), nil
}

func isWord(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

type parser struct {
	toks []token
	i    int
	src  string
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) next() token { t := p.toks[p.i]; p.i++; return t }
func (p *parser) errf(format string, a ...any) error {
	return fmt.Errorf("%s (at %d in %q)", fmt.Sprintf(format, a...), p.peek().pos, p.src)
}
func (p *parser) accept(op string) bool {
	if t := p.peek(); t.kind == "op" && t.text == op {
		p.i++
		return true
	}
	return false
}

// ParseMatch parses and type-checks a match expression.
func ParseMatch(s string) (Expr, error) {
	toks, err := lex(s)
	if err != nil {
		return nil, fmt.Errorf("match %q: %w", s, err)
	}
	p := &parser{toks: toks, src: s}
	e, err := p.disj()
	if err != nil {
		return nil, err
	}
	if p.peek().kind != "eof" {
		return nil, p.errf("unexpected %q", p.peek().text)
	}
	return e, nil
}

func (p *parser) disj() (Expr, error) {
	var terms Or
	for {
		e, err := p.conj()
		if err != nil {
			return nil, err
		}
		terms = append(terms, e)
		if !p.accept("||") {
			break
		}
	}
	if len(terms) == 1 {
		return terms[0], nil
	}
	return terms, nil
}

func (p *parser) conj() (Expr, error) {
	var terms And
	for {
		e, err := p.unary()
		if err != nil {
			return nil, err
		}
		terms = append(terms, e)
		if !p.accept("&&") {
			break
		}
	}
	if len(terms) == 1 {
		return terms[0], nil
	}
	return terms, nil
}

func (p *parser) unary() (Expr, error) {
	if p.accept("!") {
		x, err := p.unary()
		if err != nil {
			return nil, err
		}
		return Not{x}, nil
	}
	if p.accept("(") {
		e, err := p.disj()
		if err != nil {
			return nil, err
		}
		if !p.accept(")") {
			return nil, p.errf("missing )")
		}
		return e, nil
	}
	t := p.next()
	switch {
	case t.kind == "num" && t.text == "1":
		return Const(true), nil
	case t.kind == "num" && t.text == "0":
		return Const(false), nil
	case t.kind != "id":
		return nil, fmt.Errorf("expected a field, got %q (in %q)", t.text, p.src)
	}
	kind, ok := Fields[t.text]
	if !ok {
		return nil, fmt.Errorf("unknown field %q (in %q)", t.text, p.src)
	}
	op := p.peek()
	if op.kind != "op" || (op.text != "==" && op.text != "!=" && op.text != "<=" && op.text != ">=") {
		if kind != KBool {
			return nil, fmt.Errorf("field %s is not boolean; compare it (in %q)", t.text, p.src)
		}
		return Bool{t.text}, nil
	}
	p.next()
	if kind == KBool {
		return nil, fmt.Errorf("boolean field %s cannot be compared (in %q)", t.text, p.src)
	}
	if (op.text == "<=" || op.text == ">=") && kind != KInt {
		return nil, fmt.Errorf("%s applies to integer fields only, not %s (in %q)", op.text, t.text, p.src)
	}
	c := Cmp{Field: t.text, Op: op.text}
	if p.accept("{") {
		c.Set = true
		for {
			v, err := p.value(kind)
			if err != nil {
				return nil, err
			}
			c.Values = append(c.Values, v)
			if p.accept("}") {
				break
			}
			if !p.accept(",") {
				return nil, p.errf("expected , or }")
			}
		}
	} else {
		v, err := p.value(kind)
		if err != nil {
			return nil, err
		}
		c.Values = []Value{v}
	}
	return c, nil
}

// value parses a constant of the field's kind, or a field of a compatible
// kind.
func (p *parser) value(want Kind) (Value, error) {
	t := p.next()
	if t.kind == "id" {
		if k, ok := Fields[t.text]; ok {
			if !compatible(want, k) {
				return Value{}, fmt.Errorf("cannot compare with %s: types differ (in %q)", t.text, p.src)
			}
			return Value{Field: t.text, Kind: k}, nil
		}
	}
	if (t.kind == "str") != (want == KString) {
		return Value{}, fmt.Errorf("%q: a name is compared with a quoted string, other fields with constants (in %q)", t.text, p.src)
	}
	v, err := ParseValue(t.text, want)
	if err != nil {
		return Value{}, fmt.Errorf("%v (in %q)", err, p.src)
	}
	return v, nil
}

func compatible(a, b Kind) bool {
	return a == b || (a == KIPv4 && b == KAddrSet) || (a == KAddrSet && b == KIPv4)
}

// ParseValue parses a constant of kind k.
func ParseValue(s string, k Kind) (Value, error) {
	switch k {
	case KInt:
		n, err := strconv.ParseInt(s, 0, 64)
		if err != nil {
			return Value{}, fmt.Errorf("%q is not an integer", s)
		}
		return Value{Int: n, Kind: KInt}, nil
	case KMAC:
		if len(s) != 17 || strings.Count(s, ":") != 5 {
			return Value{}, fmt.Errorf("%q is not a MAC address", s)
		}
		return Value{MAC: strings.ToLower(s), Kind: KMAC}, nil
	case KString:
		return Value{Str: s, Kind: KString}, nil
	case KIPv4, KAddrSet:
		if strings.Contains(s, "/") {
			pf, err := netip.ParsePrefix(s)
			if err != nil || !pf.Addr().Is4() {
				return Value{}, fmt.Errorf("%q is not an IPv4 prefix", s)
			}
			return Value{Prefix: pf.Masked(), Kind: KIPv4}, nil
		}
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is4() {
			return Value{}, fmt.Errorf("%q is not an IPv4 address", s)
		}
		return Value{Prefix: netip.PrefixFrom(a, 32), Kind: KIPv4}, nil
	}
	return Value{}, fmt.Errorf("no constants of this kind")
}

// argValue reads an action argument's value: a word, a quoted string
// (kept quoted), or a set {A, B} (kept as written, see SetItems).
func (p *parser) argValue() (string, error) {
	t := p.next()
	switch {
	case t.kind == "str":
		return strconv.Quote(t.text), nil
	case t.kind == "op" && t.text == "{":
		var items []string
		for !p.accept("}") {
			w := p.next()
			if w.kind == "eof" || w.kind == "op" {
				return "", p.errf("unterminated set")
			}
			items = append(items, w.text)
			p.accept(",")
		}
		return "{" + strings.Join(items, ", ") + "}", nil
	case t.kind == "id" || t.kind == "num":
		return t.text, nil
	}
	return "", p.errf("expected a value, got %q", t.text)
}

// ParseActions parses an action list: every action ends with ";".
func ParseActions(s string) ([]Action, error) {
	toks, err := lex(s)
	if err != nil {
		return nil, fmt.Errorf("actions %q: %w", s, err)
	}
	p := &parser{toks: toks, src: s}
	var out []Action
	for p.peek().kind != "eof" {
		t := p.next()
		if t.kind != "id" {
			return nil, fmt.Errorf("expected an action, got %q (in %q)", t.text, s)
		}
		var a Action
		switch {
		case p.accept("="):
			k, ok := Fields[t.text]
			if !ok {
				return nil, fmt.Errorf("unknown field %q (in %q)", t.text, s)
			}
			v, err := p.value(k)
			if err != nil {
				return nil, err
			}
			a = Action{Name: "set", Args: []Arg{{Key: t.text, Value: v.String()}}}
		default:
			if _, ok := Actions[t.text]; !ok {
				return nil, fmt.Errorf("unknown action %q (in %q)", t.text, s)
			}
			a = Action{Name: t.text}
			if p.accept("(") {
				for !p.accept(")") {
					w := p.next()
					if w.kind == "eof" {
						return nil, fmt.Errorf("missing ) (in %q)", s)
					}
					arg := Arg{Value: w.text}
					if p.accept("=") {
						v, err := p.argValue()
						if err != nil {
							return nil, err
						}
						arg = Arg{Key: w.text, Value: v}
					}
					a.Args = append(a.Args, arg)
					p.accept(",")
				}
			}
		}
		if !p.accept(";") {
			return nil, p.errf("missing ; after %s", a.Name)
		}
		out = append(out, a)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("empty action list")
	}
	return out, nil
}
