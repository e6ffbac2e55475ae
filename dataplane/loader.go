package dataplane

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
)

// Config says how to load the data plane on one host.
type Config struct {
	// Chassis names the pin directory: /sys/fs/bpf/courier/<chassis>.
	Chassis string
	// PinRoot overrides /sys/fs/bpf/courier (tests use a unique one).
	PinRoot string
	// VTEP is this host's underlay address.
	VTEP netip.Addr
	// Device is the VXLAN device's name (default "courier0").
	Device string
	Hub    bool
	// RefreshInterval: a learned entry older than this sends its next
	// packet through a hub (default 30 s). LearnInterval: a hub tells a
	// sender about a destination at most this often (default 20 ms).
	RefreshInterval time.Duration
	LearnInterval   time.Duration
	// HubBudget limits, per port, the packets sent to hubs because their
	// destination is unknown here; AnnounceBudget, per port, the
	// addresses reported to hostd. The zero Budget is no limit.
	HubBudget      Budget
	AnnounceBudget Budget
	// UnknownTTL: after a hub said a destination is unknown, packets to
	// it are dropped here for this long (default 500 ms).
	UnknownTTL time.Duration
	// HubDownAfter: a hub that has not answered probes for this long is
	// passed over for another of the VPC's hubs that answers, if any
	// (default 300 ms).
	HubDownAfter time.Duration
	// ICMPBudget limits, per port, the ICMP errors sent back to it.
	ICMPBudget Budget
	// RouteKeep: the programs keep a VTEP's route lookup this long unless
	// told the routes changed (RoutesChanged; default 1 s). It bounds
	// what changes without a route message: a path MTU learned from an
	// ICMP error, an interface's MTU. Negative: nothing is kept (every
	// packet looked up), as on a PREEMPT_RT kernel (keptRoutes).
	RouteKeep time.Duration
	// HubBindings is how many bindings the hub map holds: on a hub,
	// every binding of the VPCs it serves (default DefaultHubBindings);
	// a host that is not a hub never uses the map and gets a small one.
	HubBindings int
	// KernelEncap leaves every encapsulation to the VXLAN device, as
	// before #21: an escape hatch, and the baseline the programs' own
	// encapsulation is measured against.
	KernelEncap bool
	// TestHooks makes the programs take the tunnel key of received
	// packets from a map and record where they send packets, which
	// BPF_PROG_RUN tests need. Never set it on a real host.
	TestHooks bool
	Log       *slog.Logger
}

// Budget is a per-port rate limit enforced in the kernel: Rate packets a
// second on average, Burst of them at once. The zero Budget is no limit.
type Budget struct {
	Rate  float64
	Burst int
}

// Defaults for the data plane's protections against a hostile VM.
var (
	// DefaultHubBudget lets a port send 1,000 packets a second to hubs
	// (first packets of new flows, ARP for addresses not learned yet):
	// far more than a VM opening connections needs, and a thousandth of
	// what one VM can push at hubs that every VPC shares.
	DefaultHubBudget = Budget{Rate: 1000, Burst: 1000}
	// DefaultAnnounceBudget lets a port report 20 new addresses a second.
	DefaultAnnounceBudget = Budget{Rate: 20, Burst: 40}
	// DefaultICMPBudget sends a port 100 ICMP errors a second, 100 at
	// once: traceroute and path MTU discovery need a few.
	DefaultICMPBudget = Budget{Rate: 100, Burst: 100}
)

const (
	DefaultUnknownTTL   = 500 * time.Millisecond
	DefaultHubDownAfter = 300 * time.Millisecond
	DefaultRouteKeep    = time.Second
)

// gcra is the budget as the C meter takes it (budget.h): the cost of one
// packet and how much cost may be taken ahead, in nanoseconds.
func (b Budget) gcra() (cost, burst uint64) {
	if b.Rate <= 0 {
		return 0, 0
	}
	cost = uint64(float64(time.Second) / b.Rate)
	if cost == 0 {
		cost = 1
	}
	return cost, cost * uint64(max(b.Burst-1, 0))
}

