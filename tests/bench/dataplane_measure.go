package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/courier-sdn/courier/internal/lab"
)

// What the data plane benchmark measures on every path, in each round.
// Throughput with 1, 4 and 32 TCP streams (iperf3; 3.12 runs all streams
// on one thread, the same on every path), and 4 again with the client
// on CPU 0 and the server on CPU 1 (iperf3 -A 0,1; with two CPUs or
// more), which takes the scheduler's placement of the two ends out of
// it. On two CPUs both stay bimodal on every path, set by how often the
// receiver sleeps and is woken (DEVELOPERS.md, "Four streams on two
// vCPUs"). The pinned rate is reported, not a target: #21's targets are
// the plain rates. A request/response rate, one
// 64-byte message each way on one TCP connection (sockperf ping-pong),
// and its round trip; a connection-per-request rate (connect, 64 bytes
// each way, close: what NAT and security groups set up per flow); and
// ping's round trip (back to back, -A).
type metric struct {
	key   string
	title string
	prec  int
	// lower is better (a latency); otherwise higher is.
	lower bool
	// Courier's paths must do at least as well as the bridge (b).
	gate bool
}

var metrics = []metric{
	{key: "tcp_1_stream_gbps", title: "TCP 1 stream Gbit/s", prec: 2, gate: true},
	{key: "tcp_4_streams_gbps", title: "TCP 4 streams Gbit/s", prec: 2, gate: true},
	{key: "tcp_32_streams_gbps", title: "TCP 32 streams Gbit/s", prec: 2, gate: true},
	{key: "tcp_4_streams_pinned_gbps", title: "TCP 4 streams, ends pinned apart, Gbit/s", prec: 2},
	{key: "tcp_1_stream_retrans", title: "TCP 1 stream retransmits /GB", prec: 0, lower: true},
	{key: "tcp_32_streams_retrans", title: "TCP 32 streams retransmits /GB", prec: 0, lower: true},
	{key: "tcp_rr_per_s", title: "TCP req/resp /s", prec: 0, gate: true},
	{key: "tcp_crr_per_s", title: "TCP conn/req /s", prec: 0, gate: true},
	{key: "rr_rtt_p50_us", title: "req/resp RTT p50 µs", prec: 1, lower: true, gate: true},
	{key: "rtt_mean_us", title: "ping RTT mean µs", prec: 0, lower: true, gate: true},
	{key: "rtt_p99_us", title: "ping RTT p99 µs", prec: 0, lower: true},
	// Pings 2 ms apart: a path whose code and state the machine's other
	// work evicted between packets (Courier's programs then cost 3-5 µs
	// a run against 0.6 back to back, #21).
	{key: "rtt_sparse_p50_us", title: "ping 2 ms apart RTT p50 µs", prec: 0, lower: true, gate: true},
}

const (
	iperfPort    = 5201
	sockperfPort = 11111
	crrPort      = 5301
	rrSize       = 64
)

// fifo says whether iperf3 and sockperf, client and server, run under
// SCHED_FIFO (chrt -f 50). On a machine shared with other work the
// ordinary scheduler lets that work set the rate: one stream swung by
// ±30% between runs on 2 CPUs, ±3–5% with the tools ahead of it
// (DEVELOPERS.md, data-plane performance). Every path gets the same;
// what the kernel defers to ksoftirqd, and the connection-per-request
// client and server (in this process), stay ordinary.
type fifo bool

// argv is args, under chrt when f is set.
func (f fifo) argv(args ...string) []string {
	if !f {
		return args
	}
	return append([]string{"chrt", "-f", "50"}, args...)
}

// startServers starts, in every path's server VM, iperf3, sockperf and
// the connection-per-request server; stop ends them all (call it even
// on error).
func startServers(paths []*PathResult, prio fifo) (stop func(), err error) {
	s := &serverSet{}
	for _, p := range paths {
		for _, args := range [][]string{{"iperf3", "-s", "-p", strconv.Itoa(iperfPort)},
			{"sockperf", "server", "--tcp", "-i", p.dst, "-p", strconv.Itoa(sockperfPort)}} {
			if err := s.run(p.serverNS, prio.argv(args...)...); err != nil {
				return s.stop, err
			}
		}
		if err := s.crr(p.serverNS); err != nil {
			return s.stop, err
		}
	}
	time.Sleep(500 * time.Millisecond)
	return s.stop, nil
}

// serverSet is the servers a benchmark section starts in namespaces:
// commands, and connection-per-request servers in this process.
type serverSet struct {
	cmds []*exec.Cmd
	lns  []net.Listener
}

