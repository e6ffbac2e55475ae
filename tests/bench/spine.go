package bench

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"

	"github.com/courier-sdn/courier/dataplane"
	"github.com/courier-sdn/courier/internal/lab"
	"github.com/courier-sdn/courier/pipeline"
)

// The pipeline spine (#14): what the production programs cost per packet
// against an earlier build's, both loaded on the same sandbox chassis's
// state and timed by the same harness in interleaved rounds, and how long
// courier-trace takes.

// BaselineRev is the build the programs are compared with by default,
// so that a change of the programs that costs is seen: c5dc43f, the last
// build before the programs kept their route lookups (stop 35).
// courier-bench --spine-baseline names another. It was 59925c6, the
// last before the pipeline became one stage per function (#14; its last
// run is bench/results/2026-12-02T10-38-51Z.md), until that object no
// longer ran on today's maps: from c5dc43f at least it dropped the
// packet (verdict 2) and the section failed.
const BaselineRev = "c5dc43f"

// spineRev14 is #14's baseline, named in the reports that used it.
const spineRev14 = "59925c6"

// SpineResult is that benchmark's result.
type SpineResult struct {
	Baseline string     `json:"baseline"`
	Rounds   int        `json:"rounds"`
	Costs    []ProgCost `json:"costs"`
	// Trace times one courier-trace run, from start to exit, in ms.
	TraceLive    Latency `json:"trace_live_ms"`
	TraceLogical Latency `json:"trace_logical_ms"`
	// Steps: where this build's time goes, per path.
	Steps []PathSteps `json:"steps,omitempty"`
	Notes []string    `json:"notes,omitempty"`
}

// PathSteps is where the time of one path through a program goes:
// the mean of profiled copies' profiles (dataplane.ReadProfile).
type PathSteps struct {
	Path    string            `json:"path"`
	Profile dataplane.Profile `json:"profile"`
	// ProfiledNS is the profiled copies' time as the kernel times the
	// unprofiled builds: the median of their medians.
	ProfiledNS float64 `json:"profiled_ns"`
}

// ProgCost is one path through a program: ns per packet, min, median
// and max over the rounds (each round the mean of spineCopies loads'
// medians of 5,000 runs).
type ProgCost struct {
	Path   string     `json:"path"`
	Before [3]float64 `json:"before_ns"`
	After  [3]float64 `json:"after_ns"`
	Ratio  float64    `json:"ratio_of_medians"`
	// BeforeCold and AfterCold are the builds with spineEvict bytes of
	// lines dirtied between runs (dataplane.TimeRunsCold): what a packet
	// costs when other work has pushed the programs and their maps out
	// of the near caches, towards an upper bound (spineEvict), where a
	// change that touches fewer lines shows most.
	BeforeCold [3]float64 `json:"before_cold_ns"`
	AfterCold  [3]float64 `json:"after_cold_ns"`
	RatioCold  float64    `json:"ratio_cold_of_medians"`
}