// DefaultPinRoot is where Courier pins its BPF objects.
const DefaultPinRoot = "/sys/fs/bpf/courier"

// DefaultDevice is the name of the VXLAN device.
const DefaultDevice = "courier0"

func (c *Config) pinDir() string {
	root := c.PinRoot
	if root == "" {
		root = DefaultPinRoot
	}
	return filepath.Join(root, c.Chassis)
}

// Datapath is the loaded data plane of one host.
type Datapath struct {
	cfg    Config
	log    *slog.Logger
	objs   dvrObjects
	pinDir string
	vxlan  int // ifindex
	// encapIdx: the ifindex the programs encapsulate out of, 0: none
	encapIdx int
	// routeGen: cfg_route_gen as last set (RoutesChanged)
	routeGen atomic.Uint32
	// vtepGen: cfg_vtep_gen as last set; vtepsStale: vteps_v1 changed
	// since (vteps.go)
	vtepGen    atomic.Uint32
	vtepsStale bool

	tunnel link.Link
	// uplink: on a gateway, the program on the uplink (gateway.h)
	uplink    link.Link
	uplinkIdx int
	// underlay: phys_ingress on the underlay NIC (phys.go)
	underlay    link.Link
	underlayIdx int
	ports       map[int]link.Link // by ifindex
	// departed: the SNAT connections of ports that left (snatdepart.go)
	departed table[snatDepartKey, snatDepartVal]
	applied  *compiled
	// vpcEIPsKey is State.VPCEIPsKey of the last successful Apply.
	vpcEIPsKey string
	// hubTable is the BindingTable the hub map was last written from
	// (nil: from State.Bindings).
	hubTable *BindingTable
	// stepped, when set (by tests), is told the steps of Apply whose
	// order matters, as each begins.
	stepped func(step string)
	// pinned: what OpenPinned's data plane reads of the running
	// programs when first asked (HubDownAfter).
	pinned struct {
		once         sync.Once
		hubDownAfter time.Duration
		hubDownErr   error
	}
}

