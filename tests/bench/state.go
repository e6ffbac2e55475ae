package bench

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/dataplane"
	"github.com/courier-sdn/courier/internal/lab"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/ops/jsonrpc"
	"github.com/courier-sdn/courier/tools/sandbox"
)

// StateResult is what each host holds in a big VPC.
type StateResult struct {
	VPCPorts     int `json:"vpc_ports"`
	Hosts        int `json:"hosts"`
	Hubs         int `json:"hubs"`
	LocalPorts   int `json:"local_ports_per_host"`
	PeersPerPort int `json:"peers_per_port"`
	// Per ordinary host (not hubs): min / median / max.
	ExpectedPeers Stat `json:"expected_peers"`
	CacheEntries  Stat `json:"cache_entries"`
	// ExactHosts is how many hosts' caches hold exactly their peers.
	ExactHosts   int             `json:"exact_hosts"`
	Monitored    map[string]Stat `json:"monitored_rows"` // by table
	MonitoredPct float64         `json:"max_monitored_bindings_pct_of_vpc"`
	// Hubs hold the VPC's bindings by design.
	HubMonitoredBindings Stat      `json:"hub_monitored_bindings"`
	Learning             LearnStat `json:"learning"`
	SetupSeconds         float64   `json:"setup_seconds"`
}

// HostState measures per-host state: a VPC of vpcPorts ports (the
// benchmark topology), of which hosts*local are VMs on as many real
// hypervisors (hostd with its eBPF data plane, each in a namespace), plus
// two hubs. Every VM exchanges one UDP datagram each way with peers VMs
// on other hosts (a random peers-regular graph), so a host's active peers
// are the distinct peers of its VMs. Each host's cache is then compared
// with that set, and its hostd's monitored rows are read from its metrics.
func HostState(ctx context.Context, env Env, vpcPorts, hosts, local, peers int) (*StateResult, error) {
	start := time.Now()
	const hubs = 2
	sb, nbS, done, err := benchSandbox(ctx, env, "bs", hosts+hubs, hubs)
	if err != nil {
		return nil, err
	}
	defer done()
	vms := hosts * local
	if vms > vpcPorts {
		return nil, fmt.Errorf("%d VMs do not fit in %d ports", vms, vpcPorts)
	}
	hostOf := func(p int) string { return "hv" + strconv.Itoa(hubs+1+p/local) }
	if err := loadStateVPC(ctx, env, sb, nbS, vpcPorts, vms, hostOf); err != nil {
		return nil, err
	}
	r := &StateResult{VPCPorts: vpcPorts, Hosts: hosts, Hubs: hubs, LocalPorts: local, PeersPerPort: peers,
		Monitored: map[string]Stat{}, SetupSeconds: time.Since(start).Seconds()}

	edges := peerGraph(vms, peers, func(a, b int) bool { return a/local == b/local }, rand.New(rand.NewPCG(1, 2)))
	expect := map[string]map[netip.Addr]bool{}
	for _, e := range edges {
		for _, x := range [][2]int{{e[0], e[1]}, {e[1], e[0]}} {
			h := hostOf(x[0])
			if expect[h] == nil {
				expect[h] = map[netip.Addr]bool{}
			}
			expect[h][benchIP(x[1])] = true
		}
	}
	env.Log.Info("state benchmark: traffic", "flows", len(edges))
	if err := sendFlows(sb, edges); err != nil {
		return nil, err
	}
	time.Sleep(2 * time.Second)
	return r, collectHostState(sb, r, expect)
}

// loadStateVPC declares the VPC's ports, the first vms of them requested
// on their hosts, and starts those VMs; it returns once they are bound
// and the hubs hold them.
func loadStateVPC(ctx context.Context, env Env, sb *sandbox.Sandbox, nbS *ops.Session, vpcPorts, vms int, hostOf func(int) string) error {
	env.Log.Info("state benchmark: loading the VPC", "ports", vpcPorts)
	res, err := ops.Transact(ctx, nbS, topology(vpcPorts, func(p int, row ovsdb.Row) {
		if p < vms {
			row["requested_chassis"] = hostOf(p)
		}
	})...)
	if err != nil {
		return fmt.Errorf("bulk NB transaction: %w", err)
	}
	if err := waitSbCfg(ctx, nbS, cfgOf(res), 10*time.Minute); err != nil {
		return err
	}
	env.Log.Info("state benchmark: starting VMs", "vms", vms)
	if err := parallel(4, vms, func(p int) error {
		mac, _ := net.ParseMAC(benchMAC(p))
		return sb.AddVMAt(hostOf(p), fmt.Sprintf("p%d", p), mac, netip.PrefixFrom(benchIP(p), 24), benchCIDR(p%253).Addr().Next())
	}); err != nil {
		return err
	}
	if err := waitBound(ctx, sb, vms, 10*time.Minute); err != nil {
		return err
	}
	// Learning latency is measured from a packet's first miss, so the
	// hubs must already hold the bindings a VM's first packet needs.
	return waitHubs(sb, vms, 5*time.Minute)
}

