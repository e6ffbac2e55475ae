package dataplane

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
)

// A Tracer is courier-trace's copy of a chassis's programs: the same
// object hostd loaded, with the same load-time configuration (read from
// the running programs' own .rodata), running against the chassis's
// pinned maps, with cfg_trace set. In that mode the programs change
// nothing (no counter, cache entry, budget, event or learn message, no
// clone sent) and write one record per stage: what BPF_PROG_RUN shows is
// what the kernel does to such a packet, not a model of it. The one
// trace the maps keep is an LRU map's reference bit, which any lookup by
// a program sets.
//
// Runs must happen in the chassis's network namespace: BPF_PROG_RUN
// resolves the packet's ifindex there.
type Tracer struct {
	objs dvrObjects
	// VTEP and Hub are the chassis's, as its programs were loaded.
	VTEP netip.Addr
	Hub  bool
	// VXLAN is the ifindex of the chassis's VXLAN device.
	VXLAN int
}

// StageRecord is what one stage decided.
type StageRecord struct {
	Stage   int
	Verdict int
	Hit     int
	Reason  int
	Next    int
	Flags   uint32
	Ifindex int        // the local port it goes to or came from
	VTEP    netip.Addr // the host it goes to (invalid when none)
	VNI     uint32
	Addr    netip.Addr // the address the stage resolved
	MAC     net.HardwareAddr
}

// TraceResult is one run of a program.
type TraceResult struct {
	Stages []StageRecord
	// Action is the tc verdict (0 ok, 2 shot, 7 redirect).
	Action uint32
	// Packet is the packet as the program left it (rewritten).
	Packet []byte
	// GBP is the VXLAN GBP field it was sent with (the sender's
	// security group identity), for the next hop's run.
	GBP uint32
}

// Last is the record of the stage that decided.
func (r *TraceResult) Last() StageRecord {
	if len(r.Stages) == 0 {
		return StageRecord{Verdict: -1}
	}
	return r.Stages[len(r.Stages)-1]
}

// OpenTracer loads a trace copy of the programs of the chassis pinned
// under pinRoot. The calling thread may be in any namespace.
func OpenTracer(pinRoot, chassis string) (*Tracer, error) {
	if pinRoot == "" {
		pinRoot = DefaultPinRoot
	}
	dir := filepath.Join(pinRoot, chassis)
	spec, err := loadDvr()
	if err != nil {
		return nil, err
	}
	running, err := runningVars(dir)
	if err != nil {
		return nil, fmt.Errorf("chassis %s: %w", chassis, err)
	}
	for name, v := range spec.Variables {
		if !v.Constant() {
			continue
		}
		if len(running[name]) != len(v.Value) {
			return nil, fmt.Errorf("chassis %s runs another version of the data plane (no %s of %d bytes); trace with its own courier-trace", chassis, name, len(v.Value))
		}
		copy(v.Value, running[name])
	}
	if err := spec.Variables["cfg_trace"].Set(uint8(1)); err != nil {
		return nil, err
	}
	if err := spec.Variables["cfg_test"].Set(uint8(0)); err != nil {
		return nil, err
	}
	repl := map[string]*ebpf.Map{}
	defer func() {
		for _, m := range repl {
			m.Close()
		}
	}()
	for name := range spec.Maps {
		if !isPinned(name) {
			continue
		}
		m, err := ebpf.LoadPinnedMap(filepath.Join(dir, name), nil)
		if err != nil {
			return nil, fmt.Errorf("no data plane pinned for chassis %s under %s: %w", chassis, pinRoot, err)
		}
		if name == hubMap { // sized when the data plane loaded
			spec.Maps[name].MaxEntries = m.MaxEntries()
		}
		repl[name] = m
	}
	t := &Tracer{}
	if err := spec.LoadAndAssign(&t.objs, &ebpf.CollectionOptions{MapReplacements: repl}); err != nil {
		return nil, fmt.Errorf("load the trace programs: %w", err)
	}
	var vtep uint32
	var hub uint8
	var vx uint32
	spec.Variables["cfg_local_vtep"].Get(&vtep)
	spec.Variables["cfg_hub"].Get(&hub)
	spec.Variables["cfg_vxlan_ifindex"].Get(&vx)
	t.VTEP, t.Hub, t.VXLAN = fromHost32(vtep), hub != 0, int(vx)
	return t, nil
}

// runningVars reads the variables of the programs hostd attached, by
// name: those of .rodata (the load-time configuration) and of .bss (what
// hostd changes while they run), each where the running programs' own
// BTF places it, so that a build laid out otherwise is read right. They
// are found through the pinned link of the tunnel program.
func runningVars(dir string) (map[string][]byte, error) {
	l, err := link.LoadPinnedLink(filepath.Join(dir, "links", "tunnel"), nil)
	if err != nil {
		return nil, fmt.Errorf("no tunnel program attached (is hostd running there?): %w", err)
	}
	defer l.Close()
	info, err := l.Info()
	if err != nil {
		return nil, err
	}
	prog, err := ebpf.NewProgramFromID(info.Program)
	if err != nil {
		return nil, err
	}
	defer prog.Close()
	pi, err := prog.Info()
	if err != nil {
		return nil, err
	}
	ids, _ := pi.MapIDs()
	out := map[string][]byte{}
	for _, id := range ids {
		m, err := ebpf.NewMapFromID(id)
		if err != nil {
			continue
		}
		err = sectionVars(m, out)
		m.Close()
		if err != nil {
			return nil, err
		}
	}
	if len(out) == 0 {
		return nil, errors.New("the running programs have no settings")
	}
	return out, nil
}