// Load loads the programs with this host's configuration, reusing the
// maps pinned by a previous run (their contents keep forwarding while
// hostd restarts), creates or checks the VXLAN device, and attaches the
// tunnel program, replacing a pinned previous program in place.
func Load(cfg Config) (*Datapath, error) {
	if cfg.Chassis == "" || !cfg.VTEP.Is4() {
		return nil, errors.New("dataplane: a chassis name and an IPv4 VTEP are required")
	}
	if cfg.Device == "" {
		cfg.Device = DefaultDevice
	}
	// The programs compare these signed: a negative refresh would mean
	// "never fresh", a negative learn interval "teach every packet".
	if cfg.RefreshInterval < 0 || cfg.LearnInterval < 0 {
		return nil, fmt.Errorf("dataplane: a refresh interval of %s, a learn interval of %s: neither may be negative",
			cfg.RefreshInterval, cfg.LearnInterval)
	}
	if cfg.RefreshInterval == 0 {
		cfg.RefreshInterval = 30 * time.Second
	}
	if cfg.LearnInterval == 0 {
		cfg.LearnInterval = 20 * time.Millisecond
	}
	if cfg.UnknownTTL == 0 {
		cfg.UnknownTTL = DefaultUnknownTTL
	}
	if cfg.RouteKeep == 0 {
		cfg.RouteKeep = DefaultRouteKeep
	}
	if cfg.HubDownAfter == 0 {
		cfg.HubDownAfter = DefaultHubDownAfter
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Datapath{cfg: cfg, log: log, pinDir: cfg.pinDir(), ports: map[int]link.Link{}}
	if err := os.MkdirAll(filepath.Join(d.pinDir, "links"), 0o755); err != nil {
		return nil, fmt.Errorf("pin directory: %w (is bpffs mounted at /sys/fs/bpf?)", err)
	}
	vx, err := EnsureVXLAN(cfg.Device, cfg.VTEP)
	if err != nil {
		return nil, err
	}
	d.vxlan = vx
	if !cfg.KernelEncap {
		idx, err := encapLink(cfg.VTEP)
		if err != nil {
			log.Warn("the underlay interface: the VXLAN device encapsulates until hostd finds it", "err", err)
		}
		d.encapIdx = idx
	}
	d.log.Info("encapsulation", "vxlan_device", cfg.Device, "underlay_ifindex", d.encapIdx, "in_programs", d.encapIdx != 0)
	if err := d.loadObjects(); err != nil {
		return nil, err
	}
	if err := d.openSNATDepart(); err != nil {
		d.objs.Close()
		return nil, err
	}
	if err := d.attachTunnel(); err != nil {
		d.departed.m.Close()
		d.objs.Close()
		return nil, err
	}
	// Only now that tunnel_ingress takes every packet the device receives.
	if err := setForwarding(cfg.Device, d.encapIdx != 0); err != nil && d.encapIdx != 0 {
		log.Warn("the VXLAN device encapsulates every packet: the programs' route lookups fail", "err", err)
	}
	if err := d.adoptPortLinks(); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

func (d *Datapath) loadObjects() error {
	spec, err := loadDvr()
	if err != nil {
		return err
	}
	set := func(name string, v any) error {
		vs, ok := spec.Variables[name]
		if !ok {
			return fmt.Errorf("program has no variable %s", name)
		}
		return vs.Set(v)
	}
	var hub uint8
	if d.cfg.Hub {
		hub = 1
	}
	var test, encap uint8
	if d.cfg.TestHooks {
		test = 1
	}
	if !d.cfg.KernelEncap {
		encap = 1
	}
	sportMin, sportMax := localPortRange()
	hubCost, hubBurst := d.cfg.HubBudget.gcra()
	annCost, annBurst := d.cfg.AnnounceBudget.gcra()
	icmpCost, icmpBurst := d.cfg.ICMPBudget.gcra()
	for name, v := range map[string]any{
		"cfg_local_vtep": host32(d.cfg.VTEP), "cfg_vxlan_ifindex": uint32(d.vxlan),
		"cfg_underlay_ifindex": uint32(d.encapIdx), "cfg_encap": encap, "cfg_sport_min": sportMin, "cfg_sport_max": sportMax,
		"cfg_hub":        hub,
		"cfg_refresh_ns": uint64(d.cfg.RefreshInterval), "cfg_learn_interval_ns": uint64(d.cfg.LearnInterval),
		"cfg_tunnel_ttl": uint8(64), "cfg_test": test,
		"cfg_hub_cost_ns": hubCost, "cfg_hub_burst_ns": hubBurst,
		"cfg_announce_cost_ns": annCost, "cfg_announce_burst_ns": annBurst,
		"cfg_unknown_ttl_ns": uint64(d.cfg.UnknownTTL), "cfg_hub_down_ns": uint64(d.cfg.HubDownAfter),
		"cfg_route_keep_ns": d.keptRoutes(),
		"cfg_icmp_cost_ns":  icmpCost, "cfg_icmp_burst_ns": icmpBurst,
	} {
		if err := set(name, v); err != nil {
			return fmt.Errorf("configure %s: %w", name, err)
		}
	}
	if m := spec.Maps[hubMap]; m != nil {
		m.MaxEntries = uint32(d.cfg.hubBindings())
	}
	for name, m := range spec.Maps {
		if isPinned(name) {
			if sizedByBuild[name] {
				d.unpinMismatched(name, m)
			}
			m.Pinning = ebpf.PinByName
		}
	}
	opts := &ebpf.CollectionOptions{Maps: ebpf.MapOptions{PinPath: d.pinDir}}
	if err := spec.LoadAndAssign(&d.objs, opts); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return fmt.Errorf("load BPF programs: %+v", ve)
		}
		return fmt.Errorf("load BPF programs: %w", err)
	}
	d.carryEarlierLayouts()
	d.unpinStale(spec)
	return nil
}