// sendFlows sends one UDP datagram each way along every edge.
func sendFlows(sb *sandbox.Sandbox, edges [][2]int) error {
	send := func(from, to int) error {
		return lab.Do(sb.VMNS(fmt.Sprintf("p%d", from)), func() error {
			c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: benchIP(to).AsSlice(), Port: 9})
			if err != nil {
				return err
			}
			defer c.Close()
			_, err = c.Write([]byte("courier"))
			return err
		})
	}
	return parallel(1, len(edges), func(i int) error {
		if err := send(edges[i][0], edges[i][1]); err != nil {
			return err
		}
		return send(edges[i][1], edges[i][0])
	})
}

// collectHostState reads what each host holds (monitored rows, learned
// paths, learning latency) into r; expect is each VM host's peers.
func collectHostState(sb *sandbox.Sandbox, r *StateResult, expect map[string]map[netip.Addr]bool) error {
	var expected, cache []float64
	monitored := map[string][]float64{}
	var hubPB []float64
	var hist []uint64
	for _, h := range sb.State.Hosts {
		m, err := scrape(sb.HostNS(h.Name))
		if err != nil {
			return fmt.Errorf("%s metrics: %w", h.Name, err)
		}
		if h.Hub {
			hubPB = append(hubPB, m[`courier_hostd_monitored_rows{table="Port_Binding"}`])
			continue
		}
		for _, t := range []string{"Port_Binding", "Datapath", "Logical_Flow", "Learned_Binding", "Chassis"} {
			monitored[t] = append(monitored[t], m[`courier_hostd_monitored_rows{table="`+t+`"}`])
		}
		dp, err := dataplane.OpenPinned(sb.State.PinRoot, h.Name)
		if err != nil {
			return err
		}
		entries, err := dp.Cache()
		lh, lerr := dp.LearnLatency()
		dp.ClosePinned()
		if err != nil || lerr != nil {
			return fmt.Errorf("%s data plane: %v %v", h.Name, err, lerr)
		}
		if hist == nil {
			hist = make([]uint64, len(lh))
		}
		for i, n := range lh {
			hist[i] += n
		}
		want := expect[h.Name]
		exact := len(entries) == len(want)
		for _, e := range entries {
			exact = exact && want[e.IP]
		}
		if exact {
			r.ExactHosts++
		}
		expected = append(expected, float64(len(want)))
		cache = append(cache, float64(len(entries)))
	}
	r.ExpectedPeers, r.CacheEntries, r.HubMonitoredBindings = stat(expected), stat(cache), stat(hubPB)
	for t, v := range monitored {
		r.Monitored[t] = stat(v)
	}
	r.MonitoredPct = 100 * r.Monitored["Port_Binding"].Max / float64(r.VPCPorts)
	r.Learning = learnStat(hist)
	return nil
}

// peerGraph returns edges of a random graph on n nodes where each node
// has up to k peers and no node peers with one that same() says shares
// its host. It is k rounds of random pairings, skipping pairs that are on
// one host or already peers.
func peerGraph(n, k int, same func(a, b int) bool, rng *rand.Rand) [][2]int {
	seen := map[[2]int]bool{}
	var edges [][2]int
	for round := 0; round < k; round++ {
		perm := rng.Perm(n)
		for i := 0; i+1 < n; i += 2 {
			a, b := perm[i], perm[i+1]
			if a > b {
				a, b = b, a
			}
			if same(a, b) || seen[[2]int{a, b}] {
				continue
			}
			seen[[2]int{a, b}] = true
			edges = append(edges, [2]int{a, b})
		}
	}
	return edges
}

