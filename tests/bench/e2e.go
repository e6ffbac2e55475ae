package bench

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/courier-sdn/courier/dataplane"
	"github.com/courier-sdn/courier/internal/lab"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema"
	"github.com/courier-sdn/courier/schema/nbdb"
	"github.com/courier-sdn/courier/schema/sbdb"
	"github.com/courier-sdn/courier/tools/sandbox"
)

// ProgrammingResult is the end-to-end programming latency: from a port's
// NB commit to the first ping answered by its VM from another host.
type ProgrammingResult struct {
	PresentPorts int `json:"present_ports"`
	Samples      int `json:"samples"`
	// FirstOnHost is the first port of the VPC on the target host,
	// which opens the host's monitor of the VPC; the samples follow it.
	FirstOnHost float64 `json:"first_port_on_host_ms"`
	Latency     Latency `json:"latency_ms"`
	// Where the time goes, from the same commit, as a southbound
	// monitor sees it: the binding written by northd, then marked up by
	// the host once its data plane is programmed.
	ToBinding Latency `json:"to_binding_ms"`
	ToUp      Latency `json:"to_up_ms"`
	// Learning is the sender's learning latency afterwards: its learned
	// paths to the new ports are dropped, then each is pinged once.
	Learning LearnStat `json:"learning"`
	// Idle and During are the hub (hv1), sender (hv3) and target (hv4)
	// hostds' load, for 5 s before and during the samples.
	Idle   []HostLoad `json:"idle"`
	During []HostLoad `json:"during"`
}

// LearnStat summarizes the kernel's learning-latency histogram (first
// packet to an unknown destination until the direct entry is installed).
// The histogram's buckets are powers of two, so the percentiles are
// upper bounds.
type LearnStat struct {
	Samples  uint64  `json:"samples"`
	P50MaxUs float64 `json:"p50_at_most_us"`
	P99MaxUs float64 `json:"p99_at_most_us"`
}

func learnStat(hist []uint64) LearnStat {
	var total uint64
	for _, n := range hist {
		total += n
	}
	st := LearnStat{Samples: total}
	if total == 0 {
		return st
	}
	at := func(q float64) float64 {
		var cum uint64
		for i, n := range hist {
			cum += n
			if float64(cum) >= q*float64(total) {
				return float64(uint64(2) << i) // bucket i ends at 2^(i+1) µs
			}
		}
		return float64(uint64(2) << (len(hist) - 1))
	}
	st.P50MaxUs, st.P99MaxUs = at(0.50), at(0.99)
	return st
}

// benchSandbox starts a sandbox of its own (run directory and namespace
// prefix unique to this process) with a northbound session.
func benchSandbox(ctx context.Context, env Env, tag string, hosts, hubs int) (*sandbox.Sandbox, *ops.Session, func(), error) {
	return benchSandboxWith(ctx, env, tag, sandbox.Options{Hosts: hosts, Hubs: hubs})
}

// benchSandboxWith is benchSandbox with more of the sandbox's options
// (gateways); the run directory, prefix, underlay and logging are its.
func benchSandboxWith(ctx context.Context, env Env, tag string, o sandbox.Options) (*sandbox.Sandbox, *ops.Session, func(), error) {
	dir, err := os.MkdirTemp(env.TmpDir, "courier-bench-"+tag)
	if err != nil {
		return nil, nil, nil, err
	}
	o.RunDir, o.Prefix, o.BinDir, o.Log = dir, fmt.Sprintf("%s%d-", tag, os.Getpid()%10000), env.BinDir, env.Log
	o.Underlay = netip.MustParsePrefix("192.168.96.0/22")
	// Dozens of hostds share two CPUs with the databases: a late
	// heartbeat must not move hubs in the middle of a measurement.
	o.DeadAfter = time.Minute
	sb, err := sandbox.Start(ctx, o)
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, nil, err
	}
	nbM, _ := nbdb.FullDatabaseModel()
	nbS, err := ops.Open(ctx, nbM, ops.SessionOptions{Remotes: []string{sb.NB()},
		Monitor: []client.MonitorOption{client.WithTable(&nbdb.NBGlobal{})}})
	if err != nil {
		sb.Stop()
		os.RemoveAll(dir)
		return nil, nil, nil, err
	}
	return sb, nbS, func() {
		nbS.Close()
		if os.Getenv("COURIER_BENCH_KEEP") != "" {
			env.Log.Warn("COURIER_BENCH_KEEP is set: leaving the sandbox running", "run_dir", dir,
				"stop", "courier-sandbox --run-dir "+dir+" stop")
			return
		}
		sb.Stop()
		os.RemoveAll(dir)
	}, nil
}