// earlierLayouts are pinned maps an earlier build laid out as the first
// size bytes of one of this build's values (into), whose rest, zero,
// means what the earlier layout meant: ports_v2 held a port's entry
// before it carried its vxnet's (ports_v3, #21), 28 bytes (TestLayouts'
// "port" before), and without PORT_F_VXNET port_sec looks the vxnet up,
// as it did. A hostd upgraded across the change carries the earlier
// map's entries over (carryEarlierLayouts), so that the ports whose
// programs it swaps keep forwarding before its first Apply, which waits
// for the southbound; a benchmark's variant of an earlier build gets its
// map filled from today's (fillEarlierLayouts). A downgrade has no such
// carry: the earlier build's unpinStale drops ports_v3, and its ports
// drop what they send until its first Apply.
var earlierLayouts = map[string]struct {
	into string
	size int
}{"ports_v2": {"ports_v3", 28}}

// carryEarlierLayouts copies the entries of an earlier layout's pinned
// map into this build's, each zero beyond the earlier bytes, where this
// build's has none yet; unpinStale then removes the earlier pin.
func (d *Datapath) carryEarlierLayouts() {
	for name, l := range earlierLayouts {
		src, err := ebpf.LoadPinnedMap(filepath.Join(d.pinDir, name), &ebpf.LoadPinOptions{ReadOnly: true})
		if errors.Is(err, os.ErrNotExist) {
			continue // no earlier pin: nothing to carry
		}
		if err != nil {
			d.log.Warn("an earlier layout's pin unreadable: its entries are not carried over, the next Apply writes them", "map", name, "err", err)
			continue
		}
		n, err := carryEntries(src, filepath.Join(d.pinDir, l.into), l.size)
		src.Close()
		if err != nil {
			d.log.Warn("an earlier layout's entries not carried over: the next Apply writes them", "map", name, "to", l.into, "carried", n, "err", err)
			continue
		}
		d.log.Info("carried an earlier layout's entries over", "map", name, "to", l.into, "entries", n)
	}
}

// carryEntries writes src's entries, size bytes each, into the map
// pinned at dstPin, zero beyond them, and says how many. A key dstPin
// has already keeps its entry: both pins are there only when an earlier
// removal of src's pin failed after this build had written its own.
func carryEntries(src *ebpf.Map, dstPin string, size int) (int, error) {
	dst, err := ebpf.LoadPinnedMap(dstPin, nil)
	if err != nil {
		return 0, err
	}
	defer dst.Close()
	if int(src.ValueSize()) != size || int(dst.ValueSize()) < size || src.KeySize() != dst.KeySize() {
		return 0, fmt.Errorf("keys of %d bytes into %d, values of %d bytes, %d expected, into %d",
			src.KeySize(), dst.KeySize(), src.ValueSize(), size, dst.ValueSize())
	}
	return copyEntries(src, dst, size, ebpf.UpdateNoExist)
}

// copyEntries writes the first size bytes of each of src's values into
// dst, under the same key, zero beyond them to dst's value size, and
// says how many it wrote. With ebpf.UpdateNoExist a key dst has already
// keeps its entry.
func copyEntries(src, dst *ebpf.Map, size int, flags ebpf.MapUpdateFlags) (int, error) {
	var k, v []byte
	val := make([]byte, dst.ValueSize()) // only its first size bytes are ever written
	n := 0
	it := src.Iterate()
	for it.Next(&k, &v) {
		copy(val, v[:size])
		err := dst.Update(k, val, flags)
		if errors.Is(err, ebpf.ErrKeyExist) {
			continue
		}
		if err != nil {
			return n, err
		}
		n++
	}
	return n, it.Err()
}