// Spine runs it.
func Spine(ctx context.Context, env Env, rounds int, baseline string) (*SpineResult, error) {
	sb, _, done, err := benchSandbox(ctx, env, "spine", 3, 1)
	if err != nil {
		return nil, err
	}
	defer done()
	nbctl := func(args ...string) error {
		cmd := exec.Command(filepath.Join(env.BinDir, "courier-nbctl"), append([]string{"--db", sb.NB(), "--timeout", "30s"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("courier-nbctl %v: %v: %s", args, err, out)
		}
		return nil
	}
	err = nbctl("--wait=hv", "vpc-add", "v", "--", "vxnet-add", "v", "web", "10.60.1.0/24", "--", "vxnet-add", "v", "db", "10.60.2.0/24",
		"--", "port-add", "web", "a", "02:00:00:60:01:0a", "10.60.1.10", "--", "port-add", "web", "b", "02:00:00:60:01:0b", "10.60.1.11",
		"--", "port-add", "db", "d", "02:00:00:60:02:0a", "10.60.2.10")
	if err != nil {
		return nil, err
	}
	for _, v := range []struct{ host, port string }{{"hv2", "a"}, {"hv3", "b"}, {"hv3", "d"}} {
		if err := sb.AddVM(ctx, v.host, v.port); err != nil {
			return nil, err
		}
	}
	for _, dst := range []string{"10.60.1.11", "10.60.2.10"} { // learn the paths
		if n, out := sb.Ping("a", netip.MustParseAddr(dst), 2, "0.2"); n == 0 {
			return nil, fmt.Errorf("a cannot reach %s: %s", dst, out)
		}
	}
	res := &SpineResult{Baseline: baseline, Rounds: rounds}
	if err := spineCosts(res, sb.State.PinRoot, sb.HostNS(spineHost), rounds); err != nil {
		return nil, err
	}
	bin := filepath.Join(env.BinDir, "courier-trace")
	for _, c := range []struct {
		into *Latency
		args []string
	}{{&res.TraceLive, []string{"--chassis", "hv2", "--minimal", `inport == "a" && ip4.dst == 10.60.2.10`}},
		{&res.TraceLogical, []string{"--minimal", `inport == "a" && ip4.dst == 10.60.2.10`}}} {
		var ds []time.Duration
		for i := 0; i < 10; i++ {
			cmd := exec.Command(bin, c.args...)
			cmd.Env = append(os.Environ(), "COURIER_RUNDIR="+sb.RunDir)
			start := time.Now()
			if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "delivered") {
				return nil, fmt.Errorf("courier-trace %v: %v: %s", c.args, err, out)
			}
			ds = append(ds, time.Since(start))
		}
		*c.into = Summarize(ds)
	}
	return res, nil
}

// spineCosts times the programs of this build and of the baseline on the
// sandbox chassis's state.
func spineCosts(res *SpineResult, pinRoot, ns string, rounds int) error {
	old, err := exec.Command("git", "show", res.Baseline+":dataplane/dvr_bpfel.o").Output()
	if err != nil {
		return fmt.Errorf("the baseline object (git show %s:dataplane/dvr_bpfel.o; make bench runs in a clone): %w", res.Baseline, err)
	}
	builds := map[string][]byte{"before": old, "after": dataplane.CurrentObject()}
	cases := spinePaths()
	key, err := fromHV3(pinRoot, ns)
	if err != nil {
		return err
	}
	// Each build is loaded spineCopies times, and every copy timed each
	// round: one load of a build ran 3-7% faster or slower than another
	// of nearly the same code (where its code and maps landed), which a
	// single copy of each took for the builds' difference. tunnel_ingress
	// is timed in copies of their own with the test hooks on, which also
	// record every redirect: port_ingress is timed without them.
	copies := map[string]map[bool][]*ebpf.Collection{}
	// Profiled copies of this build, timed in the same rounds: where
	// its time goes (spineSteps).
	builds["profiled"] = dataplane.ProfiledObject()
	for name, obj := range builds {
		copies[name] = map[bool][]*ebpf.Collection{}
		for _, test := range []bool{false, true} {
			cs, err := loadCopies(obj, pinRoot, test, key)
			if err != nil {
				return fmt.Errorf("load the %s build: %w", name, err)
			}
			defer closeAll(cs)
			copies[name][test] = cs
		}
	}
	runs := newSpineRuns(len(cases))
	err = lab.Do(ns, func() error {
		if err := resolveIfindexes(cases); err != nil {
			return err
		}
		for r := 0; r < rounds; r++ {
			// Each build goes first in every other round.
			order := []string{"before", "after"}
			if r%2 == 1 {
				order[0], order[1] = order[1], order[0]
			}
			for i, c := range cases {
				if err := runs.timePath(copies, i, c, order); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i, c := range cases {
		res.Costs = append(res.Costs, runs.cost(i, c.name))
		res.Steps = append(res.Steps, PathSteps{Path: c.name, Profile: dataplane.MeanProfile(runs.profiles[i]), ProfiledNS: minMedMax(runs.profiledNS[i])[1]})
	}
	return nil
}

// spineRuns gathers the spine's timings of each path over the rounds.
type spineRuns struct {
	samples    map[string][][]float64 // ns, by build, and build + " cold"
	profiles   [][]dataplane.Profile
	profiledNS [][]float64
	evict      []byte // written between cold runs
}

func newSpineRuns(paths int) *spineRuns {
	s := &spineRuns{samples: map[string][][]float64{}, profiles: make([][]dataplane.Profile, paths),
		profiledNS: make([][]float64, paths), evict: make([]byte, spineEvict)}
	for _, b := range []string{"before", "after", "before cold", "after cold"} {
		s.samples[b] = make([][]float64, paths)
	}
	return s
}

// timePath times path i (c) in one round: each build in order, warm and
// then cold, and this build's profiled copies.
func (s *spineRuns) timePath(copies map[string]map[bool][]*ebpf.Collection, i int, c spineCase, order []string) error {
	for _, b := range order {
		per, err := timeCopies(copies[b][c.tunnel], c)
		if err != nil {
			return fmt.Errorf("%s build, %s: %w", b, c.name, err)
		}
		s.samples[b][i] = append(s.samples[b][i], per)
	}
	for _, b := range order {
		cold, err := timeCopiesCold(copies[b][c.tunnel], c, s.evict)
		if err != nil {
			return fmt.Errorf("%s build, caches cold, %s: %w", b, c.name, err)
		}
		s.samples[b+" cold"][i] = append(s.samples[b+" cold"][i], cold)
	}
	ps, medians, err := spineSteps(copies["profiled"][c.tunnel], c)
	if err != nil {
		return fmt.Errorf("%s: %w", c.name, err)
	}
	s.profiles[i] = append(s.profiles[i], ps...)
	s.profiledNS[i] = append(s.profiledNS[i], medians...)
	return nil
}

// cost is path i's costs over the rounds.
func (s *spineRuns) cost(i int, path string) ProgCost {
	pc := ProgCost{Path: path, Before: minMedMax(s.samples["before"][i]), After: minMedMax(s.samples["after"][i]),
		BeforeCold: minMedMax(s.samples["before cold"][i]), AfterCold: minMedMax(s.samples["after cold"][i])}
	pc.Ratio = pc.After[1] / pc.Before[1]
	pc.RatioCold = pc.AfterCold[1] / pc.BeforeCold[1]
	return pc
}

// spineCopies is how many times each build is loaded (spineCosts).
const spineCopies = 3

// The chassis whose programs are timed, the port its packets come from
// and the address of port b on hv3, which sends it what tunnel_ingress
// gets.
const (
	spineHost     = "hv2"
	spinePort     = "a"
	spinePeerAddr = "10.60.1.11"
)

// loadCopies loads obj spineCopies times on spineHost's state, with
// its test hooks if test, each copy's tunnel_ingress then reading key.
func loadCopies(obj []byte, pinRoot string, test bool, key testTunnel) ([]*ebpf.Collection, error) {
	var cs []*ebpf.Collection
	for range spineCopies {
		coll, err := dataplane.LoadVariant(obj, pinRoot, spineHost, test)
		if err == nil && test {
			err = dataplane.SetTestTunnel(coll, key.vtep, key.vni, key.gbp)
		}
		if err != nil {
			closeAll(cs)
			if coll != nil {
				coll.Close()
			}
			return nil, err
		}
		cs = append(cs, coll)
	}
	return cs, nil
}

// testTunnel is the tunnel key of a packet from port b on hv3.
type testTunnel struct {
	vtep     netip.Addr
	vni, gbp uint32
}

// fromHV3 is the tunnel key hv3 sends port b's packets to spineHost
// (namespace ns) with: hv3 and the vxnet's VNI as spineHost's learned
// path to b says, and b's security group identity, which is a's (both
// in the VPC's default group), with the bit that says b's egress rules
// passed it.
func fromHV3(pinRoot, ns string) (testTunnel, error) {
	dp, err := dataplane.OpenPinned(pinRoot, spineHost)
	if err != nil {
		return testTunnel{}, err
	}
	defer dp.ClosePinned()
	paths, err := dp.Cache()
	if err != nil {
		return testTunnel{}, err
	}
	var key testTunnel
	for _, p := range paths {
		if p.IP == netip.MustParseAddr(spinePeerAddr) {
			key = testTunnel{vtep: p.VTEP, vni: p.VNI}
		}
	}
	if !key.vtep.IsValid() {
		return key, fmt.Errorf("%s holds no path to port b (%s): %v", spineHost, spinePeerAddr, paths)
	}
	var id uint32
	var ok bool
	err = lab.Do(ns, func() error {
		ifindex, err := aliasIfindex(spinePort)
		if err == nil {
			id, ok, err = dp.PortIdentity(ifindex)
		}
		return err
	})
	if err != nil {
		return key, err
	}
	if ok {
		key.gbp = id | dataplane.GBPPolicyApplied
	}
	return key, nil
}

func closeAll(cs []*ebpf.Collection) {
	for _, c := range cs {
		c.Close()
	}
}

// spineEvict is how much memory the cold timing dirties between runs
// (a byte in each 64-byte line): about a core's L2 cache on today's x86
// servers (512 KiB to 2 MiB; this guest does not say its own). One
// 64-KB packet's copies touch less between two runs on a CPU, so this
// is nearer an upper bound of what payload evicts than a typical case,
// and it evicts the programs' code as well as their maps.
const spineEvict = 1 << 20

// timeCopies is the mean of the copies' medians of 5,000 runs of c's
// packet, in ns; each must redirect it.
func timeCopies(copies []*ebpf.Collection, c spineCase) (float64, error) {
	return timeCopiesCold(copies, c, nil)
}

// timeCopiesCold is timeCopies with evict written between runs.
func timeCopiesCold(copies []*ebpf.Collection, c spineCase, evict []byte) (float64, error) {
	var sum float64
	for _, coll := range copies {
		per, verdict, err := dataplane.TimeRunsCold(coll.Programs[c.prog()], c.ifindex, c.pkt, 5000, evict)
		if err != nil {
			return 0, err
		}
		if verdict != 7 {
			return 0, fmt.Errorf("verdict %d, want redirect", verdict)
		}
		sum += float64(per.Nanoseconds())
	}
	return sum / float64(len(copies)), nil
}

// spineCase is a path the section times on hv2: a packet from port a
// through port_ingress, or, tunnel, one that hv3 sent through
// tunnel_ingress.
type spineCase struct {
	name    string
	tunnel  bool
	pkt     []byte
	ifindex int // the context's: port a's host side, or the VXLAN device
}

func (c spineCase) prog() string {
	if c.tunnel {
		return "tunnel_ingress"
	}
	return "port_ingress"
}

// spinePaths are the paths the section times, and a packet of each.
func spinePaths() []spineCase {
	gw := net.HardwareAddr{0x0a, 0xc0, 0, 0, 0, 1}
	a := net.HardwareAddr{2, 0, 0, 0x60, 1, 0x0a}
	b := net.HardwareAddr{2, 0, 0, 0x60, 1, 0x0b}
	return []spineCase{
		{name: "l2_remote (a learned path, encapsulate)", pkt: frame(b, a, "10.60.1.10", "10.60.1.11")},
		{name: "l3_remote (route, TTL-1, a learned path, encapsulate)", pkt: frame(gw, a, "10.60.1.10", "10.60.2.10")},
		{name: "tunnel_local (tunnel_ingress, from port b on hv3 to port a; test hooks on)", tunnel: true, pkt: frame(a, b, "10.60.1.11", "10.60.1.10")},
	}
}

// resolveIfindexes fills each case's context ifindex, in hv2's namespace.
func resolveIfindexes(cases []spineCase) error {
	port, err := aliasIfindex(spinePort)
	if err != nil {
		return err
	}
	dev, err := netlink.LinkByName(dataplane.DefaultDevice)
	if err != nil {
		return fmt.Errorf("the VXLAN device: %w", err)
	}
	for i := range cases {
		cases[i].ifindex = port
		if cases[i].tunnel {
			cases[i].ifindex = dev.Attrs().Index
		}
	}
	return nil
}

// spineSteps times each step of this build's program on c's packet with
// each profiled copy of the programs (dataplane.ProfiledObject): where
// the time goes; and each copy's median as the kernel times it.
func spineSteps(copies []*ebpf.Collection, c spineCase) ([]dataplane.Profile, []float64, error) {
	var ps []dataplane.Profile
	var medians []float64
	for _, coll := range copies {
		if _, err := dataplane.ReadProfile(coll); err != nil { // clears
			return nil, nil, err
		}
		per, verdict, err := dataplane.TimeRuns(coll.Programs[c.prog()], c.ifindex, c.pkt, 5000)
		if err != nil || verdict != 7 {
			return nil, nil, fmt.Errorf("a profiled copy: verdict %d, %v", verdict, err)
		}
		p, err := dataplane.ReadProfile(coll)
		if err != nil {
			return nil, nil, err
		}
		ps = append(ps, p)
		medians = append(medians, float64(per.Nanoseconds()))
	}
	return ps, medians, nil
}

func aliasIfindex(port string) (int, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return 0, err
	}
	for _, l := range links {
		if l.Attrs().Alias == dataplane.AliasPrefix+port {
			return l.Attrs().Index, nil
		}
	}
	return 0, fmt.Errorf("no interface for port %s", port)
}

// minMedMax is min, median and max.
func minMedMax(v []float64) [3]float64 {
	s := append([]float64{}, v...)
	sort.Float64s(s)
	return [3]float64{s[0], s[len(s)/2], s[len(s)-1]}
}

// mmm renders min/median/max ns.
func mmm(v [3]float64) string { return fmt.Sprintf("%.0f/%.0f/%.0f", v[0], v[1], v[2]) }

func (s *SpineResult) markdown(b *strings.Builder) {
	what := s.Baseline
	if what == spineRev14 {
		what += " (before one function per stage)"
	}
	fmt.Fprintf(b, "## The pipeline spine\n\nPer packet, this build against %s, both loaded on one sandbox chassis's state, timed by the same harness (each build loaded %d times, each copy's median of 5,000 single BPF_PROG_TEST_RUN runs per round, their mean; %d interleaved rounds, the builds first in turn; min/median/max ns). port_ingress as port a sends; tunnel_ingress as a packet from hv3 arrives, in copies with the test hooks on (BPF_PROG_RUN carries no tunnel key: the program reads it from a map, and records its redirect in another):\n\n", what, spineCopies, s.Rounds)
	fmt.Fprintf(b, "| path | before | after | after/before (medians) | before, caches cold (%d KiB of lines dirtied between runs) | after, cold | after/before, cold |\n|---|---|---|---|---|---|---|\n", spineEvict>>10)
	for _, c := range s.Costs {
		fmt.Fprintf(b, "| %s | %s | %s | %.3f | %s | %s | %.3f |\n", c.Path, mmm(c.Before), mmm(c.After), c.Ratio, mmm(c.BeforeCold), mmm(c.AfterCold), c.RatioCold)
		if c.Ratio > 1.05 {
			fmt.Fprintf(b, "\n**Target missed** on %s: the production path costs %.1f%% more than before (target: within 5%%).\n\n", c.Path, (c.Ratio-1)*100)
		}
	}
	s.stepsMarkdown(b)
	fmt.Fprintf(b, "\ncourier-trace, start to exit (ms, p50/p99/max of 10): live, two hosts: %.0f/%.0f/%.0f; logical: %.0f/%.0f/%.0f.\n\n",
		s.TraceLive.P50, s.TraceLive.P99, s.TraceLive.Max, s.TraceLogical.P50, s.TraceLogical.P99, s.TraceLogical.Max)
}

// stepsMarkdown is the table of where this build's time goes: a row per
// step, in the pipeline's order, a column per path, ns per packet; then
// their sum, the whole profiled program and the unprofiled one.
func (s *SpineResult) stepsMarkdown(b *strings.Builder) {
	if len(s.Steps) == 0 {
		return
	}
	order := []string{}
	for _, st := range pipeline.Stages {
		order = append(order, st.Name)
	}
	order = append(order, "finish")
	var clock []string
	for _, p := range s.Steps {
		clock = append(clock, fmt.Sprintf("%.0f", p.Profile.ClockNS))
	}
	fmt.Fprintf(b, "\nWhere this build's time goes: profiled copies of the programs (bpf/profile.h, loaded %d times as above, timed in the same rounds) time each step with bpf_ktime_get_ns over 5,000 runs per path and round; ns per packet, their mean, the cost of one timing (%s ns) taken off. \"finish\" carries the verdict out (encapsulation, redirection). The timings slow what they time as well (the profiled program against the unprofiled one below): read the steps against each other, not as what each costs unprofiled.\n\n", spineCopies, strings.Join(clock, " / "))
	fmt.Fprint(b, "| step |")
	for _, p := range s.Steps {
		fmt.Fprintf(b, " %s |", strings.SplitN(p.Path, " ", 2)[0])
	}
	fmt.Fprint(b, "\n|---|"+strings.Repeat("---|", len(s.Steps))+"\n")
	row := func(name string, v func(i int, p dataplane.Profile) (float64, bool)) {
		fmt.Fprintf(b, "| %s |", name)
		for i, p := range s.Steps {
			if x, ok := v(i, p.Profile); ok {
				fmt.Fprintf(b, " %.0f |", x)
			} else {
				fmt.Fprint(b, " – |")
			}
		}
		fmt.Fprintln(b)
	}
	for _, name := range order {
		ran := false
		for _, p := range s.Steps {
			_, ok := p.Profile.PerPacket(name)
			ran = ran || ok
		}
		if ran {
			row(name, func(_ int, p dataplane.Profile) (float64, bool) { return p.PerPacket(name) })
		}
	}
	row("the steps' sum", func(_ int, p dataplane.Profile) (float64, bool) {
		sum := 0.0
		for _, st := range p.Steps {
			v, _ := p.PerPacket(st.Step)
			sum += v
		}
		return sum, true
	})
	row("the program, profiled (the kernel's median)", func(i int, _ dataplane.Profile) (float64, bool) { return s.Steps[i].ProfiledNS, true })
	row("the program, unprofiled (the kernel's median, above)", func(i int, _ dataplane.Profile) (float64, bool) {
		if i < len(s.Costs) {
			return s.Costs[i].After[1], true
		}
		return 0, false
	})
}