// presentPorts declares the topology's ports, requested on boundOn if
// set, which, if it is not one of the hosts, is made a chassis that runs
// nothing (with a second one, boundOn+"2", for churn), with a tunnel
// address: the hubs hold the ports there, no host serves them.
func presentPorts(ctx context.Context, sb *sandbox.Sandbox, nbS *ops.Session, present int, boundOn string) error {
	var tweak func(int, ovsdb.Row)
	if boundOn != "" && !slices.Contains([]string{"hv1", "hv2", "hv3", "hv4"}, boundOn) {
		ghost := []ovsdb.Operation{{Op: "insert", Table: "Chassis", Row: ovsdb.Row{"name": boundOn, "hostname": boundOn, "encap_ip": "192.168.99.99"}},
			{Op: "insert", Table: "Chassis", Row: ovsdb.Row{"name": boundOn + "2", "hostname": boundOn + "2", "encap_ip": "192.168.99.98"}}}
		if err := rawTransactDB(ctx, sb.SB(), "Courier_Southbound", ghost); err != nil {
			return fmt.Errorf("chassis %s: %w", boundOn, err)
		}
	}
	if boundOn != "" {
		tweak = func(_ int, row ovsdb.Row) { row["requested_chassis"] = boundOn }
	}
	res, err := ops.Transact(ctx, nbS, topology(present, tweak)...)
	if err != nil {
		return fmt.Errorf("bulk NB transaction: %w", err)
	}
	return waitSbCfg(ctx, nbS, cfgOf(res), 5*time.Minute)
}

// The programming benchmark's sender and new ports are in vxnets of their
// own, after the topology's 253.
const srcVxnet, dstVxnet = 253, 254

// extraVxnets adds vxnets x<i> (benchCIDR(i)) to the benchmark's VPC.
func extraVxnets(vxs ...int) []ovsdb.Operation {
	var txn []ovsdb.Operation
	var refs []any
	for _, i := range vxs {
		name := fmt.Sprintf("nx%d", i)
		txn = append(txn, ovsdb.Operation{Op: "insert", Table: "Vxnet", UUIDName: name,
			Row: ovsdb.Row{"name": fmt.Sprintf("x%d", i), "cidr": benchCIDR(i).String()}})
		refs = append(refs, ovsdb.UUID{GoUUID: name})
	}
	return append(txn, ovsdb.Operation{Op: "mutate", Table: "VPC", Where: []ovsdb.Condition{{Column: "name", Function: "==", Value: "bench"}},
		Mutations: []ovsdb.Mutation{{Column: "vxnets", Mutator: "insert", Value: ovsdb.OvsSet{GoSet: refs}}}})
}

// addPort declares one port in vxnet x<vx> of the benchmark topology.
func addPort(name, mac string, ip netip.Addr, vx int, chassis string) []ovsdb.Operation {
	row := ovsdb.Row{"name": name, "mac": mac, "ips": ip.String(), "mac_key": schema.NewScope(), "ip_key": schema.NewScope()}
	if chassis != "" {
		row["requested_chassis"] = chassis
	}
	return []ovsdb.Operation{
		{Op: "insert", Table: "Port", UUIDName: "np", Row: row},
		{Op: "mutate", Table: "Vxnet", Where: []ovsdb.Condition{{Column: "name", Function: "==", Value: fmt.Sprintf("x%d", vx)}},
			Mutations: []ovsdb.Mutation{{Column: "ports", Mutator: "insert", Value: ovsdb.OvsSet{GoSet: []any{ovsdb.UUID{GoUUID: "np"}}}}}},
	}
}

