package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/courier-sdn/courier/tools/nbctl"
)

// Addresses on request (#13): a port added with no addresses, among 200
// others added in random order, fixed and dynamic mixed, gets a MAC and
// an IP nobody else holds; its VM, started with nothing but that MAC,
// gets the IP by DHCP and reaches a VM in another vxnet.

// portRow is a port as port-list -f json prints it: a dynamic MAC or IP
// appears as what northd allocated.
type portRow struct {
	Name   string   `json:"NAME"`
	Vxnet  string   `json:"VXNET"`
	MAC    string   `json:"MAC"`
	IPs    []string `json:"IPS"`
	Status string   `json:"STATUS"`
}

func (e *env) portList() map[string]portRow {
	e.t.Helper()
	var out bytes.Buffer
	o := nbctl.Options{DB: e.s.NB(), Wait: "none", Format: "json", Timeout: 20 * time.Second}
	if err := nbctl.Run(context.Background(), o, []string{"port-list"}, &out); err != nil {
		e.t.Fatal(err)
	}
	var rows []portRow
	if err := json.Unmarshal(out.Bytes(), &rows); err != nil {
		e.t.Fatalf("port-list -f json: %v\n%s", err, out.String())
	}
	m := map[string]portRow{}
	for _, r := range rows {
		m[r.Name] = r
	}
	return m
}

func TestDynamicPortAmong200GetsItsAddressByDHCP(t *testing.T) {
	e := start(t, 2, 1)
	e.nb("vpc-add", "blue", "--", "vxnet-add", "blue", "web", "10.0.1.0/24", "--", "vxnet-add", "blue", "db", "10.0.2.0/24",
		"--", "set", "Vxnet", "web", "options:exclude_ips=10.0.1.2..10.0.1.20", "options:dns_servers=192.0.2.53")
	e.nb("port-add", "db", "srv", "02:00:00:00:02:0a", "10.0.2.10")
	e.vm("hv2", "srv")

	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewSource(seed))
	var free []int
	for h := 21; h <= 254; h++ {
		free = append(free, h)
	}
	r.Shuffle(len(free), func(i, j int) { free[i], free[j] = free[j], free[i] })
	var cmds [][]string
	for i := 0; i < 200; i++ {
		name := fmt.Sprintf("w%03d", i)
		switch i % 4 {
		case 0: // fixed, at a random address
			cmds = append(cmds, []string{"port-add", "web", name, fmt.Sprintf("02:00:00:00:01:%02x", i), fmt.Sprintf("10.0.1.%d", free[i])})
		case 1: // fixed MAC, dynamic IP
			cmds = append(cmds, []string{"port-add", "web", name, fmt.Sprintf("02:00:00:00:01:%02x", i), "dynamic"})
		default:
			cmds = append(cmds, []string{"port-add", "web", name})
		}
	}
	r.Shuffle(len(cmds), func(i, j int) { cmds[i], cmds[j] = cmds[j], cmds[i] })
	for len(cmds) > 0 {
		k := min(len(cmds), 1+r.Intn(40))
		var args []string
		for i, c := range cmds[:k] {
			if i > 0 {
				args = append(args, "--")
			}
			args = append(args, c...)
		}
		cmds = cmds[k:]
		if err := e.nbErr("sb", args...); err != nil {
			t.Fatal(err)
		}
	}
	e.nb("port-add", "web", "dyn")

	ports := e.portList()
	if len(ports) != 202 {
		t.Fatalf("%d ports listed, want 202", len(ports))
	}
	macs, ips := map[string]string{}, map[string]string{}
	for name, p := range ports {
		if strings.Contains(p.Status, "error") || strings.Contains(p.Status, "refused") {
			t.Errorf("port %s: status %q", name, p.Status)
		}
		if p.Vxnet != "web" {
			continue
		}
		if len(p.IPs) != 1 || p.IPs[0] == "dynamic" || p.MAC == "dynamic" {
			t.Fatalf("port %s: MAC %s IPs %v, want allocated addresses", name, p.MAC, p.IPs)
		}
		a := netip.MustParseAddr(p.IPs[0])
		if h := a.As4()[3]; h <= 20 || h == 255 {
			t.Errorf("port %s got %s: the gateway, an excluded or the broadcast address", name, a)
		}
		if o, ok := macs[p.MAC]; ok {
			t.Errorf("ports %s and %s share MAC %s", name, o, p.MAC)
		}
		if o, ok := ips[p.IPs[0]]; ok {
			t.Errorf("ports %s and %s share IP %s", name, o, p.IPs[0])
		}
		macs[p.MAC], ips[p.IPs[0]] = name, name
	}
	dyn := ports["dyn"]
	t.Logf("dyn: %s %s", dyn.MAC, dyn.IPs[0])

	e.dhcpVM("hv1", "dyn", "udhcpc")
	e.checkLease("dyn", dyn.IPs[0]+"/24", "10.0.1.1")
	if got := strings.ToLower(e.vmOut("dyn", "cat", "/sys/class/net/eth0/address")); strings.TrimSpace(got) != dyn.MAC {
		t.Errorf("dyn's VM has MAC %s, northd allocated %s", got, dyn.MAC)
	}
	e.mustPing("dyn", "10.0.2.10")

	// A full vxnet refuses a dynamic port, and vm-add says why.
	e.nb("vxnet-add", "blue", "tiny", "10.0.3.0/29", "--", "set", "Vxnet", "tiny", "options:exclude_ips=10.0.3.2..10.0.3.6")
	e.nb("port-add", "tiny", "t1")
	if st := e.portList()["t1"].Status; !strings.Contains(st, "no free IP left in vxnet tiny") {
		t.Errorf("a dynamic port in a full vxnet: status %q, want northd's refusal", st)
	}
	if err := e.s.AddVM(context.Background(), "hv1", "t1"); err == nil || !strings.Contains(err.Error(), "no free IP left in vxnet tiny") {
		t.Errorf("vm-add of a refused dynamic port: %v", err)
	}
}