// sectionVars adds the variables of m to vars, if m is a .rodata or
// .bss section: its value, cut by the datasec of its BTF.
func sectionVars(m *ebpf.Map, vars map[string][]byte) error {
	mi, err := m.Info()
	if err != nil {
		return nil
	}
	var sec string
	for _, s := range []string{".rodata", ".bss"} {
		if mi.Name == s || mi.Name == s[1:] { // without the dot on kernels that refuse one
			sec = s
		}
	}
	id, ok := mi.BTFID()
	if sec == "" || !ok {
		return nil
	}
	val := make([]byte, m.ValueSize())
	if err := m.Lookup(uint32(0), &val); err != nil {
		return fmt.Errorf("read the running %s: %w", sec, err)
	}
	h, err := btf.NewHandleFromID(id)
	if err != nil {
		return fmt.Errorf("the running %s's BTF: %w", sec, err)
	}
	defer h.Close()
	spec, err := h.Spec(nil)
	if err != nil {
		return fmt.Errorf("the running %s's BTF: %w", sec, err)
	}
	var ds *btf.Datasec
	if err := spec.TypeByName(sec, &ds); err != nil {
		return fmt.Errorf("the running %s's BTF: %w", sec, err)
	}
	for _, v := range ds.Vars {
		if end := int(v.Offset) + int(v.Size); end <= len(val) {
			vars[v.Type.TypeName()] = val[v.Offset:end:end]
		}
	}
	return nil
}

// Close releases the trace programs (the chassis's maps stay).
func (t *Tracer) Close() error { return t.objs.Close() }

// RunPort runs port_ingress on pkt as sent by the VM behind ifindex.
func (t *Tracer) RunPort(ifindex int, pkt []byte) (*TraceResult, error) {
	return t.run(t.objs.PortIngress, ifindex, pkt)
}

// RunTunnel runs tunnel_ingress on pkt as received from host src with
// vni.
func (t *Tracer) RunTunnel(src netip.Addr, vni uint32, pkt []byte) (*TraceResult, error) {
	return t.RunTunnelGBP(src, vni, 0, pkt)
}

// RunTunnelGBP is RunTunnel for a packet that carries a VXLAN GBP field
// (the previous hop's TraceResult.GBP).
func (t *Tracer) RunTunnelGBP(src netip.Addr, vni, gbp uint32, pkt []byte) (*TraceResult, error) {
	if err := t.objs.TunnelIn.Put(uint32(0), dvrTunnelRec{Vtep: host32(src), Vni: vni, Gbp: gbp}); err != nil {
		return nil, err
	}
	return t.run(t.objs.TunnelIngress, t.VXLAN, pkt)
}

func (t *Tracer) run(prog *ebpf.Program, ifindex int, pkt []byte) (*TraceResult, error) {
	if err := t.objs.TraceRecs.Put(uint32(0), dvrTraceBuf{}); err != nil {
		return nil, err
	}
	if err := t.objs.TunnelOut.Put(uint32(0), dvrTunnelRec{}); err != nil {
		return nil, err
	}
	in := make([]byte, len(pkt))
	copy(in, pkt)
	out := make([]byte, len(pkt)+256)
	ctx := make([]byte, 192) // struct __sk_buff; ifindex at offset 40
	ctx[40], ctx[41], ctx[42], ctx[43] = byte(ifindex), byte(ifindex>>8), byte(ifindex>>16), byte(ifindex>>24)
	opts := &ebpf.RunOptions{Data: in, DataOut: out, Context: ctx}
	ret, err := prog.Run(opts)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("BPF_PROG_RUN: no interface %d in this network namespace: %w", ifindex, err)
		}
		return nil, fmt.Errorf("BPF_PROG_RUN: %w", err)
	}
	var buf dvrTraceBuf
	if err := t.objs.TraceRecs.Lookup(uint32(0), &buf); err != nil {
		return nil, err
	}
	var sent dvrTunnelRec
	if err := t.objs.TunnelOut.Lookup(uint32(0), &sent); err != nil {
		return nil, err
	}
	res := &TraceResult{Action: ret, Packet: opts.DataOut, GBP: sent.Gbp}
	for i := 0; i < int(buf.N) && i < len(buf.Rec); i++ {
		r := buf.Rec[i]
		sr := StageRecord{Stage: int(r.Stage), Verdict: int(r.Verdict), Hit: int(r.Hit), Reason: int(r.Reason),
			Next: int(r.Next), Flags: r.Flags, Ifindex: int(r.Ifindex), VNI: r.Vni, Addr: fromBE32(r.Addr),
			MAC: append(net.HardwareAddr{}, r.Mac[:]...)}
		if r.Vtep != 0 {
			sr.VTEP = fromHost32(r.Vtep)
		}
		res.Stages = append(res.Stages, sr)
	}
	return res, nil
}

// StageFunctions lists the functions of the compiled programs named
// stage_NAME (the spine test, pipeline/spine_test.go).
func StageFunctions() ([]string, error) {
	spec, err := loadDvr()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range spec.Programs {
		for _, ins := range p.Instructions {
			if sym := ins.Symbol(); strings.HasPrefix(sym, "stage_") && !slices.Contains(out, sym) {
				out = append(out, sym)
			}
		}
	}
	return out, nil
}
