package testenv

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"

	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// SBSnapshot renders the southbound rows northd owns in a canonical text
// form, with references by name, so two southbounds can be compared.
func SBSnapshot(t testing.TB, remotes ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, _ := sbdb.FullDatabaseModel()
	s, err := ops.Open(ctx, m, ops.SessionOptions{Remotes: remotes, Monitor: []client.MonitorOption{
		client.WithTable(&sbdb.Datapath{}), client.WithTable(&sbdb.PortBinding{}), client.WithTable(&sbdb.LogicalFlow{})}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	dps, _ := ops.List[sbdb.Datapath](ctx, s, nil)
	pbs, _ := ops.List[sbdb.PortBinding](ctx, s, nil)
	lfs, _ := ops.List[sbdb.LogicalFlow](ctx, s, nil)
	name := map[string]string{}
	var lines []string
	str := func(p *string) string {
		if p == nil {
			return "-"
		}
		return *p
	}
	for _, d := range dps {
		name[d.UUID] = d.Name
		lines = append(lines, fmt.Sprintf("dp %s %s key=%d vpc=%d cidr=%s gw=%s mac=%s", d.Name, d.Type, d.TunnelKey, d.Vpc, str(d.Cidr), str(d.GatewayIP), d.GatewayMAC))
	}
	for _, p := range pbs {
		ips, vips := append([]string{}, p.IPs...), append([]string{}, p.VirtualIPs...)
		sort.Strings(ips)
		sort.Strings(vips)
		lines = append(lines, fmt.Sprintf("pb %s dp=%s vpc=%d key=%d mac=%s ips=%v vips=%v sec=%v rc=%s",
			p.LogicalPort, name[p.Datapath], p.Vpc, p.TunnelKey, p.MAC, ips, vips, p.PortSecurity, str(p.RequestedChassis)))
	}
	for _, f := range lfs {
		lines = append(lines, fmt.Sprintf("lf %s vpc=%d %s %d %s -> %s", name[f.Datapath], f.Vpc, f.Stage, f.Priority, f.Match, f.Actions))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}
