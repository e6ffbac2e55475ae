package nbctl

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/courier-sdn/courier/schema/nbdb"
	"github.com/courier-sdn/courier/tools/cmdline"
	"github.com/courier-sdn/courier/tools/picture"
)

// show's model: the tree that show prints, -f json returns and
// --format dot draws.

type showVPC struct {
	Name      string      `json:"name"`
	TunnelKey any         `json:"tunnel_key"`
	Error     any         `json:"error"`
	Vxnets    []showVxnet `json:"vxnets"`
	Routes    []showRoute `json:"routes"`
	Open      bool        `json:"open,omitempty"`
	Groups    []showSG    `json:"security_groups,omitempty"`
	SNAT      *showSNAT   `json:"snat,omitempty"`
}

type showSNAT struct {
	Network   string   `json:"network"`
	Addresses []string `json:"addresses"`
	Block     int      `json:"block_size"`
	Error     any      `json:"error"`
	text      string
}

type showSG struct {
	Name  string   `json:"name"`
	Rules []string `json:"rules"` // "ingress tcp 80 from 10.0.0.0/8"
	Error any      `json:"error"`
}

type showVxnet struct {
	Name    string     `json:"name"`
	CIDR    string     `json:"cidr"`
	Gateway string     `json:"gateway"`
	VNI     any        `json:"vni"`
	Error   any        `json:"error"`
	Ports   []showPort `json:"ports"`
}

type showPort struct {
	Name string   `json:"name"`
	MAC  string   `json:"mac"`
	IPs  []string `json:"ips"` // empty: learned ("unknown")
	// what northd allocated for "dynamic" ("MAC IP"), or null
	DynamicAddresses any      `json:"dynamic_addresses"`
	VirtualIPs       []string `json:"virtual_ips"`
	RequestedChassis any      `json:"requested_chassis"`
	Up               any      `json:"up"`
	Chassis          any      `json:"chassis"`
	Error            any      `json:"error"`
	Groups           []string `json:"security_groups,omitempty"`
	EIP              string   `json:"eip,omitempty"`
	// MAC and IPs for people (addrTexts)
	macText, ipText string
}

type showRoute struct {
	Prefix  string `json:"prefix"`
	Nexthop string `json:"nexthop"`
	Error   any    `json:"error"`
}

func errOf(status map[string]string) any {
	if status["state"] == "error" {
		return status["error"]
	}
	return nil
}

