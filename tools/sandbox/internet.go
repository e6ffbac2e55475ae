package sandbox

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/courier-sdn/courier/internal/lab"
	"github.com/courier-sdn/courier/internal/proc"
	"github.com/courier-sdn/courier/tools/nbctl"
)

// The internet (#15): with --gateways N, chassis gw1..gwN serve the
// external network "internet" (public, 203.0.113.0/24), and a namespace
// <prefix>internet (198.51.100.10, an HTTP server on port 80) reaches it
// through all of them, by a multipath route. EIPs of that network are
// reached from there: courier-sandbox exec internet -- curl 203.0.113.5.
// The network's next hop is the internet namespace's address, so what
// gateways send upstream goes there whatever their own routes say.

// Names and addresses of the sandbox's internet.
const (
	InternetName = "internet"
)

var (
	InternetAddr   = netip.MustParsePrefix("198.51.100.10/24")
	InternetPublic = netip.MustParsePrefix("203.0.113.0/24")
)

// InternetState is what the sandbox records of its internet.
type InternetState struct {
	NS       string            `json:"ns"`
	Addr     string            `json:"addr"`
	Public   string            `json:"public"`
	Gateways map[string]string `json:"gateways"` // name -> uplink address
}

// gatewayNumber places gateway i's underlay address past the hosts'.
func gatewayNumber(i int) int { return 200 + i }

// addGateways creates gw1..gwN, the internet namespace, its HTTP server
// and the external network, then starts the gateways' hostd.
func (s *Sandbox) addGateways(ctx context.Context, n int) error {
	var gws []*lab.Host
	for i := 1; i <= n; i++ {
		name := "gw" + strconv.Itoa(i)
		h, err := s.lab.AddHost(name, gatewayNumber(i))
		if err != nil {
			return err
		}
		gws = append(gws, h)
		s.State.Hosts = append(s.State.Hosts, HostState{Name: name, VTEP: h.VTEP.String(), MAC: h.MAC.String(), Gateway: true})
	}
	in, err := s.lab.AddInternet(InternetAddr, InternetPublic, gws)
	if err != nil {
		return err
	}
	st := &InternetState{NS: in.NS, Addr: InternetAddr.Addr().String(), Public: InternetPublic.String(), Gateways: map[string]string{}}
	for g, a := range in.Uplinks {
		st.Gateways[g] = a.String()
	}
	s.State.Internet = st
	if err := s.save(); err != nil {
		return err
	}
	if err := s.startHTTP(); err != nil {
		return err
	}
	if err := s.addPhys(ctx); err != nil {
		return err
	}
	var out bytes.Buffer
	err = nbctl.Run(ctx, nbctl.Options{DB: s.NB(), Wait: "none", Format: "table", LeaderOnly: true},
		[]string{"--may-exist", "extnet-add", InternetName, InternetPublic.String(), "--kind", "public", "--next-hop", InternetAddr.Addr().String()}, &out)
	if err != nil {
		return fmt.Errorf("external network %s: %w", InternetName, err)
	}
	if err := s.signIdentities(); err != nil {
		return err
	}
	for _, g := range gws {
		if err := s.startRelay(g.Name); err != nil {
			return err
		}
		if err := s.startHostd(g.Name); err != nil {
			return err
		}
	}
	return nil
}

// gatewayArgs are a gateway's hostd flags.
func gatewayArgs() []string {
	return []string{"--role", "gateway", "--gateway-networks", InternetName, "--uplink", lab.UplinkName}
}

func (s *Sandbox) httpPid() string { return filepath.Join(s.RunDir, "internet-http.pid") }

// startHTTP runs busybox's httpd in the internet namespace, serving a
// page that says where it is.
func (s *Sandbox) startHTTP() error {
	dir := filepath.Join(s.RunDir, "internet-www")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("hello from the internet\n"), 0o644); err != nil {
		return err
	}
	bin, err := exec.LookPath("busybox")
	if err != nil {
		return fmt.Errorf("the internet's HTTP server is busybox httpd: %w", err)
	}
	_, err = proc.Start(proc.Spec{Bin: bin, Args: []string{"httpd", "-f", "-p", "80", "-h", dir},
		LogFile: filepath.Join(s.RunDir, "internet-http.log"), PidFile: s.httpPid(),
		Start: func(c *exec.Cmd) error { return lab.Do(s.State.Internet.NS, c.Start) }})
	return err
}

// stopHTTP stops the internet's HTTP server, if it runs.
func (s *Sandbox) stopHTTP() error {
	if s.State.Internet == nil {
		return nil
	}
	return proc.Stop(s.httpPid(), "busybox", 5*time.Second)
}

// InternetNS is the internet's namespace, or "" without one.
func (s *Sandbox) InternetNS() string {
	if s.State.Internet == nil {
		return ""
	}
	return s.State.Internet.NS
}

// printInternet says how to reach the internet, if the sandbox has one.
func (s *Sandbox) printInternet(w io.Writer) {
	in := s.State.Internet
	if in == nil {
		return
	}
	names := make([]string, 0, len(in.Gateways))
	for g := range in.Gateways {
		names = append(names, g)
	}
	sort.Strings(names)
	fmt.Fprintf(w, "internet (%s): %s, HTTP on port 80; external network %s (%s) through gateways", in.NS, in.Addr, InternetName, in.Public)
	for _, g := range names {
		fmt.Fprintf(w, " %s (%s)", g, in.Gateways[g])
	}
	fmt.Fprintf(w, "\n  courier-nbctl eip-add %s 203.0.113.5 --port PORT; courier-sandbox exec internet -- ping 203.0.113.5\n", InternetName)
}