// Programming measures end-to-end programming latency. Four hosts, the
// first two hubs; present ports are declared (and not bound) first. The
// sender is a VM on hv3 in vxnet x253; each sample is a new port in vxnet
// x254 whose VM already runs on hv4 (its interface waits for the port, as
// when an orchestrator boots the VM and declares its port together).
// A ping from the sender to the new address runs every 2 ms from before
// the commit; the sample is the time from the commit's reply to the first
// echo reply. Crossing vxnets, the path is the one Courier promises: the
// sender's DVR routes, the first packets go through a hub, the reply
// comes back the same way.
//
// With boundOn set, the present ports are requested on that chassis (no
// VM runs them), so that the hubs hold every one of them in their
// kernel: what a new port costs a hub of a big VPC. A name that is not
// one of the sandbox's hosts is a chassis of its own, with a tunnel
// address and no hostd. The hostds' CPU is read, idle before and during
// the samples. (Churn while measuring is the hostscale section's.)
func Programming(ctx context.Context, env Env, present, samples int, boundOn string) (*ProgrammingResult, error) {
	if samples+1 > maxSamples {
		return nil, fmt.Errorf("at most %d samples", maxSamples-1)
	}
	sb, nbS, done, err := benchSandbox(ctx, env, "bp", 4, 2)
	if err != nil {
		return nil, err
	}
	defer done()
	if err := presentPorts(ctx, sb, nbS, present, boundOn); err != nil {
		return nil, err
	}
	sm, err := newSampler(ctx, env, sb, nbS)
	if err != nil {
		return nil, err
	}
	defer sm.stop()
	// The first port of a VPC on a host also opens the host's monitor
	// of the VPC and programs its vxnets and routes: a one-time cost per
	// host and VPC, measured by the first sample and reported apart.
	first, err := sm.take(ctx, 1)
	if err != nil {
		return nil, err
	}
	r := &ProgrammingResult{PresentPorts: present, Samples: samples, FirstOnHost: ms(first.lat[0])}
	idle := newCPUMeter(sb, "hv1", "hv3", "hv4")
	time.Sleep(5 * time.Second)
	r.Idle = idle.read()
	during := newCPUMeter(sb, "hv1", "hv3", "hv4")
	s, err := sm.take(ctx, samples)
	if err != nil {
		return nil, err
	}
	r.During = during.read()
	r.Latency, r.ToBinding, r.ToUp = Summarize(s.lat), Summarize(s.toPB), Summarize(s.toUp)
	r.Learning, err = relearn(sb, "hv3", "src", sm.next)
	return r, err
}

// maxSamples bounds the new ports a sandbox can measure: they take
// 10.0.254.10 and up.
const maxSamples = 240

// sampleIP is sample i's address (in vxnet x254).
func sampleIP(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 0, dstVxnet, byte(10 + i)}) }

// sampler measures new ports from their NB commit: to the binding in SB,
// to the binding up, and to the first echo reply from the port's VM on
// hv4, pinged from a VM on hv3 in another vxnet.
type sampler struct {
	env   Env
	sb    *sandbox.Sandbox
	nbS   *ops.Session
	watch *bindingWatch
	next  int // the next sample's index
}

// samples are what sampler.take measured.
type samples struct{ lat, toPB, toUp []time.Duration }

// newSampler adds the vxnets x253 (the sender's) and x254 (the new
// ports'), beside the present ports' full /24s, and the sender.
func newSampler(ctx context.Context, env Env, sb *sandbox.Sandbox, nbS *ops.Session) (*sampler, error) {
	if _, err := ops.Transact(ctx, nbS, extraVxnets(srcVxnet, dstVxnet)...); err != nil {
		return nil, err
	}
	src := netip.AddrFrom4([4]byte{10, 0, srcVxnet, 250})
	if _, err := ops.Transact(ctx, nbS, addPort("src", "02:ee:00:00:ff:01", src, srcVxnet, "hv3")...); err != nil {
		return nil, err
	}
	if err := sb.AddVM(ctx, "hv3", "src"); err != nil {
		return nil, err
	}
	watch, err := watchBindings(ctx, sb.SB())
	if err != nil {
		return nil, err
	}
	return &sampler{env: env, sb: sb, nbS: nbS, watch: watch}, nil
}

func (sm *sampler) stop() { sm.watch.stop() }

