package sbctl

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/courier-sdn/courier/pipeline"
	"github.com/courier-sdn/courier/schema/sbdb"
	"github.com/courier-sdn/courier/tools/cmdline"
	"github.com/courier-sdn/courier/tools/picture"
)

// drawShow draws the running world: each chassis as a box holding the
// ports bound to it (dashed when not up), each VPC with its vxnets and
// edges to the chassis serving as its hubs; with runtime, what hosts
// learned from traffic (the accepted learned bindings).
func drawShow(v *view, format string, runtime bool, out *cmdline.Output) error {
	g := picture.New("courier southbound")
	priv := map[string]*sbdb.ChassisPrivate{}
	for _, p := range list[sbdb.ChassisPrivate](v) {
		priv[p.Name] = p
	}
	chs := list[sbdb.Chassis](v)
	sort.Slice(chs, func(i, j int) bool { return chs[i].Name < chs[j].Name })
	for _, c := range chs {
		state, color := "unknown", ""
		if p := priv[c.Name]; p != nil {
			state = aliveText(p.Alive)
			if state == "dead" {
				color = "red"
			}
		}
		cl := g.Cluster("chassis:"+c.Name, fmt.Sprintf("chassis %s (%s)\n%s %s", c.Name, c.EncapIP, strings.Join(c.Roles, ","), state))
		cl.Color = color
		cl.Add(picture.Node{ID: "chassis:" + c.Name, Label: c.Name, Shape: "component", Color: color})
	}
	dps, vpcDP := drawDatapaths(g, v)
	for _, h := range list[sbdb.Hub](v) {
		if d := vpcDP[h.Vpc]; d != nil {
			for _, c := range h.Chassis {
				g.Connect(picture.Edge{From: "dp:" + d.Name, To: "chassis:" + c, Label: "hub", Style: "bold", Color: "blue"})
			}
		}
	}
	for _, pb := range list[sbdb.PortBinding](v) {
		id := "port:" + pb.LogicalPort
		node := picture.Node{ID: id, Label: fmt.Sprintf("port %s\n%s %s", pb.LogicalPort, pb.MAC, strings.Join(pb.IPs, " ")), Shape: "ellipse"}
		if pb.Up == nil || !*pb.Up {
			node.Style = "dashed"
		}
		if pb.Chassis != nil {
			g.Cluster("chassis:"+*pb.Chassis, "chassis "+*pb.Chassis).Add(node)
		} else {
			g.Add(node)
		}
		if d := dps[pb.Datapath]; d != nil {
			g.Connect(picture.Edge{From: "dp:" + d.Name, To: id})
		}
	}
	if runtime {
		for _, l := range list[sbdb.LearnedBinding](v) {
			if !l.Accepted {
				continue
			}
			id := fmt.Sprintf("learned:%d:%s", l.Vpc, l.IP)
			g.Add(picture.Node{ID: id, Label: fmt.Sprintf("learned %s\n%s (%s)", l.IP, l.MAC, l.Kind), Shape: "note"})
			g.Connect(picture.Edge{From: id, To: "chassis:" + l.Chassis, Style: "dotted", Label: l.LogicalPort})
		}
	}
	pic, err := picture.Render(g, format)
	if err != nil {
		return err
	}
	out.Add(cmdline.PartFunc(func(w io.Writer, _ *cmdline.Output) error {
		_, err := io.WriteString(w, pic)
		return err
	}))
	return nil
}

// drawDatapaths draws the VPC and vxnet datapaths, each vxnet joined to
// its VPC, and returns them by UUID and the VPCs by tunnel key.
func drawDatapaths(g *picture.Graph, v *view) (map[string]*sbdb.Datapath, map[int]*sbdb.Datapath) {
	dps := map[string]*sbdb.Datapath{}
	vpcDP := map[int]*sbdb.Datapath{}
	for _, d := range list[sbdb.Datapath](v) {
		dps[d.UUID] = d
		if d.Type == pipeline.DPVPC {
			vpcDP[d.TunnelKey] = d
		}
	}
	dpIDs := make([]string, 0, len(dps))
	for u := range dps {
		dpIDs = append(dpIDs, u)
	}
	sort.Slice(dpIDs, func(i, j int) bool { return dps[dpIDs[i]].Name < dps[dpIDs[j]].Name })
	for _, u := range dpIDs {
		d := dps[u]
		shape, label := "box3d", fmt.Sprintf("%s %s\nkey %d", d.Type, d.Name, d.TunnelKey)
		if d.Cidr != nil {
			label += "\n" + *d.Cidr
		}
		if d.Type == pipeline.DPVPC {
			shape = "box"
		} else if p := vpcDP[d.Vpc]; p != nil {
			g.Connect(picture.Edge{From: "dp:" + p.Name, To: "dp:" + d.Name})
		}
		g.Add(picture.Node{ID: "dp:" + d.Name, Label: label, Shape: shape})
	}
	return dps, vpcDP
}
