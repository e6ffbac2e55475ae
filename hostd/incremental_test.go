package hostd

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/courier-sdn/courier/dataplane"
	"github.com/courier-sdn/courier/internal/central"
	"github.com/courier-sdn/courier/internal/testenv"
	"github.com/courier-sdn/courier/ops"
	"github.com/courier-sdn/courier/schema/sbdb"
)

// hostd keeps its desired state through caches that apply the
// southbound's changes as changes (flows by part, a VPC's EIPs, a hub's
// bindings row by row). TestIncrementalEqualsFull runs three hostds
// against real databases, northd and southd, drives a random history
// through courier-nbctl and the hosts' interfaces, and checks at
// checkpoints that every host's data plane, as the caches computed it, is
// what reading every row afresh gives. Only the kernel is a fake: twinDP
// computes the full state at each Apply and records how they differ.

// twinDP is a data plane that compares what it is asked to apply with
// the daemon's full computation from the same sessions.
type twinDP struct {
	fakeDataplane
	d    *Daemon
	mu   sync.Mutex
	n    int    // Applies so far
	diff string // how the last one differed from the full state ("": not)
}

func (f *twinDP) Apply(st *dataplane.State) (dataplane.ApplyStats, error) {
	full := desired(f.d.fullSnapshot(f.d.withActivations(ops.Rows[sbdb.PortBinding](f.d.base)))).state
	diff := stateDiff(st, full)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	f.diff = diff
	return dataplane.ApplyStats{}, nil
}

func (f *twinDP) last() (int, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n, f.diff
}