// take measures n new ports, one after the other.
func (sm *sampler) take(ctx context.Context, n int) (*samples, error) {
	if sm.next+n > maxSamples {
		return nil, fmt.Errorf("%d samples asked, %d left", n, maxSamples-sm.next)
	}
	gw := benchCIDR(dstVxnet).Addr().Next()
	out := &samples{}
	for ; n > 0; n-- {
		i := sm.next
		sm.next++
		name, ip := fmt.Sprintf("t%d", i), sampleIP(i)
		mac := fmt.Sprintf("02:ee:00:00:01:%02x", i)
		hw, _ := net.ParseMAC(mac)
		if err := sm.sb.AddVMAt("hv4", name, hw, netip.PrefixFrom(ip, 24), gw); err != nil {
			return nil, err
		}
		var t0 time.Time
		d, err := firstReply(ctx, sm.sb.VMNS("src"), ip, func() (time.Time, error) {
			var err error
			t0, err = commit(ctx, sm.nbS, addPort(name, mac, ip, dstVxnet, "hv4"))
			return t0, err
		})
		if err != nil {
			return nil, fmt.Errorf("sample %d: %w", i, err)
		}
		pb, up := sm.watch.when(name, 5*time.Second)
		if up.IsZero() {
			return nil, fmt.Errorf("sample %d: the monitor never saw %s up", i, name)
		}
		out.lat, out.toPB, out.toUp = append(out.lat, d), append(out.toPB, pb.Sub(t0)), append(out.toUp, up.Sub(t0))
		sm.env.Log.Debug("programming latency", "port", name, "reply", d, "binding", pb.Sub(t0), "up", up.Sub(t0))
	}
	return out, nil
}

// relearn measures learning latency on a quiet sandbox: host drops every
// path it learned, then VM from sends one ping to each of the n new ports
// in turn, and the kernel's histogram tells how long each first packet
// took to turn into a direct entry.
func relearn(sb *sandbox.Sandbox, host, from string, n int) (LearnStat, error) {
	dp, err := dataplane.OpenPinned(sb.State.PinRoot, host)
	if err != nil {
		return LearnStat{}, err
	}
	defer dp.ClosePinned()
	before, err := dp.LearnLatency()
	if err != nil {
		return LearnStat{}, err
	}
	if _, err := dataplane.FlushPinnedCache(sb.State.PinRoot, host, netip.Addr{}); err != nil {
		return LearnStat{}, err
	}
	for i := 0; i < n; i++ {
		dst := sampleIP(i).String()
		if out, err := lab.Exec(sb.VMNS(from), "ping", "-c", "1", "-W", "1", dst); err != nil {
			return LearnStat{}, fmt.Errorf("ping %s after forgetting it: %v\n%s", dst, err, out)
		}
	}
	after, err := dp.LearnLatency()
	if err != nil {
		return LearnStat{}, err
	}
	for i := range after {
		after[i] -= before[i]
	}
	st := learnStat(after)
	if st.Samples < uint64(n) {
		return st, fmt.Errorf("%d of %d destinations relearned", st.Samples, n)
	}
	return st, nil
}

// bindingWatch records when a southbound monitor first sees each port's
// binding, and first sees it up.
type bindingWatch struct {
	s       *ops.Session
	mu      sync.Mutex
	seen    map[string]time.Time
	up      map[string]time.Time
	changed chan struct{}
}

func watchBindings(ctx context.Context, remote string) (*bindingWatch, error) {
	w := &bindingWatch{seen: map[string]time.Time{}, up: map[string]time.Time{}, changed: make(chan struct{}, 1)}
	t := ops.NewTracker()
	m, _ := sbdb.FullDatabaseModel()
	pb := &sbdb.PortBinding{}
	// Every binding's name and state: 256,000 rows in the host scale
	// run, more than Open's default 10 s on a busy machine.
	s, err := ops.Open(ctx, m, ops.SessionOptions{Remotes: []string{remote}, Tracker: t, ConnectTimeout: 2 * time.Minute,
		Monitor: []client.MonitorOption{client.WithTable(pb, &pb.LogicalPort, &pb.Up)}})
	if err != nil {
		return nil, err
	}
	w.s = s
	go func() {
		for {
			select {
			case <-s.Done():
				return
			case <-t.Notify():
			}
			now := time.Now()
			ch := t.Drain()
			w.mu.Lock()
			for _, c := range ch.Table(sbdb.PortBindingTable) {
				if c.New == nil {
					continue
				}
				b := c.New.(*sbdb.PortBinding)
				if _, ok := w.seen[b.LogicalPort]; !ok {
					w.seen[b.LogicalPort] = now
				}
				if _, ok := w.up[b.LogicalPort]; !ok && b.Up != nil && *b.Up {
					w.up[b.LogicalPort] = now
				}
			}
			w.mu.Unlock()
			select {
			case w.changed <- struct{}{}:
			default:
			}
		}
	}()
	return w, nil
}