func ptr[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

func (st *state) showModel(only string) ([]showVPC, error) {
	var vpcs []*nbdb.VPC
	for _, v := range st.vpcs {
		if only == "" || v.Name == only {
			vpcs = append(vpcs, v)
		}
	}
	if only != "" && len(vpcs) == 0 {
		return nil, fmt.Errorf("no VPC named %q", only)
	}
	sort.Slice(vpcs, func(i, j int) bool { return vpcs[i].Name < vpcs[j].Name })
	out := []showVPC{}
	for _, vpc := range vpcs {
		sv := showVPC{Name: vpc.Name, TunnelKey: optInt(vpc.Status["tunnel_key"]), Error: errOf(vpc.Status),
			Vxnets: []showVxnet{}, Routes: []showRoute{}}
		vxs := st.vxnetsOf(vpc)
		sort.Slice(vxs, func(i, j int) bool { return vxs[i].Name < vxs[j].Name })
		for _, vx := range vxs {
			_, gw, _ := gatewayOf(vx)
			sx := showVxnet{Name: vx.Name, CIDR: vx.Cidr, Gateway: gw.String(), Error: errOf(vx.Status), Ports: []showPort{}}
			if n := vniOf(vx); n > 0 {
				sx.VNI = n
			}
			ports := st.portsOf(vx)
			sort.Slice(ports, func(i, j int) bool { return ports[i].Name < ports[j].Name })
			for _, p := range ports {
				mac, ips := addrTexts(p)
				sx.Ports = append(sx.Ports, showPort{Name: p.Name, MAC: p.MAC, IPs: nonNil(p.IPs), DynamicAddresses: ptr(p.DynamicAddresses),
					macText: mac, ipText: ips,
					VirtualIPs:       nonNil(p.VirtualIPs),
					RequestedChassis: ptr(p.RequestedChassis), Up: ptr(p.Up), Chassis: ptr(p.Chassis), Error: errOf(p.Status),
					Groups: st.groupNames(p.SecurityGroups), EIP: st.eipAddress(p.UUID)})
			}
			sv.Vxnets = append(sv.Vxnets, sx)
		}
		rs := st.routesOf(vpc)
		sort.Slice(rs, func(i, j int) bool { return rs[i].Prefix < rs[j].Prefix })
		for _, r := range rs {
			sv.Routes = append(sv.Routes, showRoute{Prefix: r.Prefix, Nexthop: r.Nexthop, Error: errOf(r.Status)})
		}
		sv.Open = vpc.Open != nil && *vpc.Open
		sv.Groups = st.showGroups(vpc)
		if s := st.snatOf(vpc); s != nil {
			sv.SNAT = st.showSNAT(s)
		}
		out = append(out, sv)
	}
	return out, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func cmdShow(st *state, inv *cmdline.Invocation, out *cmdline.Output) error {
	only := ""
	if len(inv.Args) == 1 {
		only = inv.Args[0]
	}
	vpcs, err := st.showModel(only)
	if err != nil {
		return err
	}
	switch f := inv.Value("format"); f {
	case "", "text":
		text := showText(vpcs)
		if only == "" {
			text += st.showExtnetsText()
		}
		out.Value(text, vpcs)
		return nil
	default:
		g := showGraph(vpcs, inv.Has("runtime"))
		if inv.Has("runtime") && st.sbRemote != "" {
			s, err := readSouth(st.ctx, st.sbRemote, st.tls)
			if err != nil {
				return err
			}
			drawSouth(g, vpcs, s)
		}
		pic, err := picture.Render(g, f)
		if err != nil {
			return err
		}
		out.Add(cmdline.PartFunc(func(w io.Writer, _ *cmdline.Output) error {
			_, err := io.WriteString(w, pic)
			return err
		}))
		return nil
	}
}

func errText(e any) string {
	if e == nil {
		return ""
	}
	return "  [error: " + e.(string) + "]"
}

func showText(vpcs []showVPC) string {
	var b strings.Builder
	for _, vpc := range vpcs {
		key := ""
		if vpc.TunnelKey != nil {
			key = fmt.Sprintf(" (key %d)", vpc.TunnelKey)
		}
		fmt.Fprintf(&b, "vpc %s%s%s\n", vpc.Name, key, errText(vpc.Error))
		for _, vx := range vpc.Vxnets {
			vni := ""
			if vx.VNI != nil {
				vni = fmt.Sprintf(", vni %d", vx.VNI)
			}
			fmt.Fprintf(&b, "    vxnet %s (%s, gateway %s%s)%s\n", vx.Name, vx.CIDR, vx.Gateway, vni, errText(vx.Error))
			for _, p := range vx.Ports {
				mac, addrs := p.macText, p.ipText
				extra := ""
				if len(p.VirtualIPs) > 0 {
					extra += " vips " + strings.Join(p.VirtualIPs, " ")
				}
				if p.RequestedChassis != nil {
					extra += " on " + p.RequestedChassis.(string)
				}
				if where := where(p); where != "" {
					extra += "  (" + where + ")"
				}
				if len(p.Groups) > 0 {
					extra += " sg " + strings.Join(p.Groups, ",")
				}
				if p.EIP != "" {
					extra += " eip " + p.EIP
				}
				fmt.Fprintf(&b, "        port %s: %s %s%s%s\n", p.Name, mac, addrs, extra, errText(p.Error))
			}
		}
		for _, r := range vpc.Routes {
			fmt.Fprintf(&b, "    route %s via %s%s\n", r.Prefix, r.Nexthop, errText(r.Error))
		}
		if s := vpc.SNAT; s != nil {
			fmt.Fprintf(&b, "    snat %s%s\n", s.text, errText(s.Error))
		}
		showGroupsText(&b, vpc)
	}
	return b.String()
}

// where is portWhere over show's model.
func where(p showPort) string {
	up, _ := p.Up.(bool)
	ch, _ := p.Chassis.(string)
	return portWhere(&nbdb.Port{Up: optBool(p.Up != nil, up), Chassis: optStr(ch)})
}

func optBool(set, v bool) *bool {
	if !set {
		return nil
	}
	return &v
}

func optStr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// showGraph draws VPCs as boxes holding their vxnets, ports and routes;
// with runtime, the chassis each port is bound to.
func showGraph(vpcs []showVPC, runtime bool) *picture.Graph {
	g := picture.New("courier northbound")
	color := func(e any) string {
		if e != nil {
			return "red"
		}
		return ""
	}
	chassis := map[string]bool{}
	for _, vpc := range vpcs {
		label := "vpc " + vpc.Name
		if vpc.TunnelKey != nil {
			label += fmt.Sprintf("\nkey %d", vpc.TunnelKey)
		}
		c := g.Cluster("vpc:"+vpc.Name, "vpc "+vpc.Name)
		c.Color = color(vpc.Error)
		router := "router:" + vpc.Name
		c.Add(picture.Node{ID: router, Label: strings.Replace(label, "vpc", "router", 1), Shape: "doubleoctagon", Color: color(vpc.Error)})
		owner := map[string]string{} // IP -> port node
		for _, vx := range vpc.Vxnets {
			vxID := "vxnet:" + vx.Name
			label := fmt.Sprintf("vxnet %s\n%s gw %s", vx.Name, vx.CIDR, vx.Gateway)
			if vx.VNI != nil {
				label += fmt.Sprintf("\nvni %d", vx.VNI)
			}
			c.Add(picture.Node{ID: vxID, Label: label, Shape: "box3d", Color: color(vx.Error)})
			g.Connect(picture.Edge{From: router, To: vxID})
			for _, p := range vx.Ports {
				pID := "port:" + p.Name
				mac, addrs := p.macText, p.ipText
				c.Add(picture.Node{ID: pID, Label: fmt.Sprintf("port %s\n%s\n%s", p.Name, mac, addrs), Shape: "ellipse", Color: color(p.Error)})
				g.Connect(picture.Edge{From: vxID, To: pID})
				for _, ip := range p.IPs {
					owner[ip] = pID
				}
				if ch, _ := p.Chassis.(string); runtime && ch != "" {
					chassis[ch] = true
					style := "dashed"
					if up, _ := p.Up.(bool); up {
						style = ""
					}
					g.Connect(picture.Edge{From: pID, To: "chassis:" + ch, Label: where(p), Style: style})
				}
			}
		}
		for _, r := range vpc.Routes {
			rID := "route:" + vpc.Name + ":" + r.Prefix
			c.Add(picture.Node{ID: rID, Label: "route " + r.Prefix + "\nvia " + r.Nexthop, Shape: "note", Color: color(r.Error)})
			if p := owner[r.Nexthop]; p != "" {
				g.Connect(picture.Edge{From: rID, To: p, Label: "next hop", Style: "dotted"})
			}
		}
	}
	names := make([]string, 0, len(chassis))
	for ch := range chassis {
		names = append(names, ch)
	}
	sort.Strings(names)
	for _, ch := range names {
		g.Add(picture.Node{ID: "chassis:" + ch, Label: "chassis " + ch, Shape: "component"})
	}
	return g
}