// stateLines is a State as sorted lines, one per element of each of its
// lists (JSON, which follows pointers and sorts maps), the hub table's
// bindings included: what the kernel gets does not depend on the lists'
// order, which map iteration decides.
func stateLines(st *dataplane.State) []string {
	var lines []string
	add := func(name string, x any) {
		b, err := json.Marshal(x)
		if err != nil {
			b = []byte(err.Error())
		}
		lines = append(lines, name+" "+string(b))
	}
	v := reflect.ValueOf(*st)
	for i := range v.NumField() {
		f, name := v.Field(i), v.Type().Field(i).Name
		switch {
		case name == "VPCEIPsKey":
			// a cache's name for its list; the lists are compared
		case name == "HubTable":
			if st.HubTable != nil {
				for _, b := range st.HubTable.All() {
					add(name, b)
				}
			}
		case name == "SG":
			for _, g := range st.SG {
				g.Rules = slices.Clone(g.Rules)
				slices.SortFunc(g.Rules, func(a, b dataplane.SGRule) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
				add(name, g)
			}
		case f.Kind() == reflect.Slice:
			for j := range f.Len() {
				add(name, f.Index(j).Interface())
			}
		default:
			add(name, f.Interface())
		}
	}
	slices.Sort(lines)
	return lines
}

// stateDiff says what is in one state and not in the other, or "".
func stateDiff(incr, full *dataplane.State) string {
	a, b := stateLines(incr), stateLines(full)
	var out []string
	for _, l := range a {
		if _, found := slices.BinarySearch(b, l); !found {
			out = append(out, "only incremental: "+l)
		}
	}
	for _, l := range b {
		if _, found := slices.BinarySearch(a, l); !found {
			out = append(out, "only full: "+l)
		}
	}
	if len(out) > 6 {
		out = append(out[:6], fmt.Sprintf("... %d more", len(out)-6))
	}
	return strings.Join(out, "\n")
}

// twinHost is one hostd of the test, with its interfaces.
type twinHost struct {
	name   string
	d      *Daemon
	dp     *twinDP
	links  chan linkEvent
	events chan dataplane.Event
	up     map[string]bool // port -> its interface is here
	index  int
}

func startTwinHost(ctx context.Context, t *testing.T, dbs *testenv.TLSDBs, name string, index int, hub bool) *twinHost {
	d := New(Config{Chassis: name, EncapIP: netip4(192, 0, 2, byte(index)), SB: []string{dbs.SBChassis}, Hub: hub,
		Credentials: dbs.Creds(t, name), Log: testenv.Logger(t)})
	h := &twinHost{name: name, d: d, dp: &twinDP{d: d}, links: make(chan linkEvent, 64),
		events: make(chan dataplane.Event, 64), up: map[string]bool{}, index: index}
	d.dp, d.sender = h.dp, &fakeSender{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := d.session(ctx, func() {}, h.links, h.events, nil); err != nil && ctx.Err() == nil {
			t.Errorf("%s: session ended: %v", name, err)
		}
	}()
	t.Cleanup(func() { <-done })
	return h
}

// iface makes a port's interface appear on the host, or go.
func (h *twinHost) iface(port string, portIndex int, present bool) {
	h.up[port] = present
	h.links <- linkEvent{attrs: netlink.LinkAttrs{Index: h.index*100 + portIndex + 1, Alias: dataplane.AliasPrefix + port}, present: present}
}

// announce: the port's VM sent from an address, as the data plane tells
// hostd of a port with unknown addresses.
func (h *twinHost) announce(portIndex int, vxnet, ip string) {
	h.events <- dataplane.Event{Type: dataplane.EventAddrSeen, Ifindex: h.index*100 + portIndex + 1, IP: netip.MustParseAddr(ip), VNI: twinVNIs[vxnet],
		MAC: parseMAC(fmt.Sprintf("02:00:00:00:00:%02x", portIndex+1))}
}

// checkpoint waits until the host's latest Apply, made after now, equals
// the full computation.
func (h *twinHost) checkpoint(t *testing.T, step int) {
	t.Helper()
	n, _ := h.dp.last()
	testenv.Eventually(t, 15*time.Second, fmt.Sprintf("step %d: %s's incremental state equals the full one", step, h.name), func() error {
		m, diff := h.dp.last()
		if m > n && diff == "" {
			return nil
		}
		n = m
		h.d.kick()
		if diff == "" {
			return fmt.Errorf("no Apply since the checkpoint began")
		}
		return fmt.Errorf("\n%s", diff)
	})
}

// twinWorld is the test's model of the northbound, enough to choose
// operations that mostly succeed.
type twinWorld struct {
	rng   *rand.Rand
	ports map[string]string // port -> its vxnet
	// unknown: the ports with unknown addresses, which learn theirs
	unknown   map[string]bool
	announced int
	hosts     []*twinHost
	vxnets    []string
	ok        int
}

const twinPorts = 10

var (
	twinVxnets = map[string]string{"x1": "10.1.1", "x2": "10.1.2", "x3": "10.1.3", "y1": "10.2.1"}
	twinVNIs   = map[string]uint32{"x1": 101, "x2": 102, "x3": 103, "y1": 201}
)

func (w *twinWorld) pick(s ...string) string { return s[w.rng.IntN(len(s))] }

func (w *twinWorld) chassis() string { return w.pick("hv1", "hv2", "hv3", "none") }

// op returns a random operation's courier-nbctl arguments, or does it
// itself (an interface) and returns none.
func (w *twinWorld) op() []string {
	i := w.rng.IntN(twinPorts)
	p := fmt.Sprintf("p%d", i)
	vx, exists := w.ports[p]
	switch r := w.rng.IntN(100); {
	case r < 20 && !exists:
		vx = w.pick("x1", "x2", "x3", "y1")
		addr := fmt.Sprintf("%s.%d", twinVxnets[vx], 10+i)
		if w.rng.IntN(3) == 0 {
			addr = "unknown"
		}
		args := []string{"port-add", vx, p, fmt.Sprintf("02:00:00:00:00:%02x", i+1), addr}
		if c := w.chassis(); c != "none" {
			args = append(args, "--chassis", c)
		}
		return args
	case r < 27 && exists:
		return []string{"port-del", p}
	case r < 42 && exists:
		return []string{"port-set", p, "--chassis", w.chassis()}
	case r < 58:
		h := w.hosts[w.rng.IntN(len(w.hosts))]
		h.iface(p, i, !h.up[p])
		return nil
	case r < 64:
		// a port with unknown addresses sends, wherever its interface
		// is; southd accepts it from the host it is bound to
		for q := range twinPorts {
			if name := fmt.Sprintf("p%d", q); w.unknown[name] {
				for _, h := range w.hosts {
					if h.up[name] {
						vx := w.ports[name]
						h.announce(q, vx, fmt.Sprintf("%s.%d", twinVxnets[vx], 150+w.rng.IntN(4)))
						w.announced++
					}
				}
			}
		}
		return nil
	case r < 70 && exists && vx != "y1":
		return []string{"port-set", p, "--sg", w.pick("g1", "g2", "g1,g2", "")}
	case r < 75:
		return []string{"sg-rule-add", w.pick("g1", "g2"), "ingress", "tcp", strconv.Itoa(1 + w.rng.IntN(1000))}
	case r < 82 && exists:
		return []string{"eip-bind", w.pick("203.0.113.1", "203.0.113.2", "203.0.113.3"), p}
	case r < 86:
		return []string{"eip-unbind", w.pick("203.0.113.1", "203.0.113.2", "203.0.113.3")}
	case r < 89:
		return []string{"route-add", "a", fmt.Sprintf("10.9.%d.0/24", w.rng.IntN(4)), "10.1.1.200"}
	case r < 91:
		return []string{"route-del", "a", fmt.Sprintf("10.9.%d.0/24", w.rng.IntN(4))}
	case r < 94:
		if slices.Contains(w.vxnets, "x3") {
			return []string{"vxnet-del", "x3"}
		}
		return []string{"vxnet-add", "a", "x3", "10.1.3.0/24", "--vni", "103"}
	case r < 97:
		return append([]string{"set-hub-chassis"}, strings.Fields(w.pick("hv1", "hv2", "hv1 hv2"))...)
	}
	return nil
}

// apply records a successful operation in the model.
func (w *twinWorld) apply(args []string) {
	w.ok++
	switch args[0] {
	case "port-add":
		w.ports[args[2]] = args[1]
		w.unknown[args[2]] = args[4] == "unknown"
	case "port-del":
		delete(w.ports, args[1])
		delete(w.unknown, args[1])
	case "vxnet-del":
		w.vxnets = slices.DeleteFunc(w.vxnets, func(v string) bool { return v == args[1] })
		for p, vx := range w.ports {
			if vx == args[1] {
				delete(w.ports, p)
				delete(w.unknown, p)
			}
		}
	case "vxnet-add":
		w.vxnets = append(w.vxnets, args[2])
	}
}

func TestIncrementalEqualsFull(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("COURIER_TWIN_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d (COURIER_TWIN_SEED=%d reruns this history)", seed, seed)
	dbs := testenv.StartTLSDBs(t, central.Daemons("", "")...)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	nb := func(wait string, args ...string) error { return nbRun(ctx, dbs, wait, args...) }
	err := nb("sb", "vpc-add", "a", "--", "vpc-add", "b", "--open",
		"--", "vxnet-add", "a", "x1", "10.1.1.0/24", "--vni", "101", "--", "vxnet-add", "a", "x2", "10.1.2.0/24", "--vni", "102",
		"--", "vxnet-add", "a", "x3", "10.1.3.0/24", "--vni", "103", "--", "vxnet-add", "b", "y1", "10.2.1.0/24", "--vni", "201",
		"--", "sg-add", "a", "g1", "--", "sg-add", "a", "g2", "--", "extnet-add", "pub", "203.0.113.0/24", "--kind", "public",
		"--", "eip-add", "pub", "203.0.113.1", "--", "eip-add", "pub", "203.0.113.2", "--", "eip-add", "pub", "203.0.113.3",
		"--", "set-hub-chassis", "hv1")
	if err != nil {
		t.Fatal(err)
	}
	hctx, stop := context.WithCancel(ctx)
	defer stop()
	w := &twinWorld{rng: rand.New(rand.NewPCG(seed, 1)), ports: map[string]string{}, unknown: map[string]bool{}, vxnets: []string{"x1", "x2", "x3", "y1"}}
	for i, name := range []string{"hv1", "hv2", "hv3"} {
		w.hosts = append(w.hosts, startTwinHost(hctx, t, dbs, name, i+1, i < 2))
	}
	const steps = 160
	tried := 0
	for step := 1; step <= steps; step++ {
		if args := w.op(); args != nil {
			tried++
			if err := nb("none", args...); err != nil {
				t.Logf("step %d: %v: %v", step, args, err)
			} else {
				w.apply(args)
			}
		}
		if step%8 != 0 && step != steps {
			continue // the hosts see the changes that follow before they settle
		}
		if err := nb("hv", "sync"); err != nil {
			t.Fatalf("step %d: waiting for the hosts: %v", step, err)
		}
		for _, h := range w.hosts {
			h.checkpoint(t, step)
		}
	}
	t.Logf("%d of %d northbound operations succeeded; ports at the end: %v", w.ok, tried, w.ports)
	learned := 0
	for _, h := range w.hosts {
		learned += len(ops.Rows[sbdb.LearnedBinding](h.d.base))
	}
	t.Logf("%d addresses announced; learned bindings at the end: %d", w.announced, learned)
	if w.ok < tried/2 {
		t.Errorf("only %d of %d operations succeeded: the history hardly changed anything", w.ok, tried)
	}
}

func netip4(a, b, c, d byte) netip.Addr { return netip.AddrFrom4([4]byte{a, b, c, d}) }