// run starts argv in namespace ns.
func (s *serverSet) run(ns string, argv ...string) error {
	c := exec.Command("ip", append([]string{"netns", "exec", ns}, argv...)...)
	if err := c.Start(); err != nil {
		return fmt.Errorf("%s in %s: %w", argv[0], ns, err)
	}
	s.cmds = append(s.cmds, c)
	return nil
}

// crr starts the connection-per-request server in namespace ns.
func (s *serverSet) crr(ns string) error {
	ln, err := crrServer(ns)
	if err != nil {
		return err
	}
	s.lns = append(s.lns, ln)
	return nil
}

// stop ends every server started (call it even after an error).
func (s *serverSet) stop() {
	for _, c := range s.cmds {
		c.Process.Kill()
		c.Wait()
	}
	for _, l := range s.lns {
		l.Close()
	}
}

// A dpTest measures on one path and appends its values to p.Raw (add):
// one of the metrics, or a few measured by one tool run. A test that
// fails adds nothing (and the benchmark stops).
type dpTest struct {
	name string
	run  func(p *PathResult, add func(key string, v float64), seconds int, prio fifo) error
}

// dpTests are run in this order in each round, each on every path back
// to back (runRound).
var dpTests = []dpTest{
	{"tcp_1_stream", iperfTest(1, "tcp_1_stream_gbps", "tcp_1_stream_retrans")},
	{"tcp_4_streams", iperfTest(4, "tcp_4_streams_gbps", "")},
	{"tcp_32_streams", iperfTest(32, "tcp_32_streams_gbps", "tcp_32_streams_retrans")},
	{"tcp_4_streams_pinned", func(p *PathResult, add func(string, float64), seconds int, prio fifo) error {
		cpus := twoCPUs()
		if cpus == "" {
			return nil // on one CPU there is no apart: not measured on any path
		}
		r, err := iperfAt(prio, p.client, p.dst, 4, seconds, "-A", cpus)
		if err != nil {
			return err
		}
		add("tcp_4_streams_pinned_gbps", r.gbps)
		return nil
	}},
	{"tcp_rr", func(p *PathResult, add func(string, float64), seconds int, prio fifo) error {
		rate, p50, err := sockperfRR(prio, p.client, p.dst, seconds)
		if err != nil {
			return err
		}
		add("tcp_rr_per_s", rate)
		add("rr_rtt_p50_us", p50)
		return nil
	}},
	{"tcp_crr", func(p *PathResult, add func(string, float64), seconds int, _ fifo) error {
		crr, err := crrRate(p.client, p.dst, seconds)
		if err != nil {
			return err
		}
		add("tcp_crr_per_s", crr)
		return nil
	}},
	{"ping", func(p *PathResult, add func(string, float64), _ int, _ fifo) error {
		mean, p99, err := pingRTT(p.client, p.dst, 2000)
		if err != nil {
			return err
		}
		add("rtt_mean_us", mean)
		add("rtt_p99_us", p99)
		return nil
	}},
	{"ping_sparse", func(p *PathResult, add func(string, float64), _ int, _ fifo) error {
		sparse, err := pingRTTsEvery(p.client, p.dst, 500, "0.002")
		if err != nil {
			return err
		}
		add("rtt_sparse_p50_us", sparse[len(sparse)/2])
		return nil
	}},
}

// iperfTest measures streams TCP streams: the rate as key, and, when
// retransKey is set, the segments retransmitted per GB received as that
// (reported, not a target: a path that reorders makes its senders
// retransmit what arrived, #21).
func iperfTest(streams int, key, retransKey string) func(*PathResult, func(string, float64), int, fifo) error {
	return func(p *PathResult, add func(string, float64), seconds int, prio fifo) error {
		r, err := iperfAt(prio, p.client, p.dst, streams, seconds)
		if err == nil && retransKey != "" && r.retrans < 0 {
			err = fmt.Errorf("iperf3 output: no retransmit count")
		}
		if err != nil {
			return err
		}
		add(key, r.gbps)
		if retransKey != "" {
			add(retransKey, r.perGB(r.retrans))
		}
		return nil
	}
}

// runRound measures each of tests once on every path. Each test runs on
// the paths back to back, so that the two runs of a ratio's pair are a
// few runs apart (one to four of five paths), not a whole round of every
// test (half a minute on a shared machine, whose load drifts); and the
// paths' order turns by one each round (round r starts with path r mod
// n), so that none is always first after another test or always right
// after the same path. The values stay in round order for every path:
// p.Raw[k][r] is round r's.
func runRound(paths []*PathResult, tests []dpTest, r int, seconds int, prio fifo, log func(test, path string)) error {
	order := rotated(paths, r)
	for _, t := range tests {
		for _, p := range order {
			if p.Raw == nil {
				p.Raw = map[string][]float64{}
			}
			log(t.name, p.Name)
			add := func(k string, v float64) { p.Raw[k] = append(p.Raw[k], v) }
			if err := t.run(p, add, seconds, prio); err != nil {
				return fmt.Errorf("%s, %s: %w", p.Name, t.name, err)
			}
		}
	}
	return nil
}