// pinnedMap names the maps that outlive a hostd restart: NAME_vN, where
// N changes with the map's layout, so that a hostd of a new layout starts
// the map afresh instead of failing to load beside the old pin (only the
// maps of sizedByBuild change size under one name).
var pinnedMap = regexp.MustCompile(`_v[0-9]+$`)

func isPinned(name string) bool { return pinnedMap.MatchString(name) }

// The hub map is sized at load time: a hub's holds every binding of its
// VPCs (a 256,000-port VPC did not fit the 131,072 the object declared),
// and it is preallocated, so a host that is not a hub, which never uses
// it, gets a small one rather than paying 22 MiB for nothing.
const (
	hubMap = "hub_eps_v1"
	// DefaultHubBindings is a hub's map capacity: 88 bytes each in the
	// kernel, 22 MiB.
	DefaultHubBindings = 262144
	nonHubBindings     = 1024
)

func (c *Config) hubBindings() int {
	switch {
	case !c.Hub:
		return nonHubBindings
	case c.HubBindings > 0:
		return c.HubBindings
	}
	return DefaultHubBindings
}

// sizedByBuild are the pinned maps whose capacity a build or a flag sets
// and whose contents may start again: the counters, one per drop reason
// or counter (a new one grows them), and a hub's table, sized by
// --hub-bindings and refilled by Apply. Any other map reshaped under the
// same name still fails the load, loudly, rather than be emptied: a
// layout whose entries must survive takes a new name (earlierLayouts).
var sizedByBuild = map[string]bool{"drops_v1": true, "stats_v1": true, hubMap: true}

// unpinMismatched removes the pin of map name if the pinned map no longer
// fits spec, which the kernel cannot change and beside which the programs
// would not load. The new map starts empty: the next Apply fills a hub's
// table (a hub compares its whole table with the kernel when it starts),
// and counters start again from zero.
func (d *Datapath) unpinMismatched(name string, spec *ebpf.MapSpec) {
	path := filepath.Join(d.pinDir, name)
	m, err := ebpf.LoadPinnedMap(path, &ebpf.LoadPinOptions{ReadOnly: true})
	if err != nil {
		return
	}
	why := spec.Compatible(m)
	m.Close()
	if why != nil {
		if err := os.Remove(path); err == nil {
			d.log.Warn("a pinned map does not fit this build: its pin is replaced and the map starts empty", "map", name, "why", why)
		}
	}
}

// unpinStale removes the pins of map versions this program no longer
// has (an upgrade's leftovers).
func (d *Datapath) unpinStale(spec *ebpf.CollectionSpec) {
	entries, err := os.ReadDir(d.pinDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if name := e.Name(); !e.IsDir() && isPinned(name) && spec.Maps[name] == nil && !goPinned[name] {
			if err := os.Remove(filepath.Join(d.pinDir, name)); err == nil {
				d.log.Info("removed the pin of a map this version no longer has", "map", name)
			}
		}
	}
}

// attachTCX attaches prog to ifindex's tcx ingress, or, when a link is
// pinned at path from an earlier run, swaps prog into it atomically.
func attachTCX(ifindex int, prog *ebpf.Program, path string) (link.Link, error) {
	if l, err := link.LoadPinnedLink(path, nil); err == nil {
		if info, ierr := l.Info(); ierr == nil && info.TCX() != nil && int(info.TCX().Ifindex) == ifindex {
			if err := l.Update(prog); err == nil {
				return l, nil
			}
		}
		// Pinned for another interface (ifindex reused) or defunct.
		l.Unpin()
		l.Close()
	}
	l, err := link.AttachTCX(link.TCXOptions{Interface: ifindex, Program: prog, Attach: ebpf.AttachTCXIngress})
	if err != nil {
		return nil, fmt.Errorf("attach tcx to ifindex %d: %w", ifindex, err)
	}
	os.Remove(path)
	if err := l.Pin(path); err != nil {
		l.Close()
		return nil, fmt.Errorf("pin link %s: %w", path, err)
	}
	return l, nil
}

