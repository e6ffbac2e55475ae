package nbctl

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"

	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema/sbdb"
	"github.com/courier-sdn/courier/tools/picture"
)

// show --runtime draws, beside the intent, what the southbound says of
// the running world: the chassis serving as each VPC's hubs and what
// hosts learned from traffic. (Where each port runs is already in the
// northbound, written by southd.)

// south is what show --runtime reads from the southbound.
type south struct {
	hubs    map[int][]string // VPC tunnel key -> chassis
	learned []*sbdb.LearnedBinding
	dead    map[string]bool
}

func readSouth(ctx context.Context, remote string, tlsc *tls.Config) (*south, error) {
	remotes, err := ops.ParseRemotes(remote)
	if err != nil {
		return nil, fmt.Errorf("--runtime reads the southbound: %w", err)
	}
	m, err := sbdb.FullDatabaseModel()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	sess, err := ops.Open(ctx, m, ops.SessionOptions{Remotes: remotes, TLS: tlsc, Logger: slog.Default(), Monitor: []client.MonitorOption{
		client.WithTable(&sbdb.Hub{}), client.WithTable(&sbdb.LearnedBinding{}), client.WithTable(&sbdb.ChassisPrivate{})}})
	if err != nil {
		return nil, fmt.Errorf("--runtime reads the southbound (--sb, $COURIER_SB_DB): %w", err)
	}
	defer sess.Close()
	s := &south{hubs: map[int][]string{}, dead: map[string]bool{}}
	for _, h := range ops.Rows[sbdb.Hub](sess) {
		s.hubs[h.Vpc] = h.Chassis
	}
	for _, l := range ops.Rows[sbdb.LearnedBinding](sess) {
		if l.Accepted {
			s.learned = append(s.learned, l)
		}
	}
	for _, p := range ops.Rows[sbdb.ChassisPrivate](sess) {
		s.dead[p.Name] = p.Alive != nil && !*p.Alive
	}
	return s, nil
}

// drawSouth adds hubs and learned bindings to show's graph.
func drawSouth(g *picture.Graph, vpcs []showVPC, s *south) {
	byKey := map[int]string{}
	for _, v := range vpcs {
		if k, ok := v.TunnelKey.(int); ok {
			byKey[k] = v.Name
		}
	}
	seen := map[string]bool{}
	chassis := func(c string) string {
		id := "chassis:" + c
		if !seen[c] {
			seen[c] = true
			color := ""
			if s.dead[c] {
				color = "red"
			}
			g.Add(picture.Node{ID: id, Label: "chassis " + c, Shape: "component", Color: color})
		}
		return id
	}
	for key, hubs := range s.hubs {
		name := byKey[key]
		if name == "" {
			continue
		}
		for _, c := range hubs {
			g.Connect(picture.Edge{From: "router:" + name, To: chassis(c), Label: "hub", Style: "bold", Color: "blue"})
		}
	}
	for _, l := range s.learned {
		name := byKey[l.Vpc]
		if name == "" {
			continue
		}
		id := "learned:" + strconv.Itoa(l.Vpc) + ":" + l.IP
		g.Add(picture.Node{ID: id, Label: fmt.Sprintf("learned %s\n%s (%s)", l.IP, l.MAC, l.Kind), Shape: "note"})
		g.Connect(picture.Edge{From: id, To: chassis(l.Chassis), Style: "dotted"})
		g.Connect(picture.Edge{From: "router:" + name, To: id, Style: "dotted"})
	}
}