// rotated is paths starting at index r mod len(paths).
func rotated[T any](paths []T, r int) []T {
	n := len(paths)
	out := make([]T, 0, n)
	for i := range paths {
		out = append(out, paths[(i+r)%n])
	}
	return out
}

func iperf(clientNS, dst string, streams, seconds int) (float64, error) {
	r, err := iperfAt(false, clientNS, dst, streams, seconds)
	return r.gbps, err
}

// twoCPUs is iperf3's -A for the client on the first CPU this process
// may run on and the server on the second ("0,1" as a rule; a cpuset
// may give others), or "" with fewer than two.
func twoCPUs() string {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return ""
	}
	var cpus []int
	for i := 0; i < len(set)*64 && len(cpus) < 2; i++ {
		if set.IsSet(i) {
			cpus = append(cpus, i)
		}
	}
	if len(cpus) < 2 {
		return ""
	}
	return fmt.Sprintf("%d,%d", cpus[0], cpus[1])
}

// iperfRun is what one iperf3 client run measured: the rate and the
// bytes received, and the segments its senders retransmitted (-1: not
// reported, as for UDP).
type iperfRun struct {
	gbps    float64
	bytes   float64
	retrans float64
}

// perGB is n per GB received (0 when nothing was).
func (r iperfRun) perGB(n float64) float64 {
	if r.bytes <= 0 {
		return 0
	}
	return n / (r.bytes / 1e9)
}

// iperfAt runs iperf3's client, with more of its options.
func iperfAt(prio fifo, clientNS, dst string, streams, seconds int, more ...string) (iperfRun, error) {
	args := append([]string{"iperf3", "-c", dst, "-p", strconv.Itoa(iperfPort), "-t", strconv.Itoa(seconds), "-P", strconv.Itoa(streams), "-J"}, more...)
	out, err := lab.Exec(clientNS, prio.argv(args...)...)
	if err != nil {
		return iperfRun{}, fmt.Errorf("iperf3: %v: %s", err, firstLine(out))
	}
	return parseIperf(out)
}