func (d *Datapath) attachTunnel() error {
	l, err := attachTCX(d.vxlan, d.objs.TunnelIngress, filepath.Join(d.pinDir, "links", "tunnel"))
	if err != nil {
		return err
	}
	d.tunnel = l
	return nil
}

func portLinkPath(dir string, ifindex int) string {
	return filepath.Join(dir, "links", "port-"+strconv.Itoa(ifindex))
}

// adoptPortLinks takes over the port links pinned by an earlier run,
// swapping the new program in.
func (d *Datapath) adoptPortLinks() error {
	entries, err := os.ReadDir(filepath.Join(d.pinDir, "links"))
	if err != nil {
		return err
	}
	for _, e := range entries {
		s, ok := strings.CutPrefix(e.Name(), "port-")
		if !ok {
			continue
		}
		ifindex, err := strconv.Atoi(s)
		if err != nil {
			continue
		}
		path := filepath.Join(d.pinDir, "links", e.Name())
		l, err := link.LoadPinnedLink(path, nil)
		if err != nil {
			os.Remove(path)
			continue
		}
		if err := l.Update(d.objs.PortIngress); err != nil {
			// The interface went away while we were down.
			l.Unpin()
			l.Close()
			continue
		}
		d.ports[ifindex] = l
	}
	return nil
}

// attachPort attaches the DVR to a VM port's host-side interface.
func (d *Datapath) attachPort(ifindex int) error {
	if _, ok := d.ports[ifindex]; ok {
		return nil
	}
	l, err := attachTCX(ifindex, d.objs.PortIngress, portLinkPath(d.pinDir, ifindex))
	if err != nil {
		return err
	}
	d.ports[ifindex] = l
	return openMTU(ifindex)
}

// HostSideMTU is what a VM interface's host side is raised to, so that
// the DVR sees what a VM sends whatever MTU the VM set, and can answer
// a frame too big for the overlay with "fragmentation needed" instead
// of the interface dropping it unseen.
const HostSideMTU = 9000

// openMTU raises a VM interface's host-side MTU to HostSideMTU.
//
// Equivalent to: ip link set dev IFNAME mtu 9000
func openMTU(ifindex int) error {
	l, err := netlink.LinkByIndex(ifindex)
	if err != nil {
		return fmt.Errorf("interface %d: %w", ifindex, err)
	}
	if l.Attrs().MTU >= HostSideMTU {
		return nil
	}
	if err := netlink.LinkSetMTU(l, HostSideMTU); err != nil {
		return fmt.Errorf("ip link set %s mtu %d: %w", l.Attrs().Name, HostSideMTU, err)
	}
	return nil
}

// detachPort removes the DVR from an interface that is no longer a port.
func (d *Datapath) detachPort(ifindex int) {
	if l, ok := d.ports[ifindex]; ok {
		l.Unpin()
		l.Close()
		delete(d.ports, ifindex)
	}
}

// VXLANIndex is the VXLAN device's ifindex.
func (d *Datapath) VXLANIndex() int { return d.vxlan }

// Close releases this process's handles. Pinned maps and links stay:
// forwarding goes on until the next hostd adopts them.
func (d *Datapath) Close() error {
	for _, l := range d.ports {
		l.Close()
	}
	if d.tunnel != nil {
		d.tunnel.Close()
	}
	d.closeUplink(false)
	d.closeUnderlay(false)
	if d.departed.m != nil {
		d.departed.m.Close()
	}
	return d.objs.Close()
}

// Destroy detaches every program, removes every pin and closes. Only the
// sandbox and tests, which own the whole host, call it.
func (d *Datapath) Destroy() error {
	for ifindex := range d.ports {
		d.detachPort(ifindex)
	}
	if d.tunnel != nil {
		d.tunnel.Unpin()
	}
	d.closeUplink(true)
	d.closeUnderlay(true)
	err := d.Close()
	return errors.Join(err, os.RemoveAll(d.pinDir))
}