// when returns when port's binding appeared and came up, waiting up to
// timeout for the latter.
func (w *bindingWatch) when(port string, timeout time.Duration) (seen, up time.Time) {
	deadline := time.After(timeout)
	for {
		w.mu.Lock()
		seen, up = w.seen[port], w.up[port]
		w.mu.Unlock()
		if !up.IsZero() {
			return seen, up
		}
		select {
		case <-w.changed:
		case <-deadline:
			return seen, up
		}
	}
}

func (w *bindingWatch) stop() { w.s.Close() }

// firstReply starts a 2 ms ping from namespace ns to dst, runs action
// (which returns the instant to measure from), and returns the time from
// that instant to the first echo reply, by the reply's kernel timestamp.
func firstReply(ctx context.Context, ns string, dst netip.Addr, action func() (time.Time, error)) (time.Duration, error) {
	replies, stop, err := pingReplies(ctx, ns, dst)
	if err != nil {
		return 0, err
	}
	defer stop()
	// Give ping time to start and send a few unanswered probes.
	time.Sleep(50 * time.Millisecond)
	t0, err := action()
	if err != nil {
		return 0, err
	}
	if at, ok := <-replies; ok {
		return at.Sub(t0), nil
	}
	return 0, fmt.Errorf("no echo reply from %s within 20 s", dst)
}

func (p *ProgrammingResult) markdown(b *strings.Builder) {
	fmt.Fprintf(b, "## End-to-end programming latency (%d ports present, %d new ports)\n\n", p.PresentPorts, p.Samples)
	fmt.Fprintf(b, "From `port-add` committed in NB to the first echo reply from the new VM, pinged every 2 ms from a VM on another host in another vxnet (through a hub until learned).\n\n")
	fmt.Fprintf(b, "| from the NB commit to | p50 ms | p90 ms | p99 ms | max ms |\n|---|---|---|---|---|\n")
	for _, r := range []struct {
		name string
		l    Latency
	}{{"the binding in SB (northd)", p.ToBinding}, {"the binding up in SB (hostd programmed it)", p.ToUp}, {"**the first echo reply**", p.Latency}} {
		fmt.Fprintf(b, "| %s | %.1f | %.1f | %.1f | %.1f |\n", r.name, r.l.P50, r.l.P90, r.l.P99, r.l.Max)
	}
	fmt.Fprintf(b, "\nThe first port of the VPC on the target host (which opens the host's monitor of the VPC and programs its %s) is not among the samples: %.1f ms.\n",
		"vxnets and routes", p.FirstOnHost)
	fmt.Fprintf(b, "Target: first echo reply p99 under 500 ms (#20: 150 ms at 64,000 ports and 100 changes a second).\n\n")
	fmt.Fprintf(b, "| hostd | idle CPU %% of a core | CPU during the samples | peak RSS MiB |\n|---|---|---|---|\n")
	for i, h := range p.During {
		var idle float64
		if i < len(p.Idle) {
			idle = p.Idle[i].CPUPct
		}
		fmt.Fprintf(b, "| %s | %.1f | %.1f | %.0f |\n", h.Host, idle, h.CPUPct, h.PeakRSSMiB)
	}
	fmt.Fprintf(b, "\n")
	fmt.Fprintf(b, "Learning latency in the same sandbox, first packet of a new flow to the direct entry installed, %d samples (the sender forgot its learned paths, then pinged each new port once; kernel histogram with power-of-two buckets, so upper bounds): p50 ≤ %.0f µs, p99 ≤ %.0f µs (target: p99 under 1 ms).\n\n",
		p.Learning.Samples, p.Learning.P50MaxUs, p.Learning.P99MaxUs)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