// parseIperf reads iperf3's JSON (-J).
func parseIperf(out string) (iperfRun, error) {
	var r struct {
		End struct {
			SumSent struct {
				Retransmits *float64 `json:"retransmits"`
			} `json:"sum_sent"`
			SumReceived struct {
				Bytes         float64 `json:"bytes"`
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		return iperfRun{}, fmt.Errorf("iperf3 output: %v", err)
	}
	run := iperfRun{gbps: r.End.SumReceived.BitsPerSecond / 1e9, bytes: r.End.SumReceived.Bytes, retrans: -1}
	if r.End.SumSent.Retransmits != nil {
		run.retrans = *r.End.SumSent.Retransmits
	}
	return run, nil
}

var (
	sockperfValid = regexp.MustCompile(`\[Valid Duration\] RunTime=([0-9.]+) sec; SentMessages=\d+; ReceivedMessages=(\d+)`)
	sockperfP50   = regexp.MustCompile(`percentile 50\.000 =\s*([0-9.]+)`)
)

// sockperfRR runs a TCP ping-pong of 64-byte messages for seconds and
// returns the round trips a second and the median round trip in µs.
func sockperfRR(prio fifo, clientNS, dst string, seconds int) (rate, p50 float64, err error) {
	out, err := lab.Exec(clientNS, prio.argv("sockperf", "ping-pong", "--tcp", "--full-rtt", "-i", dst, "-p", strconv.Itoa(sockperfPort),
		"-m", strconv.Itoa(rrSize), "-t", strconv.Itoa(seconds))...)
	if err != nil {
		return 0, 0, fmt.Errorf("sockperf: %v: %s", err, firstLine(out))
	}
	return parseSockperf(out)
}

func parseSockperf(out string) (rate, p50 float64, err error) {
	v, m := sockperfValid.FindStringSubmatch(out), sockperfP50.FindStringSubmatch(out)
	if v == nil || m == nil {
		return 0, 0, fmt.Errorf("sockperf output not understood: %q", firstLine(out))
	}
	secs, _ := strconv.ParseFloat(v[1], 64)
	n, _ := strconv.ParseFloat(v[2], 64)
	p50, _ = strconv.ParseFloat(m[1], 64)
	if secs <= 0 {
		return 0, 0, fmt.Errorf("sockperf ran %v s", secs)
	}
	return n / secs, p50, nil
}

// crrServer listens in ns and answers each connection's 64-byte request
// with 64 bytes, then closes first, as an HTTP/1.0 server does: the
// client's ports do not wait in TIME_WAIT, so a run is not limited by
// the ephemeral port range.
func crrServer(ns string) (net.Listener, error) {
	var ln net.Listener
	err := lab.Do(ns, func() (err error) {
		ln, err = net.Listen("tcp4", fmt.Sprintf(":%d", crrPort))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("connection-per-request server in %s: %w", ns, err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, rrSize)
				c.SetDeadline(time.Now().Add(5 * time.Second))
				if _, err := io.ReadFull(c, buf); err == nil {
					c.Write(buf)
				}
			}()
		}
	}()
	return ln, nil
}

// crrRate connects to the crrServer at dst from clientNS, one connection
// at a time, for seconds, and returns the completed requests a second.
func crrRate(clientNS, dst string, seconds int) (float64, error) {
	n, elapsed, err := crrRun(clientNS, dst, seconds)
	if err != nil {
		return 0, err
	}
	return float64(n) / elapsed.Seconds(), nil
}

// crrRun is crrRate's loop: the requests completed and the time taken.
func crrRun(clientNS, dst string, seconds int) (int, time.Duration, error) {
	addr := net.JoinHostPort(dst, strconv.Itoa(crrPort))
	n := 0
	var elapsed time.Duration
	err := lab.Do(clientNS, func() error {
		req, resp := make([]byte, rrSize), make([]byte, rrSize+1)
		start := time.Now()
		end := start.Add(time.Duration(seconds) * time.Second)
		for time.Now().Before(end) {
			c, err := net.DialTimeout("tcp4", addr, 2*time.Second)
			if err != nil {
				return err
			}
			c.SetDeadline(time.Now().Add(2 * time.Second))
			_, err = c.Write(req)
			if err == nil {
				var got int
				got, err = io.ReadFull(c, resp)
				if errors.Is(err, io.ErrUnexpectedEOF) && got == rrSize {
					err = nil // the response, then the server's close
				} else if err == nil {
					err = fmt.Errorf("more than %d bytes in the response", rrSize)
				}
			}
			c.Close()
			if err != nil {
				return fmt.Errorf("request %d: %w", n+1, err)
			}
			n++
		}
		elapsed = time.Since(start)
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("connection per request to %s: %w", addr, err)
	}
	return n, elapsed, nil
}

// pingRTT measures back-to-back (adaptive) pings: the path's latency
// rather than the CPU's wake-up time.
func pingRTT(clientNS, dst string, n int) (mean, p99 float64, err error) {
	rtts, err := pingRTTs(clientNS, dst, n)
	if err != nil {
		return 0, 0, err
	}
	sum := 0.0
	for _, v := range rtts {
		sum += v
	}
	return sum / float64(len(rtts)), rtts[len(rtts)*99/100], nil
}

// pingRTTs is pingRTT's round trips (µs), sorted: one per echo answered.
func pingRTTs(clientNS, dst string, n int) ([]float64, error) {
	return pingRTTsEvery(clientNS, dst, n, "")
}

// pingArgs is the ping command line of pingRTTsEvery.
func pingArgs(n int, dst, interval string) []string {
	args := []string{"ping", "-A"}
	if interval != "" {
		args = []string{"ping", "-i", interval}
	}
	return append(args, "-n", "-c", strconv.Itoa(n), dst)
}

// pingRTTsEvery is pingRTTs with an echo every interval seconds (ping's
// -i; "" is -A, each echo as soon as the last one is answered).
func pingRTTsEvery(clientNS, dst string, n int, interval string) ([]float64, error) {
	out, err := lab.Exec(clientNS, pingArgs(n, dst, interval)...)
	if err != nil {
		return nil, fmt.Errorf("ping: %v", err)
	}
	var rtts []float64
	for _, line := range strings.Split(out, "\n") {
		i := strings.Index(line, "time=")
		if i < 0 {
			continue
		}
		f := strings.Fields(line[i+5:])
		if v, err := strconv.ParseFloat(f[0], 64); err == nil {
			rtts = append(rtts, v*1000)
		}
	}
	if len(rtts) < n/2 {
		return nil, fmt.Errorf("ping: %d of %d answered", len(rtts), n)
	}
	sort.Float64s(rtts)
	return rtts, nil
}

// loadAvg is the machine's 1-minute load average.
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}