// parallel runs fn(0..n-1) on workers goroutines and returns the first
// error.
func parallel(workers, n int, fn func(i int) error) error {
	var (
		mu    sync.Mutex
		next  int
		first error
		wg    sync.WaitGroup
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				stop := first != nil
				mu.Unlock()
				if stop || i >= n {
					return
				}
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// waitHubs waits until every hub's data plane holds at least n bindings.
func waitHubs(sb *sandbox.Sandbox, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, h := range sb.State.Hosts {
		if !h.Hub {
			continue
		}
		for {
			dp, err := dataplane.OpenPinned(sb.State.PinRoot, h.Name)
			if err != nil {
				return err
			}
			d, err := dp.Dump()
			dp.ClosePinned()
			if err != nil {
				return err
			}
			if d.Bindings >= n {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("hub %s holds %d of %d bindings after %v", h.Name, d.Bindings, n, timeout)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	return nil
}

// waitBound waits until n port bindings are up.
func waitBound(ctx context.Context, sb *sandbox.Sandbox, n int, timeout time.Duration) error {
	conn, err := jsonrpc.Dial(sb.SB(), nil)
	if err != nil {
		return err
	}
	defer conn.Close()
	deadline := time.Now().Add(timeout)
	got := 0
	for time.Now().Before(deadline) {
		var res []struct {
			Count int `json:"count"`
		}
		// A no-op mutate counts the matching rows.
		err := conn.Call(ctx, "transact", []any{"Courier_Southbound", map[string]any{"op": "mutate", "table": "Port_Binding",
			"where": []any{[]any{"up", "==", true}}, "mutations": []any{}}}, &res)
		if err != nil {
			return err
		}
		if got = res[0].Count; got >= n {
			return nil
		}
		time.Sleep(500 * time.Millisecond)
	}
	return fmt.Errorf("%d of %d ports up after %v", got, n, timeout)
}

// scrape reads hostd's metrics from inside its host's namespace (the
// sandbox serves them on 127.0.0.1:9660 there). The socket must be made on
// the namespace's thread, so the request is written by hand rather than
// through http.Client, which dials on goroutines of its own.
func scrape(ns string) (map[string]float64, error) {
	out := map[string]float64{}
	err := lab.Do(ns, func() error {
		c, err := net.DialTimeout("tcp", "127.0.0.1:9660", 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(c, "GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		s := bufio.NewScanner(resp.Body)
		s.Buffer(make([]byte, 1<<20), 1<<20)
		for s.Scan() {
			l := s.Text()
			if strings.HasPrefix(l, "#") {
				continue
			}
			i := strings.LastIndexByte(l, ' ')
			if i < 0 {
				continue
			}
			if v, err := strconv.ParseFloat(l[i+1:], 64); err == nil {
				out[l[:i]] = v
			}
		}
		return s.Err()
	})
	return out, err
}

func (s *StateResult) markdown(b *strings.Builder) {
	fmt.Fprintf(b, "## Per-host state (%d-port VPC, %d hosts with %d VMs each, %d hubs)\n\n", s.VPCPorts, s.Hosts, s.LocalPorts, s.Hubs)
	fmt.Fprintf(b, "Real hostds and eBPF data planes, one namespace per host; each VM exchanged a datagram each way with %d peers on other hosts. Per ordinary host, min / median / max:\n\n", s.PeersPerPort)
	fmt.Fprintf(b, "| | min | median | max |\n|---|---|---|---|\n")
	row := func(name string, st Stat) {
		fmt.Fprintf(b, "| %s | %.0f | %.0f | %.0f |\n", name, st.Min, st.Med, st.Max)
	}
	row("active peers (expected cache)", s.ExpectedPeers)
	row("cache entries", s.CacheEntries)
	tables := make([]string, 0, len(s.Monitored))
	for t := range s.Monitored {
		tables = append(tables, t)
	}
	sort.Strings(tables)
	for _, t := range tables {
		row("monitored "+t+" rows", s.Monitored[t])
	}
	row("hub: monitored Port_Binding rows", s.HubMonitoredBindings)
	fmt.Fprintf(b, "\nHosts whose cache holds exactly their active peers: %d of %d. Most bindings monitored by an ordinary host: %.3f%% of the VPC (target under 2%%).\n",
		s.ExactHosts, s.Hosts, s.MonitoredPct)
	fmt.Fprintf(b, "\nLearning latency over all hosts during the exchange, with %d hostds and their databases on this machine's CPUs (kernel histogram with power-of-two buckets, so upper bounds): %d samples, p50 ≤ %.0f µs, p99 ≤ %.0f µs. Set-up took %.0f s.\n\n",
		s.Hosts+s.Hubs,
		s.Learning.Samples, s.Learning.P50MaxUs, s.Learning.P99MaxUs, s.SetupSeconds)
}
